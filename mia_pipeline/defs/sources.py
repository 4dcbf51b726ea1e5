"""Sources: the paper-trading simulator writing events into the landing zone."""

from datetime import date

import dagster as dg

from mia_pipeline.defs.foundation import data_tree
from mia_pipeline.defs.partitions import daily_partitions
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.sources.paper_trading import day_file, simulate


def day_file_metadata(path, scenario: str) -> dict:
    """A day's landing file as it is on disk: events (lines), bytes, path, scenario."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {"dagster/row_count": 0, "scenario": scenario}
    return {"dagster/row_count": data.count(b"\n"), "bytes": len(data), "scenario": scenario,
            "path": dg.MetadataValue.path(str(path))}


def paper_trading_events_recorded(streaming_dir, summary) -> list[dg.AssetMaterialization]:
    """Runless records of the days a `mia simulate` run wrote into the landing zone."""
    return [dg.AssetMaterialization(asset_key="paper_trading_events", partition=day,
                                    metadata=day_file_metadata(day_file(streaming_dir, date.fromisoformat(day)),
                                                               summary.scenarios.get(day, "")))
            for day in summary.trading_days]


class PaperTradingConfig(dg.Config):
    seed: int = 7


@dg.asset(group_name="sources", kinds={"jsonl"}, partitions_def=daily_partitions, deps=[data_tree])
def paper_trading_events(context: dg.AssetExecutionContext, config: PaperTradingConfig,
                         mia: MiaResource) -> dg.MaterializeResult:
    """Paper-trading events of one day: the reference Battle Navale strategy over a synthetic ES/NQ
    session with a simulated broker (signals, trades, exits, 1-min bars, performance samples).

    Grain: one JSON line per event. Source: mia_pipeline.sources.paper_trading over the synthetic
    generator, deterministic per (seed, day). Partition: the trading day (UTC; weekends give no file).
    Path: data/live/streaming/paper_trading_YYYY-MM-DD.jsonl (the landing zone; the sensor picks it up).
    """
    day = date.fromisoformat(context.partition_key)
    layout = mia.layout()
    summary = simulate(layout.streaming_dir, start=day, days=1, seed=config.seed)
    path = day_file(layout.streaming_dir, day)
    return dg.MaterializeResult(
        metadata={
            **day_file_metadata(path, summary.scenarios.get(day.isoformat(), "weekend: no session")),
            "trades": summary.trades,
            "win_rate": float(summary.win_rate or 0.0),
            "pnl": float(summary.pnl),
        }
    )
