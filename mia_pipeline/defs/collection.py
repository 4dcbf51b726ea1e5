"""Collection: landing zone → daily dataset partitions (multi-asset), checks, live views, sensor."""

import json

import dagster as dg

from mia_pipeline.collection.checks import CHECK_DESCRIPTIONS, CHECK_NAMES, run_all_checks
from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.collection.live import update_live_views
from mia_pipeline.collection.rebuild import rebuild_day
from mia_pipeline.defs.foundation import data_tree
from mia_pipeline.defs.partitions import daily_partitions
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.layout import DATASETS, RAW_EVENTS

GRAIN = {
    "trades": "one row per trade entry snapshot (guide §2.2, every nested field), key trade_id",
    "trade_exits": "one row per trade close (exit price, pnl, reason), key trade_id",
    "signals": "one row per Battle Navale signal snapshot (guide §2.2), key signal_id",
    "market_bars": "one row per OHLCV bar, key (source, symbol, timeframe, ts)",
    "market_ticks": "one row per quote/trade tick, key (source, symbol, ts, seq)",
    "performance": "one row per performance/system metric sample, key (metric, ts)",
}


def _description(ds: str) -> str:
    return (
        f"Grain: {GRAIN[ds]}. Source: landing-zone events (data/live/streaming/*.jsonl) validated, "
        f"deduplicated and typed by mia_pipeline.collection. Partition: UTC day of the event timestamp. "
        f"Path: data/snapshots/daily/YYYY-MM-DD/{ds}.parquet (+ _manifest.json, raw_events.parquet)."
    )


class IngestConfig(dg.Config):
    until: str = ""  # JSON {landing file: byte offset} set by landing_zone_sensor; "" = all pending
    rebuild: bool = False  # first rebuild the run's days from their stored raw lines


@dg.multi_asset(
    name="daily_datasets",
    specs=[dg.AssetSpec(ds, group_name="collection", kinds={"parquet"}, description=_description(ds),
                        deps=[data_tree]) for ds in DATASETS],
    check_specs=[dg.AssetCheckSpec(name, asset=ds, blocking=True, description=CHECK_DESCRIPTIONS[name])
                 for ds in DATASETS for name in CHECK_NAMES],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=False,
)
def daily_datasets(context: dg.AssetExecutionContext, config: IngestConfig, mia: MiaResource):
    """Ingest the landing zone into the daily partitions of every dataset, then check the run's days.

    A run covers a range of days (single-run backfills): with ``rebuild`` it first recreates those
    days from their raw lines; it always lands every pending landing-zone event (up to ``until``).
    """
    layout, store, settings = mia.layout(), mia.store(), mia.settings()
    key_range = context.partition_key_range
    start, end = key_range.start, key_range.end
    if config.rebuild:
        for day in store.days(RAW_EVENTS, start, end):
            counts = rebuild_day(store, day, frozenset(settings.symbols))
            context.log.info(f"rebuilt {day} from raw lines: {dict(counts)}")
    until = json.loads(config.until) if config.until else None
    report = ingest_once(layout, store, frozenset(settings.symbols), until)
    context.log.info(f"ingestion: {report.as_dict()}")
    for ds in DATASETS:
        days = store.days(ds, start, end)
        rows = sum(store.entry(d, ds).rows for d in days)
        yield dg.MaterializeResult(
            asset_key=ds,
            metadata={
                "row_count": rows,
                "days_with_data": len(days),
                "rows_added_this_run": report.landed.get(ds, 0),
                "duplicates_dropped": report.duplicates.get(ds, 0),
                "quarantined_this_run": sum(report.quarantined.values()),
                "path": dg.MetadataValue.path(str(layout.daily_dir)),
            },
        )
    outcomes = run_all_checks(store, start, end, DATASETS)
    for ds in DATASETS:
        for outcome in outcomes[ds]:
            yield dg.AssetCheckResult(
                asset_key=ds, check_name=outcome.name, passed=outcome.passed,
                metadata={"failing_rows": outcome.failing, "detail": outcome.detail},
            )


@dg.asset(group_name="collection", kinds={"json"}, deps=list(DATASETS))
def live_session(mia: MiaResource) -> dg.MaterializeResult:
    """Live views of the current trading session.

    Grain: one JSON document per view (signals: latest 100; positions: trades without an exit;
    status: latest system_status per component + collector figures). Source: the daily dataset
    partitions and system_status events. Partition: none (always the current session).
    Path: data/live/current_session/{live_signals,open_positions,system_status}.json.
    """
    layout = mia.layout()
    counts = update_live_views(layout, mia.store())
    return dg.MaterializeResult(metadata={**counts, "path": dg.MetadataValue.path(str(layout.current_session_dir))})


landing_zone_ingest_job = dg.define_asset_job("landing_zone_ingest", selection=[daily_datasets])
