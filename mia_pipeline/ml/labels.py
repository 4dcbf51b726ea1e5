"""Labels with their horizons: each row has ``t0`` (decision time) and ``t1`` (outcome known).

Two kinds, one row per decision (signal):

- **trade outcome** (executed signals): the trade opened by the signal (matched by symbol and side to
  the first trade filled within ``link_tolerance`` after it) and its ``trade_exits`` row.
  ``success`` = net pnl > 0; ``r_multiple`` = side * (exit - entry) / |entry - stop_loss|, the price
  move in units of the risk taken at entry (``risk_management.stop_loss`` of the trade snapshot);
  ``trade_t1`` = the exit time.
- **triple barrier** (every signal, López de Prado ch. 3): entry = close of the last bar closed at t0;
  barriers at entry * exp(+/- k * sigma * sqrt(n_bars)) where sigma is the std of 1-min log returns
  over ``vol_window`` bars up to that bar (known at t0), ``k`` = ``profit_take`` / ``stop_loss``
  (mirrored for SELL); vertical barrier at t0 + ``horizon``. Bars are scanned from the first bar that
  opens at or after t0; a touch is known at the touching bar's close (``tb_t1``). A bar touching both
  barriers counts as the stop (conservative). ``tb_label`` = +1 profit-take, -1 stop, 0 time barrier.
  If the data ends before the time barrier and nothing was touched, the label is unknown (NaN).

``t1`` = the later of ``trade_t1`` and ``tb_t1`` (what purging must respect). Rows with no known
label are dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mia_pipeline.ml.errors import DatasetError
from mia_pipeline.ml.rolling import group_positions, rolling_mean_std

SIDE = {"BUY": 1.0, "SELL": -1.0}
LINK_TOLERANCE = pd.Timedelta("10s")
HORIZON = pd.Timedelta("30min")


def link_trades(signals: pd.DataFrame, trades: pd.DataFrame,
                tolerance: pd.Timedelta = LINK_TOLERANCE) -> pd.DataFrame:
    """trade_id -> signal_id: the last executed signal of the same symbol and side at or before the fill."""
    ex = signals.loc[signals["executed"], ["signal_id", "t0", "symbol", "action"]].sort_values("t0")
    tr = trades[["trade_id", "entry_ts", "symbol", "action"]].sort_values("entry_ts")
    tr = tr.assign(entry_ts=tr["entry_ts"].astype(ex["t0"].dtype))
    linked = pd.merge_asof(tr, ex, left_on="entry_ts", right_on="t0", by=["symbol", "action"],
                           direction="backward", tolerance=tolerance)
    linked = linked.dropna(subset=["signal_id"])
    # one trade per signal: the first fill after it
    return linked.sort_values("entry_ts").drop_duplicates("signal_id")[["trade_id", "signal_id"]]


def trade_labels(signals: pd.DataFrame, trades: pd.DataFrame, exits: pd.DataFrame,
                 tolerance: pd.Timedelta = LINK_TOLERANCE) -> pd.DataFrame:
    """One row per closed trade linked to its signal: signal_id, trade_id, t0, trade_t1, pnl, success, r_multiple."""
    if len(trades) and not len(exits):
        raise DatasetError(f"{len(trades)} trade(s) but no trade_exits in the window: trade outcomes cannot "
                           "be labelled (include the days when these trades closed)")
    link = link_trades(signals, trades, tolerance)
    df = (link.merge(trades, on="trade_id").merge(exits, on="trade_id", how="inner")
          .merge(signals[["signal_id", "t0"]], on="signal_id"))
    side = df["action"].map(SIDE).astype(float)
    risk = (df["entry_price"] - df["stop_loss"]).abs()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = side * (df["exit_price"] - df["entry_price"]) / risk.where(risk > 0)
    out = pd.DataFrame({
        "signal_id": df["signal_id"], "trade_id": df["trade_id"], "t0": df["t0"],
        "trade_t1": df["exit_ts"].astype(df["t0"].dtype), "pnl": df["pnl"].astype(float),
        "success": (df["pnl"] > 0).astype(float), "r_multiple": r.astype(float),
        "exit_reason": df["exit_reason"],
    })
    return out.sort_values("t0", kind="stable").reset_index(drop=True)


def triple_barrier_labels(events: pd.DataFrame, bars: pd.DataFrame, period: pd.Timedelta, *,
                          profit_take: float = 2.0, stop_loss: float = 1.0,
                          horizon: pd.Timedelta = HORIZON, vol_window: int = 20) -> pd.DataFrame:
    """Triple-barrier labels for ``events`` (signal_id, t0, symbol, side in {+1, -1}); see module doc."""
    n_bars = max(int(horizon / period), 1)
    out = pd.DataFrame({"signal_id": events["signal_id"].to_numpy(), "t0": events["t0"].reset_index(drop=True),
                        "tb_label": np.nan, "tb_return": np.nan, "tb_entry": np.nan, "tb_sigma": np.nan})
    out["tb_t1"] = pd.Series(pd.NaT, index=out.index, dtype=out["t0"].dtype)
    out["tb_entry_asof"] = pd.Series(pd.NaT, index=out.index, dtype=out["t0"].dtype)
    if not len(events) or not len(bars):
        return out
    b = bars.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    pos = group_positions(b["symbol"].to_numpy())
    close = b["close"].to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ret = np.log(close / np.where(pos > 0, np.roll(close, 1), np.nan))
    _, sigma = rolling_mean_std(ret, pos, vol_window, min_periods=2)
    open_ns = to_ns(b["ts"])
    close_ns = open_ns + int(period.value)
    high, low = b["high"].to_numpy(np.float64), b["low"].to_numpy(np.float64)
    t0 = to_ns(events["t0"])
    side = np.where(events["side"].to_numpy(np.float64) < 0, -1.0, 1.0)
    sym = events["symbol"].to_numpy()
    asof = np.full(len(events), -1)
    first = np.zeros(len(events), dtype=np.int64)
    end = np.zeros(len(events), dtype=np.int64)
    bsym = b["symbol"].to_numpy()
    for s in pd.unique(bsym):  # per symbol (a handful), not per row
        lo, hi = np.searchsorted(bsym, s, "left"), np.searchsorted(bsym, s, "right")
        m = sym == s
        a = lo + np.searchsorted(close_ns[lo:hi], t0[m], "right") - 1
        asof[m] = np.where(a >= lo, a, -1)
        first[m] = lo + np.searchsorted(open_ns[lo:hi], t0[m], "left")
        end[m] = hi
    ok = asof >= 0
    p0 = np.where(ok, close[np.maximum(asof, 0)], np.nan)
    sig = np.where(ok, sigma[np.maximum(asof, 0)], np.nan)
    width = sig * np.sqrt(n_bars)
    up_k = np.where(side > 0, profit_take, stop_loss)
    dn_k = np.where(side > 0, stop_loss, profit_take)
    upper, lower = p0 * np.exp(up_k * width), p0 * np.exp(-dn_k * width)
    barrier_ns = t0 + int(horizon.value)
    idx = first[:, None] + np.arange(n_bars)[None, :]
    valid = idx < end[:, None]
    idx_c = np.minimum(idx, len(b) - 1)
    valid &= close_ns[idx_c] <= barrier_ns[:, None]
    hit_up = valid & (high[idx_c] >= upper[:, None])
    hit_dn = valid & (low[idx_c] <= lower[:, None])
    big = n_bars + 1
    j_up = np.where(hit_up.any(1), hit_up.argmax(1), big)
    j_dn = np.where(hit_dn.any(1), hit_dn.argmax(1), big)
    long = side > 0
    j_p, j_s = np.where(long, j_up, j_dn), np.where(long, j_dn, j_up)  # profit-take / stop hit bars
    j = np.minimum(j_p, j_s)
    touched = (j < big) & ok & np.isfinite(width)
    is_profit = touched & (j_p < j_s)  # a bar touching both counts as the stop (conservative)
    label = np.where(is_profit, 1.0, -1.0)
    exit_px = np.where(is_profit == long, upper, lower)
    t1_touch = close_ns[np.take_along_axis(idx_c, np.minimum(j, n_bars - 1)[:, None], 1)[:, 0]]
    # time barrier: complete only if the symbol has a bar closing at or after the barrier
    last_close = np.where(end > 0, close_ns[np.maximum(end - 1, 0)], np.iinfo(np.int64).min)
    complete = ok & np.isfinite(width) & (last_close >= barrier_ns)
    n_valid = valid.sum(1)
    last_valid = np.take_along_axis(idx_c, np.maximum(n_valid - 1, 0)[:, None], 1)[:, 0]
    vert_px = np.where(n_valid > 0, close[last_valid], p0)
    vertical = ~touched & complete
    out["tb_label"] = np.where(touched, label, np.where(vertical, 0.0, np.nan))
    px = np.where(touched, exit_px, vert_px)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["tb_return"] = np.where(touched | vertical, side * np.log(px / p0), np.nan)
    t1 = np.where(touched, t1_touch, np.where(vertical, barrier_ns, np.iinfo(np.int64).min))
    tz = getattr(out["t0"].dt, "tz", None)
    out["tb_t1"] = _times(t1, t1 != np.iinfo(np.int64).min, tz)
    out["tb_entry"] = p0
    out["tb_sigma"] = sig
    out["tb_entry_asof"] = _times(close_ns[np.maximum(asof, 0)], ok, tz)
    return out


def to_ns(s: pd.Series) -> np.ndarray:
    """Datetimes (naive = UTC, or tz-aware, any unit) -> int64 epoch ns."""
    s = pd.Series(s)
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.dt.as_unit("ns").to_numpy().view(np.int64)


def _times(ns: np.ndarray, present: np.ndarray, tz) -> pd.DatetimeIndex:
    t = pd.DatetimeIndex(np.where(present, ns, np.iinfo(np.int64).min).astype("datetime64[ns]"))
    return t.tz_localize("UTC").tz_convert(tz) if tz is not None else t
