"""Collection: the landing-zone ingestion step, the daily raw lines and dataset partitions, their
checks, live views.

Two writers of the daily partitions, both recording exactly the (dataset, day) partitions they wrote:

- ``landing_zone`` (unpartitioned) lands pending landing-zone events into whatever days they belong
  to, and logs, per day touched, ``raw_events`` (the day's raw lines), a materialization of each
  dataset of that day (with its own figures) and their check evaluations;
- ``daily_datasets`` (seven subsettable assets, daily partitions, single-run backfills) rebuilds exactly
  the selected datasets of exactly the requested days from their stored raw lines; selecting only
  its checks (job ``daily_checks``) evaluates them without rewriting anything.

Lineage by day: ``raw_events[D] -> <dataset>[D]``: landing day D2 leaves day D1 Synced; a change of
D1's raw lines makes D1's datasets (and nothing else) Unsynced until they are recorded again.
"""

import json
import warnings

import dagster as dg

from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.collection.landing import landing_lag
from mia_pipeline.collection.live import update_live_views
from mia_pipeline.collection.rebuild import RebuildError, rebuild_day
from mia_pipeline.defs.foundation import REFRESH_ON_UPDATE, data_tree
from mia_pipeline.defs.partitions import daily_partitions
from mia_pipeline.defs.recording import (
    GX_COMPLETENESS,
    GX_DESCRIPTION,
    blocking_failures,
    check_evaluations,
    data_version,
    partition_metadata,
    record_written,
    run_name,
    unrecorded,
)
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.defs.sources import paper_trading_events
from mia_pipeline.layout import DATASETS, MARKET_DATASETS, RAW_EVENTS
from mia_pipeline.quality.checks import BLOCKING, CHECK_DESCRIPTIONS, TRADING_DAY_HAS_DATA, checks_for
from mia_pipeline.storage import StorageError
from mia_pipeline.storage.describe import describe_partition

GRAIN = {
    "trades": "one row per trade entry snapshot (guide §2.2, every nested field), key trade_id",
    "trade_exits": "one row per trade close (exit price, pnl, reason), key trade_id",
    "signals": "one row per Battle Navale signal snapshot (guide §2.2), key signal_id",
    "market_bars": "one row per OHLCV bar, key (source, symbol, timeframe, ts)",
    "market_ticks": "one row per quote/trade tick, key (source, symbol, ts, seq)",
    "performance": "one row per performance/system metric sample, key (metric, ts)",
    "market_depth": "one row per order-book (L2) update: add/modify/delete a bid/ask level or clear the book, "
                    "end-of-batch flag, key (source, symbol, ts, seq)",
}


def _description(ds: str) -> str:
    return (
        f"Grain: {GRAIN[ds]}. Source: landing-zone events (data/live/streaming/*.jsonl) validated, "
        f"deduplicated and typed by mia_pipeline.collection; landed by `landing_zone`, or rebuilt from the "
        f"day's stored raw lines when this asset is materialized. Partition: UTC day of the event timestamp; "
        f"a partition's metadata is that day's own (dagster/row_count, bytes, sha256, path). "
        f"Path: data/snapshots/daily/YYYY-MM-DD/{ds}.parquet (+ _manifest.json, raw_events.parquet)."
    )


class IngestConfig(dg.Config):
    until: str = ""  # JSON {landing file: byte offset} set by landing_zone_sensor; "" = all pending


def live_session_event(layout, counts: dict) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(asset_key="live_session", metadata={
        **counts, "path": dg.MetadataValue.path(str(layout.current_session_dir))})


def landing_metadata(report, layout) -> dict:
    lag = landing_lag(layout)
    return {
        "lines": report.lines, "bytes": report.bytes, "files": report.files,
        "rows_landed": dg.MetadataValue.json(dict(report.landed)),
        "duplicates_dropped": sum(report.duplicates.values()),
        "quarantined": dg.MetadataValue.json(dict(report.quarantined)),
        "days_touched": dg.MetadataValue.json({k: sorted(v) for k, v in report.days.items() if k in DATASETS}),
        "pending_bytes_after": sum(lag.values()),
        **({"damaged_days": dg.MetadataValue.json(report.damaged)} if report.damaged else {}),
        **({"repaired_days": dg.MetadataValue.json(report.repaired)} if report.repaired else {}),
        "path": dg.MetadataValue.path(str(layout.streaming_dir)),
    }


def ingestion_written(report) -> dict[str, set]:
    """What an ingestion pass wrote: ``{dataset or raw_events: days}``."""
    return {ds: report.days.get(ds, set()) for ds in (*DATASETS, RAW_EVENTS)}


