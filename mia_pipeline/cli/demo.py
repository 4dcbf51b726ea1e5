"""`mia demo`: run the main job on embedded defaults through Dagster and print a summary.

Runs are recorded in the Dagster instance of ``$DAGSTER_HOME`` (the Makefile points it at the
repository, whose dagster.yaml keeps storage under data/.dagster), so they show in ``make ui``.
"""

from __future__ import annotations

import os
import time
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


def demo_steps() -> list[tuple[str, list[str], str | None]]:
    """(label, asset keys, partition key) in order. Later capabilities append their steps."""
    return [("foundation", ["data_tree", "warehouse_views"], None)]


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
            result = dg.materialize(
                [assets_by_key[k] for k in keys],
                instance=instance,
                partition_key=partition,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                tags={"mia/demo_step": label},
            )
            ok = result.success
            click.echo(f"[{'ok' if ok else 'FAILED'}] {label}: {', '.join(keys)}"
                       f"{f' ({partition})' if partition else ''} in {time.perf_counter() - t0:.1f}s")
            if not ok:
                failed.append(label)
    click.echo("\nsummary")
    click.echo(f"  data dir   : {state.layout.root}")
    click.echo(f"  warehouse  : {state.layout.warehouse_file}")
    for ds, s in dataset_status(state).items():
        if s["days"]:
            click.echo(f"  {ds:<11}: {s['days']} day(s), {s['rows']:,} rows, {human_bytes(s['bytes'])}")
    backtest = sorted(state.layout.backtest_dir.glob("*/*/meta.json"))
    click.echo(f"  sessions   : {len(backtest)} synthetic session(s) under {state.layout.backtest_dir}")
    if failed:
        click.echo(f"demo failed in: {', '.join(failed)} (see `make ui` for the run logs)", err=True)
        raise SystemExit(EXIT_PROBLEM)
