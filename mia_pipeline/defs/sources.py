"""Sources: the paper-trading simulator writing events into the landing zone."""

from datetime import date

import dagster as dg

from mia_pipeline.defs.foundation import data_tree
from mia_pipeline.defs.partitions import daily_partitions
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.sources.paper_trading import day_file, simulate


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
            "dagster/row_count": summary.events,
            "trades": summary.trades,
            "win_rate": float(summary.win_rate or 0.0),
            "pnl": float(summary.pnl),
            "scenario": summary.scenarios.get(day.isoformat(), "weekend: no session"),
            "path": dg.MetadataValue.path(str(path)),
        }
    )
