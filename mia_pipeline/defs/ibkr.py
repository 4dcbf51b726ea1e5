"""Interactive Brokers in Dagster: the historical series (one daily-partitioned asset per contract ×
bar size × data type, all computed by one subsettable multi-asset) and the live recorder job.

The series come from the ``ibkr:`` settings read when the code location loads (as the schedules'
time zone is); TRADES/VOLUME are left out for FX pairs (IB has none). Each (series, day) written is
materialized with that day's own figures; a day IB answered empty or not at all fails the run and is
not materialized; a series IB does not serve is logged, not materialized.
"""

from datetime import date

import dagster as dg

from mia_pipeline.defs.foundation import data_tree
from mia_pipeline.defs.partitions import daily_partitions
from mia_pipeline.defs.recording import record_written
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.settings import IbkrConfig, SettingsError, load_settings
from mia_pipeline.sources.ibkr.contracts import Series, instruments, plan_series


def _configured() -> IbkrConfig:
    try:
        return load_settings().ibkr
    except SettingsError:  # a broken mia.yaml is reported by every command; the UI still loads
        return IbkrConfig()


def configured_series(ibkr: IbkrConfig) -> list[Series]:
    return plan_series(instruments(tuple(ibkr.symbols), tuple(ibkr.futures)), ibkr.timeframes, ibkr.data_types)[0]


def series_key(s: Series) -> dg.AssetKey:
    return dg.AssetKey(["ibkr", s.name])


SERIES = {series_key(s): s for s in configured_series(_configured())}


def _metadata(result) -> dict:
    return {"dagster/row_count": result.rows, "day": result.day.isoformat(), "attempts": result.attempts,
            "symbol": result.series.instrument.symbol, "timeframe": result.series.timeframe,
            "what_to_show": result.series.what, "source": result.series.source,
            "stored_in": "market_bars (data/snapshots/daily/<day>/market_bars.parquet)"}


def backfill_materializations(results) -> list[dg.AssetMaterialization]:
    """One materialization per (series, day) written, for the series the code location knows."""
    return [dg.AssetMaterialization(asset_key=series_key(r.series), partition=r.day.isoformat(), metadata=_metadata(r))
            for r in results if r.status == "written" and series_key(r.series) in SERIES]


def record_backfill(instance: dg.DagsterInstance, results) -> None:
    """Runless records of what `mia backfill ibkr` wrote (the market_bars days are recorded apart)."""
    for event in backfill_materializations(results):
        instance.report_runless_asset_event(event)


def _description(s: Series) -> str:
    return (f"IB {s.what} bars of {s.instrument.symbol} ({s.instrument.kind}, {s.instrument.exchange}) every "
            f"{s.timeframe}. Grain: one OHLCV bar, key (source={s.source}, symbol, timeframe, ts). Source: "
            "reqHistoricalData over ib_async, pacing-safe, one request per UTC day. Partition: the UTC day of the "
            "bars; an empty or missing answer fails the partition instead of storing an empty day. Path: "
            "data/snapshots/daily/YYYY-MM-DD/market_bars.parquet (rows of this source).")


@dg.multi_asset(
    name="ibkr_history",
    specs=[dg.AssetSpec(key, group_name="sources", kinds={"parquet"}, description=_description(s), skippable=True,
                        deps=[data_tree], tags={"source": "ibkr"}) for key, s in SERIES.items()],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
)
def ibkr_history(context: dg.AssetExecutionContext, mia: MiaResource):
    """Backfill the selected IB series for the requested days into market_bars."""
    from mia_pipeline.sources.ibkr.backfill import BackfillAborted
    from mia_pipeline.sources.ibkr.service import run_backfill
    from mia_pipeline.sources.ibkr.session import ConnectFailure

    settings, layout, store = mia.settings(), mia.layout(), mia.store()
    series = [SERIES[k] for k in context.selected_asset_keys if k in SERIES]
    days = [date.fromisoformat(d) for d in context.partition_keys]
    written: dict[str, set] = {}
    results = []
    try:
        run_backfill(settings.ibkr, layout, store, series, days, known_symbols=frozenset(settings.symbols),
                     on_result=results.append, written=written)
    except ConnectFailure as exc:
        raise dg.Failure(description=f"cannot connect to IB: {exc}") from None
    except BackfillAborted as exc:
        results = exc.results
        raise dg.Failure(description=str(exc)) from None
    finally:
        for event in backfill_materializations(results):
            context.log_event(event)
        if written.get("market_bars"):
            record_written(context.log_event, context.instance, store, {"market_bars": written["market_bars"]})
    for r in results:
        if r.status == "unavailable":
            context.log.warning(f"{r.series.name} {r.day}: not served by IB ({r.detail}); not asked again")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise dg.Failure(description=f"{len(failed)} day(s) not stored: "
                         + "; ".join(f"{r.series.name} {r.day}: {r.detail}" for r in failed[:20]))
    # Outputs are skippable: each (series, day) written was materialized above with its own figures,
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
        stats = run_recorder(mia.settings().ibkr, mia.layout(), duration_s=config.duration_s or None,
                             flush_every_s=config.flush_every_s, say=context.log.info)
    except ConnectFailure as exc:
        raise dg.Failure(description=f"cannot connect to IB: {exc}") from None
    context.log.info(str(stats))


@dg.job(description="The IBKR live recorder as a long-running run: launch it to start recording, terminate the "
                    "run to stop (buffered events are flushed first). `mia collect` / landing_zone_sensor land "
                    "what it writes.", executor_def=dg.in_process_executor)
def ibkr_recorder_job():
    ibkr_live_recorder()