def record_ingestion(emit, instance, layout, store, report) -> list:
    """Record an ingestion pass inside its run: raw_events and the datasets of each day it wrote, their
    checks, then live_session (ingest_once rewrote the live views)."""
    return record_written(emit, instance, store, ingestion_written(report), after=[live_session_event(layout, report.live_views)])


@dg.asset(group_name="collection", kinds={"jsonl"}, deps=[data_tree, paper_trading_events])
def landing_zone(context: dg.AssetExecutionContext, config: IngestConfig, mia: MiaResource):
    """Landing-zone events ingested into the daily partitions (the ingestion step).

    Grain: one materialization per ingestion pass (lines, bytes, rows landed per dataset, days touched).
    Source: data/live/streaming/*.jsonl, written by paper trading, recorders, `mia import`.
    Partition: none; each (dataset, day) it writes is recorded as that day's materialization of the
    dataset, with the day's own figures and checks. Path: data/live/streaming/ (committed byte
    offsets in data/live/ingest_state.json); writes data/snapshots/daily/*/ and live/current_session/.
    """
    settings = mia.require()  # data_collection.enabled: false -> the run fails naming the key
    layout, store = mia.layout(), mia.store()
    until = json.loads(config.until) if config.until else None
    report = ingest_once(layout, store, frozenset(settings.symbols), until, refused_kinds=settings.refused_kinds())
    context.log.info(f"ingestion: {report.as_dict()}")
    yield dg.MaterializeResult(metadata=landing_metadata(report, layout))
    evaluations = record_ingestion(context.log_event, context.instance, layout, store, report)
    # Days a writer stored but never recorded (it died in between): recorded now, with their checks.
    evaluations += record_written(context.log_event, context.instance, store, unrecorded(context.instance, store))
    failures = blocking_failures(evaluations) + [f"{d} not written: {why}" for d, why in sorted(report.damaged.items())]
    if failures:
        raise dg.Failure(description="this ingestion found problems: " + "; ".join(failures))


# Partitioned checks (one evaluation per day) are a "preview" feature of Dagster 1.13: pinned in uv.lock.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    DATASET_CHECKS = [
        dg.AssetCheckSpec(name, asset=ds, blocking=name in BLOCKING, description=CHECK_DESCRIPTIONS[name],
                          partitions_def=daily_partitions)
        for ds in DATASETS for name in checks_for(ds)
    ] + [dg.AssetCheckSpec(GX_COMPLETENESS, asset=ds, description=GX_DESCRIPTION, partitions_def=daily_partitions)
         for ds in DATASETS]


raw_events = dg.AssetSpec(
    RAW_EVENTS, group_name="collection", kinds={"parquet"}, partitions_def=daily_partitions, deps=[landing_zone],
    description=(
        "The day's raw lines: every accepted landing-zone line (its file, offset and text), kept so any "
        "dataset partition of the day can be rebuilt. Grain: one row per accepted landing-zone line. Source: "
        "written by whoever lands events (landing_zone runs, `mia collect`, `mia import`, restores), never "
        "computed here (an external asset: each writer records the days it changed). Partition: UTC day of "
        "the event timestamp; its data version is the file's sha256, so only the days whose raw lines changed "
        "make their datasets Unsynced. Path: data/snapshots/daily/YYYY-MM-DD/raw_events.parquet."),
)


