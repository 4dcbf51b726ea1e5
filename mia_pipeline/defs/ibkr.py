"""Interactive Brokers in Dagster: the historical bars as one asset partitioned by day × series,
and the live recorder job.

The series (contract × bar size × IB whatToShow, e.g. ``EURUSD_15min_BID_ASK``) come from the
``ibkr:`` settings read when the code location loads (as the schedules' time zone is); TRADES/VOLUME
are left out for FX pairs (IB has none). Each (day, series) written is materialized with its own
figures; a day IB answered empty or not at all fails the run and is not materialized; a series IB
does not serve is logged, not materialized.

Why one asset with a static ``series`` dimension (not an asset per series, not dynamic partitions):
the catalog shows one readable asset whose partition grid is the configured series, and the series
follow the settings without any state kept in the instance (dynamic partitions would have to be
added and pruned by hand whenever ``ibkr.symbols`` changes).

Backfills: with ``BackfillPolicy.single_run()`` Dagster 1.13 launches one run per rectangle of the
grid it can form: a range of days of one series, or one day of a run of adjacent series, is one run;
D days × S series (both > 1) become min(D, S) runs (one per series or per day). Each run asks IB for
its days × series in one connection.
"""

from collections import defaultdict
from datetime import date

import dagster as dg

from mia_pipeline.defs.foundation import data_tree
from mia_pipeline.defs.partitions import daily_partitions
from mia_pipeline.defs.recording import record_written
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.settings import IbkrConfig, SettingsError, load_settings
from mia_pipeline.sources.ibkr.contracts import Series, instruments, plan_series

DAY, SERIES_DIM = "day", "series"
NO_SERIES = "none_configured"  # a static dimension cannot be empty: the only key when no series is configured


def _configured() -> IbkrConfig:
    try:
        return load_settings().ibkr
    except SettingsError:  # a broken mia.yaml is reported by every command; the UI still loads
        return IbkrConfig()


def configured_series(ibkr: IbkrConfig) -> list[Series]:
    return plan_series(instruments(tuple(ibkr.symbols), tuple(ibkr.futures)), ibkr.timeframes, ibkr.data_types)[0]


SERIES = {s.name: s for s in configured_series(_configured())}

ibkr_partitions = dg.MultiPartitionsDefinition({
    DAY: daily_partitions,
    SERIES_DIM: dg.StaticPartitionsDefinition(list(SERIES) or [NO_SERIES]),
})


def partition_key(day: date, series: Series) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DAY: day.isoformat(), SERIES_DIM: series.name})


def requested(partition_keys: list[dg.MultiPartitionKey]) -> list[tuple[list[Series], list[date]]]:
    """The run's partitions as (series, days) rectangles: the series sharing the same days go together
    (a single-run backfill is one rectangle). Series the code location does not know are dropped."""
    days_of: dict[str, set[date]] = defaultdict(set)
    for key in partition_keys:
        name = key.keys_by_dimension[SERIES_DIM]
        if name in SERIES:
            days_of[name].add(date.fromisoformat(key.keys_by_dimension[DAY]))
    groups: dict[tuple[date, ...], list[Series]] = defaultdict(list)
    for name, days in days_of.items():
        groups[tuple(sorted(days))].append(SERIES[name])
    return [(series, list(days)) for days, series in groups.items()]


def _metadata(result) -> dict:
    return {"dagster/row_count": result.rows, "day": result.day.isoformat(), "series": result.series.name,
            "attempts": result.attempts, "symbol": result.series.instrument.symbol,
            "timeframe": result.series.timeframe, "what_to_show": result.series.what, "source": result.series.source,
            "stored_in": f"market_bars (data/snapshots/daily/{result.day.isoformat()}/market_bars.parquet)"}


def backfill_materializations(results) -> list[dg.AssetMaterialization]:
    """One materialization of ``ibkr_history`` per (day, series) written, for the series the code location knows."""
    return [dg.AssetMaterialization(asset_key=ibkr_history.key, partition=partition_key(r.day, r.series),
                                    metadata=_metadata(r))
            for r in results if r.status == "written" and r.series.name in SERIES]


def record_backfill(instance: dg.DagsterInstance, results) -> None:
    """Runless records of what `mia backfill ibkr` wrote (the market_bars days are recorded apart)."""
    for event in backfill_materializations(results):
        instance.report_runless_asset_event(event)


