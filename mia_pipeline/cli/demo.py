"""`mia demo`: run the main job on embedded defaults through Dagster and print a summary.

Runs are recorded in the Dagster instance of ``$DAGSTER_HOME`` (the Makefile points it at the
repository, whose dagster.yaml keeps storage under data/.dagster), so they show in ``make ui``.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click

from mia_pipeline.cli.common import EXIT_PROBLEM, CliState, human_bytes, pass_state
from mia_pipeline.cli.status import dataset_status


def _instance():
    import dagster as dg

    if not os.environ.get("DAGSTER_HOME") and Path("dagster.yaml").is_file():
        os.environ["DAGSTER_HOME"] = str(Path.cwd())
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    click.echo("note: DAGSTER_HOME is not set; runs go to a temporary instance (use `make demo` to keep them)")
    return dg.DagsterInstance.ephemeral()


DEMO_DAYS = 3
DEMO_SCENARIOS = ("normal", "orderflow_accumulation", "delta_divergence")


def demo_days(today: date | None = None, n: int = DEMO_DAYS) -> list[str]:
    """The last ``n`` complete weekdays before today (UTC): sessions that are over, never future."""
    day = (today or datetime.now(UTC).date()) - timedelta(days=1)
    out: list[str] = []
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day.isoformat())
        day -= timedelta(days=1)
    return sorted(out)


def demo_steps() -> list[tuple[str, list[str], str | tuple[str, str] | None]]:
    """(label, asset keys, partition key or (first, last) range) in order."""
    days = demo_days()
    return [
        ("foundation", ["data_tree"], None),
        *((f"paper trading {d}", ["paper_trading_events"], d) for d in days),
        ("ingest landing zone", ["trades", "trade_exits", "signals", "market_bars", "market_ticks", "performance"],
         (days[0], days[-1])),
        ("live session + warehouse", ["live_session", "warehouse_views"], None),
        *((f"synthetic {s} {days[-1]}", ["synthetic_session"], f"{days[-1]}|{s}") for s in DEMO_SCENARIOS),
    ]


@click.command("demo")
@pass_state
def demo(state: CliState) -> None:
    """Run the main job on embedded defaults (through Dagster) and print a summary."""
    import dagster as dg

    from mia_pipeline.definitions import defs

    # The code location's resources read MIA_DATA_DIR at run time: point them at this data root.
    os.environ["MIA_DATA_DIR"] = str(state.layout.root)
    graph = defs.resolve_asset_graph()
    assets_by_key = {k.to_user_string(): graph.get(k).assets_def for k in graph.get_all_asset_keys()}
    failed = []
    with _instance() as instance:
        for label, keys, partition in demo_steps():
            t0 = time.perf_counter()
            tags = {"mia/demo_step": label}
            if isinstance(partition, tuple):  # one run over a range (single-run backfill policy)
                tags |= {"dagster/asset_partition_range_start": partition[0],
                         "dagster/asset_partition_range_end": partition[1]}
            selected = list({id(a): a for a in (assets_by_key[k] for k in keys)}.values())
            result = dg.materialize(
                selected,
                instance=instance,
                partition_key=partition if isinstance(partition, str) else None,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                tags=tags,
            )
            ok = result.success
            where = f" ({partition[0]}..{partition[1]})" if isinstance(partition, tuple) else (
                f" ({partition})" if partition else "")
            click.echo(f"[{'ok' if ok else 'FAILED'}] {label}: {', '.join(keys)}{where} in {time.perf_counter() - t0:.1f}s")
            if not ok:
                failed.append(label)
    click.echo("\nsummary")
    click.echo(f"  data dir   : {state.layout.root}")
    click.echo(f"  warehouse  : {state.layout.warehouse_file}")
    for ds, s in dataset_status(state).items():
        if s["days"]:
            click.echo(f"  {ds:<11}: {s['days']} day(s), {s['rows']:,} rows, {human_bytes(s['bytes'])}")
    from mia_pipeline.collection.status import collection_status

    st = collection_status(state.layout, state.store)
    quarantined = sum(sum(c.values()) for c in st["quarantine"].values())
    click.echo(f"  last event : {st['last_event_time']}; landing-zone lag {st['lag']['pending_lines']} line(s); "
               f"quarantine {quarantined} line(s)")
    click.echo("  (details: `mia collect status`, `mia status`; UI: `make ui`)")
    backtest = sorted(state.layout.backtest_dir.glob("*/*/meta.json"))
    click.echo(f"  sessions   : {len(backtest)} synthetic session(s) under {state.layout.backtest_dir}")
    if failed:
        click.echo(f"demo failed in: {', '.join(failed)} (see `make ui` for the run logs)", err=True)
        raise SystemExit(EXIT_PROBLEM)
