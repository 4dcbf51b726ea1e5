"""Sierra Chart in Dagster: the daily ``sierra_market_data`` asset and the ``sierra_chart_sensor`` that
requests the days Sierra's files grew into.

Thin: the files are read and landed by :mod:`mia_pipeline.sources.sierra`; the (dataset, day)
partitions written are recorded with their own figures and checks (``record_written``).
"""

import hashlib
import json
from datetime import date, timedelta

import dagster as dg

from mia_pipeline.defs.foundation import data_tree
from mia_pipeline.defs.partitions import daily_partitions
from mia_pipeline.defs.recording import blocking_failures, record_written
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.layout import DATASETS, RAW_EVENTS


def _day_metadata(day: str, per_symbol: dict[str, dict]) -> dict:
    trades = sum(f.get("trades", 0) for f in per_symbol.values())
    return {"day": day, "dagster/row_count": trades, "trades": trades,
            "depth_updates": sum(f.get("depth_updates", 0) for f in per_symbol.values()),
            "symbols": dg.MetadataValue.json(per_symbol),
            "stored_in": "market_ticks, market_bars (1/5/15 min), market_depth "
                         "(data/snapshots/daily/<day>/*.parquet, source=sierra)"}


@dg.asset(
    group_name="sources", kinds={"parquet"}, partitions_def=daily_partitions, deps=[data_tree],
    backfill_policy=dg.BackfillPolicy.single_run(), tags={"source": "sierra"},
)
def sierra_market_data(context: dg.AssetExecutionContext, mia: MiaResource) -> dg.MaterializeResult:
    """Sierra Chart's order flow of one UTC day, landed from its .scid / .depth files.

    Grain: per configured symbol, every trade (market_ticks), 1/5/15-min bars with bid/ask volume and
    delta (market_bars, complete bars only) and every L2 update (market_depth). Source: Sierra's Data
    folder (``sierra.data_dir`` / ``sierra.files``), the day's records found by binary search.
    Partition: the UTC day; its metadata is that day's own (trades, volume, delta, POC / value area,
    depth updates per symbol). Path: data/snapshots/daily/YYYY-MM-DD/{market_ticks,market_bars,
    market_depth}.parquet (rows of source=sierra); re-materializing a day is idempotent.
    """
    from mia_pipeline.sources.sierra import SierraFileError
    from mia_pipeline.sources.sierra.files import configured_files
    from mia_pipeline.sources.sierra.ingest import land_depth, land_scid
    from mia_pipeline.sources.sierra.landing import merge_reports

    settings, layout, store = mia.require("sierra_chart_data"), mia.layout(), mia.store()
    files = configured_files(settings.sierra)
    if not files:
        raise dg.Failure(description=f"no Sierra .scid files (sierra.data_dir = {settings.sierra.data_dir!r}); "
                                     "run `mia sources test` to see why")
    known = frozenset(settings.symbols)
    reports, figures = [], {}
    for day in context.partition_keys:
        start = date.fromisoformat(day)
        window = {"start": f"{start}T00:00:00Z", "end": f"{start + timedelta(days=1)}T00:00:00Z"}
        per_symbol: dict[str, dict] = {}
        try:
            for f in files:
                landed = [land_scid(layout, store, f.scid, f.symbol, known_symbols=known,
                                    profile=settings.sierra.volume_profile, **window)]
                landed += [land_depth(layout, store, p, f.symbol, known_symbols=known, **window) for p in f.depth]
                for one in landed:
                    reports.append(one.report)
                    per_symbol.setdefault(f.symbol, {}).update(one.figures.get(day, {}))
        except SierraFileError as exc:
            raise dg.Failure(description=str(exc)) from None
        figures[day] = per_symbol
        context.add_asset_metadata(_day_metadata(day, per_symbol), partition_key=day)
    report = merge_reports(reports)
    written = {ds: sorted(days) for ds, days in report.days.items() if ds in (*DATASETS, RAW_EVENTS) and days}
    evaluations = record_written(context.log_event, context.instance, store, written)
    failures = blocking_failures(evaluations) + [f"{d} not written: {why}" for d, why in sorted(report.damaged.items())]
    if failures:
        raise dg.Failure(description="Sierra landing found problems: " + "; ".join(failures[:20]))
    return dg.MaterializeResult()


def plan_sierra_requests(paths, cursor: dict) -> tuple[dict, list[str], dict[str, str]]:
    """(new cursor, days to request, {file: error}) — the sensor's decision, without Dagster."""
    from mia_pipeline.sources.sierra.tail import growth

    new_cursor, grown = growth(paths, cursor)
    errors = {k[1:]: v[0] for k, v in grown.items() if k.startswith("!")}
    first = daily_partitions.start.date().isoformat()
    days = sorted({d for k, v in grown.items() if not k.startswith("!") for d in v if d >= first})
    return new_cursor, days, errors


@dg.sensor(asset_selection=[sierra_market_data], minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.STOPPED)
def sierra_chart_sensor(context: dg.SensorEvaluationContext, mia: MiaResource):
    """Watch the configured .scid / .depth files. The cursor is each file's record count (never its
    mtime): a tick where no file gained a whole record requests nothing; growth requests the UTC days
    the new records fall on, one sierra_market_data run per day."""
    from mia_pipeline.sources.sierra.files import configured_files

    settings = mia.settings()
    if why := settings.off_reason("sierra_chart_data"):
        return dg.SkipReason(why)
    cursor = json.loads(context.cursor) if context.cursor else {}
    paths = [p for f in configured_files(settings.sierra) for p in (f.scid, *f.depth)]
    if not paths:
        return dg.SkipReason("no Sierra .scid files configured or found (see `mia sources test`)")
    new_cursor, days, errors = plan_sierra_requests(paths, cursor)
    for path, why in errors.items():
        context.log.warning(f"skipped {path}: {why}")
    if new_cursor != cursor:
        context.update_cursor(json.dumps(new_cursor, sort_keys=True))
    if not days:
        return dg.SkipReason("no new whole records in the Sierra files")
    tag = hashlib.sha256(json.dumps(new_cursor, sort_keys=True).encode()).hexdigest()[:12]
    return [dg.RunRequest(partition_key=day, run_key=f"sierra-{day}-{tag}") for day in days]
