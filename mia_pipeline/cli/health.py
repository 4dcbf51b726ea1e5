"""`mia health` (the guide's ``data_health_check.py``): the daily checklist on one screen."""

from __future__ import annotations

import json

import click

from mia_pipeline.cli.common import EXIT_PROBLEM, CliState, pass_state, stdout_console

STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@click.command("health")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (for scripts).")
@pass_state
def health(state: CliState, as_json: bool) -> None:
    """Collector, lag, today's metrics vs the guide's targets, open alerts, last backup, disk free and the
    last integrity result. Exit 0 when healthy, 1 when an item fails (warnings do not fail)."""
    from mia_pipeline.quality.health import health_report

    report = health_report(state.layout, state.store, state.settings)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        from rich.table import Table

        table = Table(title=f"mia health — {report['data_dir']} at {report['checked_at']}", show_lines=False)
        table.add_column("item", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("")
        for item in report["items"]:
            style = STYLE[item["status"]]
            table.add_row(item["name"], f"[{style}]{item['status'].upper()}[/]", item["summary"])
        console = stdout_console()
        console.print(table)
        console.print("[green]healthy[/]" if report["healthy"] else
                      "[bold red]UNHEALTHY[/]: " + ", ".join(i["name"] for i in report["items"] if i["status"] == "fail"))
    if not report["healthy"]:
        raise SystemExit(EXIT_PROBLEM)