@dg.multi_asset(
    name="daily_datasets",
    specs=[dg.AssetSpec(ds, group_name="collection", kinds={"parquet"}, description=_description(ds),
                        deps=[raw_events], tags={"layer": "daily"}, owners=["team:data"])
           for ds in DATASETS],
    check_specs=DATASET_CHECKS,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
)
def daily_datasets(context: dg.AssetExecutionContext, mia: MiaResource):
    """Rebuild the selected datasets of the requested days from each day's stored raw lines.

    One run covers a range of days (single-run backfills). Each (dataset, day) is materialized with
    that day's own figures; a day without raw lines keeps what is stored (0 rows when nothing, and
    ``trading_day_has_data`` fails on a CME trading day). Checks run on each day of every dataset whose
    checks are selected (a checks-only selection rewrites nothing); a failing blocking check fails the
    run after everything is recorded.
    """
    store, settings = mia.store(), mia.settings()
    selected = [ds for ds in DATASETS if dg.AssetKey(ds) in context.selected_asset_keys]
    checked = [ds for ds in DATASETS if any(k.asset_key == dg.AssetKey(ds) for k in context.selected_asset_check_keys)]
    days = list(context.partition_keys)
    if not days:
        raise dg.Failure(description="the partition range holds no day (is its start after its end?); nothing written")
    try:
        for day in days if selected else ():
            if store.entry(day, RAW_EVENTS) is None:
                continue
            counts = rebuild_day(store, day, frozenset(settings.symbols), selected)
            context.log.info(f"rebuilt {day} from raw lines: {dict(counts)}")
        facts = {(ds, day): describe_partition(store, day, ds) for ds in selected for day in days}
    except (RebuildError, StorageError) as exc:  # damage: said plainly, nothing re-committed as valid
        raise dg.Failure(description=str(exc)) from None
    for ds in selected:
        for day in days:
            context.add_asset_metadata(partition_metadata(facts[ds, day]), asset_key=ds, partition_key=day)
        # One partition: its version is its content. A range: Dagster versions each partition by run.
        version = dg.DataVersion(data_version(facts[ds, days[0]])) if len(days) == 1 else None
        yield dg.MaterializeResult(asset_key=ds, data_version=version)
    selected_checks = set(context.selected_asset_check_keys)
    evaluations = check_evaluations(store, {ds: days for ds in checked}, selected=selected_checks,
                                    instance=context.instance, run=run_name(context))
    yield from evaluations
    # Each evaluation above carries its own day; the markers tell Dagster every selected check was
    # reported (otherwise it logs "did not yield expected outputs" for a range run).
    for spec in DATASET_CHECKS:
        if spec.key in selected_checks:
            yield dg.Output(None, output_name=spec.get_python_identifier())
    failures = blocking_failures(evaluations)
    if failures:
        raise dg.Failure(description="blocking checks failed: " + "; ".join(failures[:20]))


@dg.asset(group_name="collection", kinds={"json"}, deps=[landing_zone, *DATASETS], automation_condition=REFRESH_ON_UPDATE)
def live_session(mia: MiaResource) -> dg.MaterializeResult:
    """Live views of the current trading session.

    Grain: one JSON document per view (signals: latest 100; positions: trades without an exit;
    status: latest system_status per component + collector figures). Source: the daily dataset
    partitions and system_status events. Partition: none (always the current session); refreshed
    after every ingestion (in the same step) and by automation when any dataset partition changes.
    Path: data/live/current_session/{live_signals,open_positions,system_status}.json.
    """
    layout = mia.layout()
    counts = update_live_views(layout, mia.store())
    return dg.MaterializeResult(metadata={**counts, "path": dg.MetadataValue.path(str(layout.current_session_dir))})


daily_checks_job = dg.define_asset_job(
    "daily_checks",
    selection=dg.AssetSelection.checks_for_assets(*DATASETS) - dg.AssetSelection.checks(
        *(dg.AssetCheckKey(dg.AssetKey(ds), GX_COMPLETENESS) for ds in DATASETS)),
    executor_def=dg.in_process_executor,
    description="Evaluate the daily datasets' checks (not the Great Expectations suite) on a day or a range of "
                "days without rewriting anything: how writers outside runs (`mia collect`, `mia import`, "
                "`mia rebuild`, restores) have the checks of the days they wrote recorded.",
)

market_data_checks_job = dg.define_asset_job(
    "market_data_checks",
    selection=dg.AssetSelection.checks_for_assets(*MARKET_DATASETS) - dg.AssetSelection.checks(
        *(dg.AssetCheckKey(dg.AssetKey(ds), GX_COMPLETENESS) for ds in MARKET_DATASETS))
    | dg.AssetSelection.checks(*(dg.AssetCheckKey(dg.AssetKey(ds), TRADING_DAY_HAS_DATA)
                                 for ds in DATASETS if ds not in MARKET_DATASETS)),
    executor_def=dg.in_process_executor,
    description="The checks a write of market data alone can change: those of market_bars, market_ticks and "
                "market_depth (not the Great Expectations suite), and every other dataset's trading_day_has_data "
                "(the day may have gone from empty to stored). How `mia import` of ticks and the market-data "
                "recorders have the checks of the days they wrote recorded (daily_checks when other datasets "
                "were written too).",
)

landing_zone_ingest_job = dg.define_asset_job(
    "landing_zone_ingest", selection=dg.AssetSelection.assets(landing_zone, "warehouse_views"),
    executor_def=dg.in_process_executor,  # two light steps, often: no subprocess per step
    description="Land pending landing-zone events (the sensor's runs), then refresh the warehouse views.",
)
