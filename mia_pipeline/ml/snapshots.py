"""Daily partitions -> flat pandas frames the ML layer works on (one ``Snapshots`` per window)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.ml.errors import DatasetError

FEATURE_COUNT = 8
RAW = [f"feature_{i}" for i in range(1, FEATURE_COUNT + 1)]
NORM = [f"norm_feature_{i}" for i in range(1, FEATURE_COUNT + 1)]
IMPORTANCE = [f"importance_{i}" for i in range(1, FEATURE_COUNT + 1)]

SIGNAL_COLUMNS = {
    "signal_id": "signal_id", "ts": "t0", "symbol": "symbol", "timeframe": "timeframe",
    "battle_navale_analysis.primary_pattern": "primary_pattern",
    "battle_navale_analysis.confluence_levels.technical": "confluence_technical",
    "battle_navale_analysis.confluence_levels.fundamental": "confluence_fundamental",
    "battle_navale_analysis.confluence_levels.sentiment": "confluence_sentiment",
    "battle_navale_analysis.confluence_levels.overall": "confluence_overall",
    "battle_navale_analysis.vikings_defenseurs.mode": "vd_mode",
    "battle_navale_analysis.vikings_defenseurs.strength": "vd_strength",
    "battle_navale_analysis.vikings_defenseurs.momentum": "vd_momentum",
    "features_snapshot.calculation_timestamp": "features_asof",
    "decision.action": "action", "decision.confidence": "confidence",
    "decision.executed": "executed", "decision.execution_delay_ms": "execution_delay_ms",
}
TRADE_COLUMNS = {
    "trade_id": "trade_id", "ts": "entry_ts", "symbol": "symbol", "action": "action", "quantity": "quantity",
    "price": "entry_price", "battle_navale.pattern": "pattern", "battle_navale.market_regime": "market_regime",
    "execution.commission": "entry_commission",
    "risk_management.stop_loss": "stop_loss", "risk_management.take_profit": "take_profit",
    "risk_management.risk_reward_ratio": "risk_reward_ratio",
}
EXIT_COLUMNS = {
    "trade_id": "trade_id", "ts": "exit_ts", "exit_price": "exit_price", "entry_price": "exit_entry_price",
    "pnl": "pnl", "reason": "exit_reason",
}
BAR_COLUMNS = {"ts": "ts", "source": "source", "symbol": "symbol", "timeframe": "timeframe", "open": "open",
               "high": "high", "low": "low", "close": "close", "volume": "volume", "bid_volume": "bid_volume",
               "ask_volume": "ask_volume"}


@dataclass
class Snapshots:
    """The window's inputs, flat: one frame per dataset, sorted by time. ``start``/``end`` are ISO days."""

    start: str
    end: str
    signals: pd.DataFrame
    trades: pd.DataFrame
    trade_exits: pd.DataFrame
    market_bars: pd.DataFrame

    def truncated(self, cutoff: pd.Timestamp, bar_period: pd.Timedelta) -> Snapshots:
        """Only what was known at ``cutoff`` (bars count from their close): for point-in-time checks."""
        return Snapshots(
            self.start, self.end,
            self.signals[self.signals["t0"] <= cutoff].reset_index(drop=True),
            self.trades[self.trades["entry_ts"] <= cutoff].reset_index(drop=True),
            self.trade_exits[self.trade_exits["exit_ts"] <= cutoff].reset_index(drop=True),
            self.market_bars[self.market_bars["ts"] + bar_period <= cutoff].reset_index(drop=True),
        )


def _flatten(table: pa.Table) -> pa.Table:
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table


def _vectors(table: pa.Table, column: str, names: list[str]) -> pd.DataFrame:
    """A list<double> column of fixed length -> one float column per element (NaN for bad rows)."""
    n = table.num_rows
    out = np.full((n, len(names)), np.nan)
    if column in table.column_names and n:
        col = table.column(column).combine_chunks()
        lens = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False)
        ok = lens == len(names)
        if ok.any():
            vals = pc.list_flatten(col.filter(pa.array(ok))).to_numpy(zero_copy_only=False)
            out[ok] = np.asarray(vals, dtype=np.float64).reshape(-1, len(names))
    return pd.DataFrame(out, columns=names)


def _frame(table: pa.Table, mapping: dict[str, str], dataset: str) -> pd.DataFrame:
    flat = _flatten(table)
    missing = [c for c in mapping if c not in flat.column_names]
    if missing and flat.num_rows:
        raise DatasetError(f"{dataset} lacks the column(s) {', '.join(missing)}: not a {dataset} partition")
    cols = {new: flat.column(old).to_pandas() if old in flat.column_names else pd.Series([], dtype=object)
            for old, new in mapping.items()}
    return pd.DataFrame(cols)


def signals_frame(table: pa.Table) -> pd.DataFrame:
    df = _frame(table, SIGNAL_COLUMNS, "signals")
    flat = _flatten(table)
    parts = [df]
    for src, names in (("features_snapshot.raw_features", RAW), ("features_snapshot.normalized_features", NORM),
                       ("features_snapshot.feature_importance", IMPORTANCE)):
        parts.append(_vectors(flat, src, names))
    df = pd.concat(parts, axis=1)
    df["features_asof"] = df["features_asof"].fillna(df["t0"])
    df["executed"] = df["executed"].fillna(False).astype(bool)
    return df.sort_values(["t0", "signal_id"], kind="stable").reset_index(drop=True)


def trades_frame(table: pa.Table) -> pd.DataFrame:
    return _frame(table, TRADE_COLUMNS, "trades").sort_values(["entry_ts", "trade_id"]).reset_index(drop=True)


def exits_frame(table: pa.Table) -> pd.DataFrame:
    return _frame(table, EXIT_COLUMNS, "trade_exits").sort_values(["exit_ts", "trade_id"]).reset_index(drop=True)


def bars_frame(table: pa.Table, timeframe: str) -> pd.DataFrame:
    df = _frame(table, BAR_COLUMNS, "market_bars")
    df = df[df["timeframe"] == timeframe]
    # one series per symbol: if several sources recorded the same bar, keep the first source by name
    df = df.sort_values(["symbol", "ts", "source"], kind="stable").drop_duplicates(["symbol", "ts"])
    return df.reset_index(drop=True)
