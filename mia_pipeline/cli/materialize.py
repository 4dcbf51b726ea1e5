"""`mia materialize`: Dagster's own execution of a chosen selection and partition, in the data root's
instance — the third front door (CI, cron, a shell) next to the UI and the sensors.

It runs the code location's assets (``mia_pipeline.definitions``) in this process with
``execute_in_process`` into ``<data>/.dagster``, so the run, its materializations and its checks show in
`make ui` exactly as a UI launch would. Equivalent with Dagster's CLI:
``DAGSTER_HOME=<data>/.dagster dagster asset materialize -m mia_pipeline.definitions --select KEYS --partition D``.
"""

from __future__ import annotations

import time

import click

from mia_pipeline.cli.common import DAY, EXIT_PROBLEM, CliState, command_line, pass_state, process_seconds

# Names a user may give besides asset keys: the seven daily datasets as one word (their multi-asset).
ALIASES = {"daily_datasets": ("trades", "trade_exits", "signals", "market_bars", "market_ticks", "performance",
                              "market_depth")}


def _selection(defs, select: str) -> tuple[list, object]:
    """(asset keys, their one partitions definition or None); exit 2 on an unknown key."""
    known = {k.to_user_string(): k for k in defs.resolve_all_asset_keys()}
    names = [n.strip() for n in select.split(",") if n.strip()]
    keys, unknown = [], []
    for name in names:
        for one in ALIASES.get(name, (name,)):
            (keys.append(known[one]) if one in known else unknown.append(one))
    if unknown or not keys:
        raise click.BadParameter(
            f"{', '.join(unknown) or repr(select)}: not an asset of this code location; use comma-separated asset "
            f"keys or {', '.join(ALIASES)} (assets: {', '.join(sorted(known))})", param_hint="--select")
    partitioned = {defs.resolve_assets_def(k).partitions_def for k in keys}
    if len(partitioned) > 1:
        raise click.BadParameter("the selected assets have different partitions; materialize them separately",
                                 param_hint="--select")
    return list(dict.fromkeys(keys)), next(iter(partitioned))


@click.command("materialize")
@click.option("--select", "select", required=True,
              help="Comma-separated asset keys (e.g. trades,market_ticks), or daily_datasets for all seven.")
@click.option("--partition", default=None, help="The partition key, e.g. 2025-06-23 (daily), 2025-06-22 (weekly).")
@click.option("--from", "start", type=DAY, default=None, help="First day of a range (one run, like a UI backfill).")
@click.option("--to", "end", type=DAY, default=None, help="Last day of the range (inclusive).")
@pass_state
def materialize(state: CliState, select: str, partition: str | None, start, end) -> None:
    """Materialize assets through Dagster into the data root's instance (what `make ui` shows)."""
    from mia_pipeline.cli.dagster_bridge import (
        QUIET,
        code_location_defs,
        command_tags,
        open_instance,
        partition_tags,
        point_code_location_at,
        run_job,
    )
    from mia_pipeline.defs.recording import failed_checks

    if partition and (start or end):
        raise click.UsageError("give --partition or --from/--to, not both")
    if bool(start) != bool(end):
        raise click.UsageError("a range needs both --from and --to")
    if start and end < start:
        raise click.BadParameter(f"--to {end} is before --from {start}", param_hint="--to")
    point_code_location_at(state.layout, state.config)
    state.layout.root.mkdir(parents=True, exist_ok=True)
    defs = code_location_defs()
    keys, partitions_def = _selection(defs, select)
    tags = {**command_tags(command_line()), "mia/writer": "mia materialize"}
    key = None
    if partitions_def is None:
        if partition or start:
            raise click.BadParameter(f"{select} is not partitioned: drop --partition/--from/--to", param_hint="--select")
    elif start:
        days = [start.isoformat(), end.isoformat()]
        known = set(partitions_def.get_partition_keys())
        for day in days:
            if day not in known:
                raise click.BadParameter(f"{day} is not a partition of {select} (first: "
                                         f"{partitions_def.get_first_partition_key()})", param_hint="--from/--to")
        tags |= partition_tags(days)
    else:
        if not partition:
            raise click.BadParameter(f"{select} is partitioned: give --partition KEY (or --from/--to)",
                                     param_hint="--partition")
        if not partitions_def.has_partition_key(partition):
            raise click.BadParameter(f"{partition!r} is not a partition key of {select} (e.g. "
                                     f"{partitions_def.get_last_partition_key()})", param_hint="--partition")
        key = partition
    job = defs.resolve_implicit_job_def_def_for_assets(keys)
    started = time.perf_counter()
    with open_instance(state.layout) as instance:
        result = run_job(instance, job, partition_key=key, tags=tags, run_config=QUIET, asset_selection=keys)
        ran = time.perf_counter() - started
        mats = result.get_asset_materialization_events()
        evaluations = result.get_asset_check_evaluations()
    for event in mats:
        m = event.materialization
        rows = m.metadata.get("dagster/row_count")
        click.echo(f"materialized {m.asset_key.to_user_string()}"
                   + (f"[{m.partition}]" if m.partition else "") + (f": {rows.value:,} rows" if rows else ""))
    failures = failed_checks(evaluations)
    for line in failures:
        click.echo(f"check failed: {line}", err=True)
    passed = sum(e.passed for e in evaluations)
    click.echo(f"run {result.run_id} {'SUCCESS' if result.success else 'FAILURE'}: {len(mats)} materialization(s), "
               f"{passed}/{len(evaluations)} check(s) passed; {process_seconds():.1f}s for the command "
               f"(run {ran:.1f}s, the rest start-up: Python, Dagster, the code location); instance "
               f"{state.layout.dagster_dir}")
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                click.echo(f"Error: {event.step_failure_data.error.message.strip().splitlines()[0]}", err=True)
        raise SystemExit(EXIT_PROBLEM)
