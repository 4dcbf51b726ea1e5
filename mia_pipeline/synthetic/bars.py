"""Bars and footprint recomputed from L1 trades (shared by the generator and the invariant checks).

Bars: ``ts`` is the bar start (epoch ms, aligned to multiples of ``bar_tf_s``); only bars with at
least one trade exist. ``vwap`` is the session VWAP (anchored at the Globex trading-day open, reset
after each daily halt) as of the bar's last trade; ``vwap_sd1``/``vwap_sd2`` are VWAP + 1/2
volume-weighted standard deviations (the lower bands are VWAP - the same distances).
Footprint: one row per bar and traded price; ``ask_volume`` is buyer-initiated volume (lifting the
ask), ``bid_volume`` seller-initiated, ``delta = ask_volume - bid_volume``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mia_pipeline.synthetic.schedule import open_intervals


@dataclass
class Trades:
    """Trades of one symbol in time order."""

    ts: np.ndarray
    price: np.ndarray  # float, on the tick grid
    size: np.ndarray
    side: np.ndarray  # +1 buy (at ask), -1 sell (at bid)


def trading_day(ts: np.ndarray) -> np.ndarray:
    """Index of the Globex trading day (0, 1, ...) of each epoch-ms time (for VWAP resets)."""
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64)
    ivs = open_intervals(int(ts.min()), int(ts.max()) + 1)
    opens = np.array([iv.open_ms for iv in ivs], dtype=np.int64) if ivs else np.zeros(1, np.int64)
    return np.maximum(np.searchsorted(opens, ts, side="right") - 1, 0)


def _runs(keys: np.ndarray) -> np.ndarray:
    """Start index of each run of equal consecutive keys."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))


def bars_of(t: Trades, tf_ms: int, day: np.ndarray) -> dict[str, np.ndarray]:
    """OHLCV + session VWAP bands per bar, plus the bar delta (for the footprint check)."""
    bar = t.ts - t.ts % tf_ms
    start = _runs(bar)
    if len(start) == 0:
        empty = np.zeros(0)
        return {k: empty for k in ("ts", "open", "high", "low", "close", "volume", "vwap", "vwap_sd1",
                                    "vwap_sd2", "delta")}
    end = np.concatenate([start[1:], [len(bar)]]) - 1
    size = t.size.astype(np.float64)
    ref = t.price[0]
    d = t.price - ref
    cum = np.cumsum(np.column_stack([size, size * d, size * d * d]), axis=0)
    day_start = _runs(day)
    before = np.vstack([np.zeros((1, 3)), cum[:-1]])[day_start]  # cumulative before each day
    mark = np.zeros(len(day), dtype=np.int64)
    mark[day_start] = 1
    run = np.cumsum(mark) - 1
    cum_day = cum[end] - before[run[end]]
    mean_d = cum_day[:, 1] / cum_day[:, 0]
    sd = np.sqrt(np.maximum(cum_day[:, 2] / cum_day[:, 0] - mean_d**2, 0.0))
    vwap = ref + mean_d
    return {
        "ts": bar[start],
        "open": t.price[start],
        "high": np.maximum.reduceat(t.price, start),
        "low": np.minimum.reduceat(t.price, start),
        "close": t.price[end],
        "volume": np.add.reduceat(t.size.astype(np.int64), start),
        "vwap": vwap,
        "vwap_sd1": vwap + sd,
        "vwap_sd2": vwap + 2.0 * sd,
        "delta": np.add.reduceat(t.size.astype(np.int64) * t.side, start),
    }


def footprint_of(t: Trades, tf_ms: int, tick: float) -> dict[str, np.ndarray]:
    """Buy/sell volume per bar and traded price level, sorted by bar then price."""
    if len(t.ts) == 0:
        z = np.zeros(0, dtype=np.int64)
        return {"bar_start_ts": z, "price_level": np.zeros(0), "bid_volume": z, "ask_volume": z, "delta": z}
    bar = t.ts - t.ts % tf_ms
    bar_idx = np.cumsum(np.concatenate([[0], (bar[1:] != bar[:-1]).astype(np.int64)]))
    px = np.rint(t.price / tick).astype(np.int64)
    lo = px.min()
    span = int(px.max() - lo + 1)
    keys, inv = np.unique(bar_idx * span + (px - lo), return_inverse=True)
    size = t.size.astype(np.float64)
    ask_volume = np.bincount(inv, weights=np.where(t.side > 0, size, 0.0)).astype(np.int64)
    bid_volume = np.bincount(inv, weights=np.where(t.side < 0, size, 0.0)).astype(np.int64)
    bar_ts = bar[_runs(bar)]
    return {
        "bar_start_ts": bar_ts[keys // span],
        "price_level": (keys % span + lo) * tick,
        "bid_volume": bid_volume,
        "ask_volume": ask_volume,
        "delta": ask_volume - bid_volume,
    }
