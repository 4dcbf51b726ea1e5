"""MLDatasetBuilder: the guide's pipeline (§3.1) over the daily partitions, point in time.

    builder = MLDatasetBuilder(PartitionStore(layout))
    features, labels = builder.build_features_dataset("2025-06-23", "2025-06-25")

One row per decision (signal), indexed by ``signal_id``, sorted by ``t0``; ``features`` and ``labels``
have the same rows. See :mod:`mia_pipeline.ml.features` (what each feature reads and its as-of
column) and :mod:`mia_pipeline.ml.labels` (``t0``/``t1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, timedelta

import numpy as np
import pandas as pd

from mia_pipeline.ml import features as F
from mia_pipeline.ml.errors import DatasetError
from mia_pipeline.ml.labels import trade_labels, triple_barrier_labels
from mia_pipeline.ml.registry import custom_features
from mia_pipeline.ml.snapshots import (
    Snapshots,
    bars_frame,
    exits_frame,
    signals_frame,
    trades_frame,
)


@dataclass
class MLConfig:
    rolling_windows: tuple[int, ...] = (5, 10, 20)        # rolling means / stds
    momentum: tuple[int, ...] = (3, 7, 14)
    rate_of_change: tuple[int, ...] = (5, 10)
    lookback_periods: tuple[int, ...] = (5, 10, 15, 30)   # Battle Navale history windows
    correlation_window: int = 20
    correlation_pairs: tuple[tuple[int, int], ...] = ((1, 2), (2, 3), (3, 6), (1, 8))
    bar_timeframe: str = "1min"
    link_tolerance: str = "10s"        # signal -> trade fill
    tb_profit_take: float = 2.0
    tb_stop_loss: float = 1.0
    tb_horizon: str = "30min"
    tb_vol_window: int = 20
    exit_days: int = 0                 # extra days read after ``end`` for exits of trades opened in the window
    custom_features: tuple[str, ...] = ()  # names of registered feature functions (mia_pipeline.ml.registry)

    @classmethod
    def from_dict(cls, d: dict | None) -> MLConfig:
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DatasetError(f"unknown ML config key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        for k, v in d.items():
            if isinstance(v, list):
                d[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        return cls(**d)

    @property
    def bar_period(self) -> pd.Timedelta:
        return pd.Timedelta(self.bar_timeframe)


@dataclass
class _State:
    snapshots: Snapshots | None = None
    extra: dict = field(default_factory=dict)


class MLDatasetBuilder:
    features_count = 8
    lookback_periods = [5, 10, 15, 30]

    def __init__(self, store, config: MLConfig | dict | None = None):
        self.store = store
        self.config = config if isinstance(config, MLConfig) else MLConfig.from_dict(config)
        self.lookback_periods = list(self.config.lookback_periods)
        self._state = _State()

    # ------------------------------------------------------------------ 1. snapshots
    def load_snapshots(self, start_date: str | date, end_date: str | date) -> Snapshots:
        start, end = pd.Timestamp(str(start_date)).date(), pd.Timestamp(str(end_date)).date()
        if end < start:
            raise DatasetError(f"empty window: end {end} is before start {start}")
        exit_end = end + timedelta(days=self.config.exit_days)
        sig = self.store.read_window("signals", start, end)
        if sig.num_rows == 0:
            raise DatasetError(f"no signals between {start} and {end}: nothing to build a dataset from "
                               "(collect or simulate these days first)")
        bars = self.store.read_window("market_bars", start, exit_end)
        snaps = Snapshots(
            start.isoformat(), end.isoformat(),
            signals_frame(sig),
            trades_frame(self.store.read_window("trades", start, end)),
            exits_frame(self.store.read_window("trade_exits", start, exit_end)),
            bars_frame(bars, self.config.bar_timeframe),
        )
        if not len(snaps.market_bars):
            raise DatasetError(f"no {self.config.bar_timeframe} market_bars between {start} and {exit_end}: "
                               "bar features and triple-barrier labels need them")
        if len(snaps.trades) and not len(snaps.trade_exits):
            raise DatasetError(f"{len(snaps.trades)} trade(s) but no trade_exits between {start} and {exit_end}: "
                               "trade outcomes cannot be labelled (include the days when these trades closed)")
        self._state.snapshots = snaps
        return snaps

    # ------------------------------------------------------------------ 2. features at t0
    def extract_features(self, snapshots: Snapshots | None = None) -> pd.DataFrame:
        snaps = snapshots or self._snapshots()
        return F.base_features(snaps.signals)

    # ------------------------------------------------------------------ 3. labels
    def create_labels(self, snapshots: Snapshots | None = None) -> pd.DataFrame:
        snaps = snapshots or self._snapshots()
        c = self.config
        sig = snaps.signals
        trades = trade_labels(sig, snaps.trades, snaps.trade_exits, pd.Timedelta(c.link_tolerance))
        events = pd.DataFrame({"signal_id": sig["signal_id"], "t0": sig["t0"], "symbol": sig["symbol"],
                               "side": sig["action"].map({"SELL": -1.0}).fillna(1.0)})
        tb = triple_barrier_labels(events, snaps.market_bars, c.bar_period, profit_take=c.tb_profit_take,
                                   stop_loss=c.tb_stop_loss, horizon=pd.Timedelta(c.tb_horizon),
                                   vol_window=c.tb_vol_window)
        lab = tb.merge(trades.drop(columns=["t0"]), on="signal_id", how="left")
        lab["executed"] = sig.set_index("signal_id").loc[lab["signal_id"], "executed"].to_numpy()
        lab["side"] = events["side"].to_numpy()
        lab["t1"] = lab[["tb_t1", "trade_t1"]].max(axis=1)
        lab = lab.dropna(subset=["t1"])
        cols = ["signal_id", "t0", "t1", "side", "executed", "trade_id", "success", "pnl", "r_multiple",
                "exit_reason", "trade_t1", "tb_label", "tb_return", "tb_t1", "tb_entry", "tb_sigma", "tb_entry_asof"]
        return lab[cols].set_index("signal_id").sort_values("t0", kind="stable")

    # ------------------------------------------------------------------ 4. engineering
    def feature_engineering(self, features_matrix: pd.DataFrame, snapshots: Snapshots | None = None) -> pd.DataFrame:
        snaps = snapshots or self._snapshots()
        c = self.config
        base = features_matrix
        parts = [
            base.drop(columns=["_vd_mode"]),
            F.signal_temporal_features(base, c.rolling_windows, c.momentum, c.rate_of_change),
            F.asof_join_bars(base, F.bar_features(snaps.market_bars, c.bar_period, c.rolling_windows,
                                                  c.momentum, c.rate_of_change)),
            F.success_rates(base, snaps.trades, snaps.trade_exits),
            F.battle_navale_features(base, c.lookback_periods),
            F.interaction_features(base, c.correlation_pairs, c.correlation_window),
            *custom_features(c.custom_features, base, snaps),
        ]
        out = pd.concat(parts, axis=1)
        out = out.set_index("signal_id", drop=True).sort_values(["t0", "symbol"], kind="stable")
        return out.replace([np.inf, -np.inf], np.nan).copy()

    # ------------------------------------------------------------------ the pipeline
    def build_features_dataset(self, start_date, end_date) -> tuple[pd.DataFrame, pd.DataFrame]:
        snapshots = self.load_snapshots(start_date, end_date)
        features_matrix = self.extract_features(snapshots)
        labels = self.create_labels(snapshots)
        enhanced = self.feature_engineering(features_matrix, snapshots)
        if not len(labels):
            raise DatasetError(f"no decision between {start_date} and {end_date} has a known outcome "
                               "(no closed trade, no barrier reached with market bars after it)")
        enhanced = enhanced.loc[labels.index]
        return enhanced, labels

    def features_at(self, snapshots: Snapshots, cutoff: pd.Timestamp | None) -> pd.DataFrame:
        """Features computed from only what was known at ``cutoff`` (for point-in-time checks)."""
        snaps = snapshots if cutoff is None else snapshots.truncated(cutoff, self.config.bar_period)
        return self.feature_engineering(self.extract_features(snaps), snaps).reset_index()

    def _snapshots(self) -> Snapshots:
        if self._state.snapshots is None:
            raise DatasetError("no snapshots loaded: call load_snapshots(start_date, end_date) first")
        return self._state.snapshots
