"""`mia demo`: run the main job on embedded defaults through Dagster and print a summary.

The demo runs the code location's named jobs (``demo_trading_day`` per day, ``weekly_ml_dataset``,
``demo_synthetic_session`` per scenario) in this process, in the data root's instance
(``<data>/.dagster``), so its runs show in ``make ui`` under those jobs.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import click

from mia_pipeline.cli.common import EXIT_PROBLEM, CliState, human_bytes, pass_state
from mia_pipeline.cli.status import dataset_status

DEMO_DAYS = 3
DEMO_SCENARIOS = ("normal", "orderflow_accumulation", "delta_divergence")


def demo_days(today: date | None = None, n: int = DEMO_DAYS) -> list[str]:
    """The last ``n`` complete CME Globex trading days of one UTC week (Sunday..Saturday): the newest
    week holding ``n`` sessions that are over before today — never future, never a holiday (the
    synthetic partitions offer trading days only), and one weekly ML dataset partition holds them all."""
    from mia_pipeline.ml.bundle import week_of
    from mia_pipeline.synthetic.schedule import trading_days

    last = (today or datetime.now(UTC).date()) - timedelta(days=1)
    days = trading_days(last - timedelta(days=7 * n + 21), last)
    by_week: dict[str, list[date]] = {}
    for d in days:
        by_week.setdefault(week_of(d)[0], []).append(d)
    week = max(w for w, ds in by_week.items() if len(ds) >= n)
    return [d.isoformat() for d in by_week[week][-n:]]


def demo_steps() -> list[tuple[str, str, str]]:
    """(label, job name, partition key) in order."""
    from mia_pipeline.ml.bundle import week_of

    days = demo_days()
    weeks = sorted({week_of(d)[0] for d in days})
    return [
        *((f"trading day {d}", "demo_trading_day", d) for d in days),
        *((f"ML dataset of the week of {w}", "weekly_ml_dataset", w) for w in weeks),
        *((f"synthetic {s} {days[-1]}", "demo_synthetic_session", f"{days[-1]}|{s}") for s in DEMO_SCENARIOS),
    ]


@click.command("demo")
@pass_state
def demo(state: CliState) -> None:
    """Run the main job on embedded defaults (through Dagster) and print a summary."""
    from mia_pipeline.cli.dagster_bridge import (
        QUIET,
        code_location_defs,
        open_instance,
        point_code_location_at,
        run_job,
    )

    point_code_location_at(state.layout, state.config)
    failed = []
    defs = code_location_defs()
    with open_instance(state.layout) as instance:
        for label, job, partition in demo_steps():
            t0 = time.perf_counter()
            result = run_job(instance, defs.resolve_job_def(job), partition_key=partition,
                             tags={"mia/demo_step": label}, run_config=QUIET)
            click.echo(f"[{'ok' if result.success else 'FAILED'}] {label}: job {job} ({partition}) run "
                       f"{result.run_id[:8]} in {time.perf_counter() - t0:.1f}s")
            if not result.success:
                failed.append(label)
    click.echo("\nsummary")
    click.echo(f"  data dir   : {state.layout.root}")
    if state.layout.store:
        click.echo(f"  partitions : {state.layout.store.url}/daily")
    click.echo(f"  warehouse  : {state.layout.warehouse_file}")
    for ds, s in dataset_status(state).items():
        if s["days"]:
            click.echo(f"  {ds:<11}: {s['days']} day(s), {s['rows']:,} rows, {human_bytes(s['bytes'])}")
    from mia_pipeline.collection.status import collection_status

    st = collection_status(state.layout, state.store)
    quarantined = sum(sum(c.values()) for c in st["quarantine"].values())
    click.echo(f"  last event : {st['last_event_time']}; landing-zone lag {st['lag']['pending_lines']} line(s); "
               f"quarantine {quarantined} line(s)")
    click.echo(f"  (details: `mia collect status`, `mia status`; UI: `make ui`; instance {state.layout.dagster_dir})")
    for folder in sorted(state.layout.ml_ready_dir.glob("*_*/dataset.json")):
        click.echo(f"  ML dataset : {folder.parent} (features, labels, splits; `mia validate --dataset {folder.parent}`)")
    backtest = sorted(state.layout.backtest_dir.glob("*/*/meta.json"))
    click.echo(f"  sessions   : {len(backtest)} synthetic session(s) under {state.layout.backtest_dir}")
    if state.layout.report_index_file.is_file():
        click.echo(f"  reports    : {state.layout.report_index_file} (each day's data quality; the week's "
                   "performance and feature importance; `mia report all` for the last 30 days)")
    if failed:
        click.echo(f"demo failed in: {', '.join(failed)} (see `make ui` for the run logs)", err=True)
        raise SystemExit(EXIT_PROBLEM)