DESCRIPTION = (
    "Historical Interactive Brokers bars of the configured series. Grain: one OHLCV bar, key "
    "(source=ibkr.<whatToShow>, symbol, timeframe, ts). Source: reqHistoricalData over ib_async, pacing-safe, "
    "one request per (series, UTC day). Partition: two dimensions, day (the UTC day of the bars) x series "
    "(<SYMBOL>_<bar>_<whatToShow>, from the ibkr: settings); an empty or missing answer fails that partition "
    "instead of storing an empty day; a series IB does not serve is logged and left unmaterialized. Path: "
    "data/snapshots/daily/YYYY-MM-DD/market_bars.parquet (rows of this source).")


@dg.multi_asset(
    name="ibkr_history",
    specs=[dg.AssetSpec("ibkr_history", group_name="sources", kinds={"parquet"}, description=DESCRIPTION,
                        skippable=True, deps=[data_tree], tags={"source": "ibkr"})],
    partitions_def=ibkr_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def ibkr_history(context: dg.AssetExecutionContext, mia: MiaResource):
    """Backfill the requested (day, series) partitions into market_bars, one IB connection per rectangle."""
    from mia_pipeline.sources.ibkr.backfill import BackfillAborted
    from mia_pipeline.sources.ibkr.service import run_backfill
    from mia_pipeline.sources.ibkr.session import ConnectFailure

    settings, layout, store = mia.require("ibkr_market_data"), mia.layout(), mia.store()
    groups = requested(context.partition_keys)
    if not groups:
        raise dg.Failure(description="no configured IB series among the requested partitions: set ibkr.symbols "
                                     "or ibkr.futures in mia.yaml and reload the code location")
    written: dict[str, set] = {}
    results = []
    try:
        for series, days in groups:
            run_backfill(settings.ibkr, layout, store, series, days, known_symbols=frozenset(settings.symbols),
                         on_result=results.append, written=written)
    except ConnectFailure as exc:
        raise dg.Failure(description=f"cannot connect to IB: {exc}") from None
    except BackfillAborted as exc:  # what was done before is in results already (on_result)
        raise dg.Failure(description=str(exc)) from None
    finally:
        for event in backfill_materializations(results):
            context.log_event(event)
        if written.get("market_bars"):
            record_written(context.log_event, context.instance, store, {ds: written.get(ds, set()) for ds in ("raw_events", "market_bars")})
    for r in results:
        if r.status == "unavailable":
            context.log.warning(f"{r.series.name} {r.day}: not served by IB ({r.detail}); not asked again")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise dg.Failure(description=f"{len(failed)} day(s) not stored: "
                         + "; ".join(f"{r.series.name} {r.day}: {r.detail}" for r in failed[:20]))
    # The output is optional: each (day, series) written was materialized above with its own figures,
    # so a closed day or a series IB does not serve is not recorded as materialized.
    yield from ()


class RecorderConfig(dg.Config):
    duration_s: float = 0.0  # 0: until the run is terminated from the UI
    flush_every_s: float = 1.0


@dg.op(description="Record IB quotes, RTVolume trades and 5-s bars into data/live/streaming/ibkr_<day>.jsonl "
                   "until duration_s elapses or the run is terminated; reconnects and resubscribes by itself.")
def ibkr_live_recorder(context: dg.OpExecutionContext, config: RecorderConfig, mia: MiaResource) -> None:
    from mia_pipeline.sources.ibkr.recorder import run_recorder
    from mia_pipeline.sources.ibkr.session import ConnectFailure

    try:
        stats = run_recorder(mia.require("ibkr_market_data").ibkr, mia.layout(), duration_s=config.duration_s or None,
                             flush_every_s=config.flush_every_s, say=context.log.info)
    except ConnectFailure as exc:
        raise dg.Failure(description=f"cannot connect to IB: {exc}") from None
    context.log.info(str(stats))


@dg.job(description="The IBKR live recorder as a long-running run: launch it to start recording, terminate the "
                    "run to stop (buffered events are flushed first). `mia collect` / landing_zone_sensor land "
                    "what it writes.", executor_def=dg.in_process_executor)
def ibkr_recorder_job():
    ibkr_live_recorder()
