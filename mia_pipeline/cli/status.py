"""`mia init`, `mia status`, `mia check-integrity`."""

from __future__ import annotations

import json

import click

from mia_pipeline.cli.common import DAY, EXIT_PROBLEM, CliState, human_bytes, pass_state
from mia_pipeline.layout import DATASETS, init_tree
from mia_pipeline.storage import refresh_views


@click.command("init")
@pass_state
def init(state: CliState) -> None:
    """Create the data tree (the guide's --create-structure). Safe to run again."""
    layout = state.layout
    created = init_tree(layout)
    refresh_views(layout)
    click.echo(f"data tree at {layout.root}: {len(created)} folders created, {len(layout.tree()) - len(created)} already there")


def dataset_status(state: CliState, start=None, end=None) -> dict[str, dict]:
    """Per dataset: days present, first/last day, rows, bytes, last update — from the manifests only."""
    store = state.store
    out: dict[str, dict] = {}
    manifests = {d: store.manifest(d) for d in state.layout.days_present()}
    for ds in DATASETS:
        entries = [
            (d, m["datasets"][ds]) for d, m in manifests.items()
            if ds in m["datasets"] and (start is None or d >= start.isoformat()) and (end is None or d <= end.isoformat())
        ]
        out[ds] = {
            "days": len(entries),
            "first_day": entries[0][0] if entries else None,
            "last_day": entries[-1][0] if entries else None,
            "rows": sum(e["rows"] for _, e in entries),
            "bytes": sum(e["bytes"] for _, e in entries),
            "last_update": max((e["written_at"] for _, e in entries), default=None),
        }
    return out


@click.command("status")
@click.option("--from", "start", type=DAY, help="First day to count (inclusive).")
@click.option("--to", "end", type=DAY, help="Last day to count (inclusive).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def status(state: CliState, start, end, as_json: bool) -> None:
    """Days present per dataset, rows, bytes and last update."""
    if start and end and end < start:
        raise click.BadParameter(f"--to {end} is before --from {start}", param_hint="--to")
    stats = dataset_status(state, start, end)
    if as_json:
        click.echo(json.dumps({"data_dir": str(state.layout.root), "datasets": stats}, indent=2))
        return
    click.echo(f"data dir: {state.layout.root}")
    click.echo(f"{'dataset':<14}{'days':>6}  {'first':<11}{'last':<11}{'rows':>12}{'bytes':>11}  last update")
    for ds, s in stats.items():
        click.echo(
            f"{ds:<14}{s['days']:>6}  {s['first_day'] or '-':<11}{s['last_day'] or '-':<11}"
            f"{s['rows']:>12,}{human_bytes(s['bytes']):>11}  {s['last_update'] or '-'}"
        )


@click.command("check-integrity")
@click.option("--date", "day", type=DAY, help="Check one day only.")
@pass_state
def check_integrity(state: CliState, day) -> None:
    """Verify every day's manifest against its files (sha256, row counts). Exit 1 on any problem."""
    store = state.store
    days = [day.isoformat()] if day else state.layout.days_present()
    problems = []
    for d in days:
        store.recover(d)  # finish commits interrupted by a crash before judging
        problems += store.verify(d)
    for p in problems:
        click.echo(f"PROBLEM {p}")
    click.echo(f"checked {len(days)} day(s): {len(problems)} problem(s)")
    if problems:
        raise SystemExit(EXIT_PROBLEM)
