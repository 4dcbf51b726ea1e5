"""Point-in-time features, one row per decision (signal) at its decision time ``t0``.

Every input is as of ``t0`` or earlier, and each source says which time it used:

- ``features_asof``: the signal's own ``features_snapshot.calculation_timestamp`` (<= t0);
- ``bar_asof``: the close time of the last market bar that had *closed* at t0 (bars are stamped at
  their open: a 1-min bar stamped 14:29 is known at 14:30), via an as-of join;
- ``success_asof``: the exit time of the last trade exit counted by the success rates (strictly < t0).

Rolling windows over signals are per symbol, over the current signal and the ones before it (rows
sorted by t0); over bars, per symbol, over the as-of bar and the bars before it. Nothing reads a later
row. Implementation: cumulative sums (:mod:`mia_pipeline.ml.rolling`) and ``pandas.merge_asof``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mia_pipeline.ml.rolling import (
    group_positions,
    momentum,
    rate_of_change,
    rolling_corr,
    rolling_mean_std,
    rolling_mean_std_multi,
    rolling_share_of_current,
    rolling_sum,
)
from mia_pipeline.ml.snapshots import IMPORTANCE, NORM, RAW

ASOF_SUFFIX = "_asof"
KEY_COLUMNS = ("signal_id", "t0", "symbol", "primary_pattern")
ROC_FLOOR = 0.1


def feature_columns(df: pd.DataFrame) -> list[str]:
    """The model inputs: numeric columns that are not keys or as-of times."""
    return [c for c in df.columns
            if c not in KEY_COLUMNS and not c.endswith(ASOF_SUFFIX) and pd.api.types.is_numeric_dtype(df[c])
            and not pd.api.types.is_bool_dtype(df[c])]


def _codes(s: pd.Series) -> np.ndarray:
    return pd.factorize(s, use_na_sentinel=True)[0]


def base_features(signals: pd.DataFrame) -> pd.DataFrame:
    """The signal's own values at t0: the 8 Battle Navale features (raw, normalised), confluence, decision."""
    df = signals.sort_values(["symbol", "t0", "signal_id"], kind="stable").reset_index(drop=True)
    out = df[["signal_id", "t0", "symbol", "primary_pattern", "features_asof", *RAW, *NORM, *IMPORTANCE,
              "confluence_technical", "confluence_fundamental", "confluence_sentiment", "confluence_overall",
              "vd_strength", "confidence"]].copy()
    out["side"] = df["action"].map({"BUY": 1.0, "SELL": -1.0, "HOLD": 0.0}).astype(float)
    out["vd_mode_code"] = df["vd_mode"].map({"VIKINGS_DOMINANT": 1.0, "DEFENSEURS_DOMINANT": -1.0,
                                             "BALANCED": 0.0}).astype(float)
    out["vd_momentum_code"] = df["vd_momentum"].map({"INCREASING": 1.0, "DECREASING": -1.0,
                                                     "STABLE": 0.0}).astype(float)
    out["_vd_mode"] = df["vd_mode"].to_numpy()
    return out


def temporal_features(x: np.ndarray, pos: np.ndarray, names: Sequence[str], windows: Sequence[int],
                      momenta: Sequence[int], rocs: Sequence[int], roc_floor: float = 0.0) -> dict[str, np.ndarray]:
    """Rolling means/stds, momentum and rate of change of each column of ``x`` (rows grouped by ``pos``)."""
    cols: dict[str, np.ndarray] = {}
    x = np.asarray(x, dtype=np.float64).reshape(len(pos), -1)
    stats = rolling_mean_std_multi(x, pos, windows)
    for w in windows:
        mean, std = stats[w]
        for j, n in enumerate(names):
            cols[f"{n}_mean_{w}"] = mean[:, j]
            cols[f"{n}_std_{w}"] = std[:, j]
    for k in momenta:
        m = momentum(x, pos, k)
        for j, n in enumerate(names):
            cols[f"{n}_mom_{k}"] = m[:, j]
    for k in rocs:
        r = rate_of_change(x, pos, k, roc_floor)
        for j, n in enumerate(names):
            cols[f"{n}_roc_{k}"] = r[:, j]
    return cols


def signal_temporal_features(base: pd.DataFrame, windows, momenta, rocs) -> pd.DataFrame:
    pos = group_positions(base["symbol"].to_numpy())
    # the Battle Navale features are oscillators around 0: rates of change use a floor of ROC_FLOOR
    return pd.DataFrame(temporal_features(base[RAW].to_numpy(), pos, RAW, windows, momenta, rocs, ROC_FLOOR),
                        index=base.index)


def bar_features(bars: pd.DataFrame, period: pd.Timedelta, windows, momenta, rocs) -> pd.DataFrame:
    """Per-bar features of 1-min bars (per symbol), each stamped with ``bar_asof`` = the bar's close time."""
    b = bars.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    pos = group_positions(b["symbol"].to_numpy())
    close = b["close"].to_numpy(dtype=np.float64)
    prev = np.where(pos > 0, np.roll(close, 1), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ret = np.log(close / prev)
    cols: dict[str, np.ndarray] = {"bar_asof": (b["ts"] + period).to_numpy(), "symbol": b["symbol"].to_numpy(),
                                   "bar_close": close, "bar_ret": ret}
    for w in windows:
        mean, std = rolling_mean_std(ret, pos, w, min_periods=2)
        cols[f"bar_ret_mean_{w}"], cols[f"bar_ret_std_{w}"] = mean, std
        vmean, _ = rolling_mean_std(b["volume"].to_numpy(dtype=np.float64), pos, w)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols[f"bar_volume_ratio_{w}"] = b["volume"].to_numpy(dtype=np.float64) / vmean
    for k in momenta:
        cols[f"bar_close_mom_{k}"] = momentum(close, pos, k)
    for k in rocs:
        cols[f"bar_close_roc_{k}"] = rate_of_change(close, pos, k)
    vol = b["volume"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        imb = (b["ask_volume"].to_numpy(dtype=np.float64) - b["bid_volume"].to_numpy(dtype=np.float64)) / vol
    imb[~np.isfinite(imb)] = np.nan
    cols["bar_flow_imbalance"] = imb
    w_short, w_long = min(windows), max(windows)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["bar_vol_regime"] = cols[f"bar_ret_std_{w_short}"] / cols[f"bar_ret_std_{w_long}"]
    return pd.DataFrame(cols)


def asof_join_bars(base: pd.DataFrame, bar_feats: pd.DataFrame) -> pd.DataFrame:
    """For each decision, the bar features of the last bar of its symbol whose close time is <= t0."""
    left = base[["signal_id", "t0", "symbol"]].reset_index().sort_values("t0", kind="stable")
    right = bar_feats.sort_values("bar_asof", kind="stable")
    right = right.assign(bar_asof=right["bar_asof"].astype(left["t0"].dtype))
    joined = pd.merge_asof(left, right, left_on="t0", right_on="bar_asof", by="symbol",
                           direction="backward", allow_exact_matches=True)
    joined = joined.set_index("index").sort_index()
    return joined.drop(columns=["signal_id", "t0", "symbol"])


def success_rates(base: pd.DataFrame, trades: pd.DataFrame, exits: pd.DataFrame) -> pd.DataFrame:
    """Win rate by pattern (and overall) of the trades whose exit is strictly before t0.

    Smoothed as (wins + 1) / (closed + 2) so a pattern with no history reads 0.5; ``*_n`` columns hold
    the number of closed trades counted. ``success_asof`` is the exit time of the last exit counted.
    """
    closed = exits.merge(trades[["trade_id", "pattern"]], on="trade_id", how="inner")
    closed = closed.dropna(subset=["exit_ts"]).sort_values(["exit_ts", "trade_id"], kind="stable")
    closed = closed.assign(win=(closed["pnl"] > 0).astype(float))
    closed["pattern_n"] = closed.groupby("pattern").cumcount() + 1.0
    closed["pattern_wins"] = closed.groupby("pattern")["win"].cumsum()
    closed["all_n"] = np.arange(1, len(closed) + 1, dtype=float)
    closed["all_wins"] = closed["win"].cumsum()
    left = base[["t0", "primary_pattern"]].reset_index().sort_values("t0", kind="stable")
    ts_type = left["t0"].dtype
    closed = closed.assign(exit_ts=closed["exit_ts"].astype(ts_type))
    by_pat = pd.merge_asof(left, closed[["exit_ts", "pattern", "pattern_n", "pattern_wins"]],
                           left_on="t0", right_on="exit_ts", left_by="primary_pattern", right_by="pattern",
                           direction="backward", allow_exact_matches=False)
    overall = pd.merge_asof(left[["index", "t0"]], closed[["exit_ts", "all_n", "all_wins"]],
                            left_on="t0", right_on="exit_ts", direction="backward", allow_exact_matches=False)
    by_pat = by_pat.set_index("index").sort_index()
    overall = overall.set_index("index").sort_index()
    n_p, w_p = by_pat["pattern_n"].fillna(0.0), by_pat["pattern_wins"].fillna(0.0)
    n_a, w_a = overall["all_n"].fillna(0.0), overall["all_wins"].fillna(0.0)
    return pd.DataFrame({
        "pattern_success_rate": (w_p + 1.0) / (n_p + 2.0), "pattern_success_n": n_p,
        "overall_success_rate": (w_a + 1.0) / (n_a + 2.0), "overall_success_n": n_a,
        # the later of the two exits used (both are < t0)
        "success_asof": pd.concat([by_pat["exit_ts"], overall["exit_ts"]], axis=1).max(axis=1),
    }, index=base.index)


def battle_navale_features(base: pd.DataFrame, lookbacks: Sequence[int]) -> pd.DataFrame:
    """Pattern frequency, confluence history and regime (Vikings/Défenseurs mode) stability, per symbol."""
    pos = group_positions(base["symbol"].to_numpy())
    pat = _codes(base["primary_pattern"])
    mode = _codes(base["_vd_mode"])
    conf = base["confluence_overall"].to_numpy(dtype=np.float64)
    changed = np.where(pos > 0, (mode != np.roll(mode, 1)).astype(float), 0.0)
    cols: dict[str, np.ndarray] = {}
    for w in lookbacks:
        cols[f"pattern_freq_{w}"] = rolling_share_of_current(pat, pos, w)
        mean, std = rolling_mean_std(conf, pos, w)
        cols[f"confluence_mean_{w}"] = mean
        cols[f"confluence_std_{w}"] = std
        with np.errstate(invalid="ignore", divide="ignore"):
            # a constant window (std 0) holds the current value at its mean: z = 0, not missing
            z = np.where(std > 0, (conf - mean) / std, np.where(np.isfinite(mean), 0.0, np.nan))
        z[~np.isfinite(z)] = np.nan
        cols[f"confluence_z_{w}"] = z
        cols[f"regime_share_{w}"] = rolling_share_of_current(mode, pos, w)
        # mode switches between consecutive rows inside the window: w - 1 comparisons
        n = np.minimum(w, pos + 1)
        sw = rolling_sum(changed, pos, w - 1) if w > 1 else np.zeros(len(pos))
        with np.errstate(invalid="ignore", divide="ignore"):
            cols[f"regime_stability_{w}"] = np.where(n > 1, 1.0 - sw / (n - 1), 1.0)
    return pd.DataFrame(cols, index=base.index)


def interaction_features(base: pd.DataFrame, pairs: Sequence[tuple[int, int]], window: int) -> pd.DataFrame:
    """Rolling correlations of feature pairs, ratios of the row's two most important features, composites."""
    pos = group_positions(base["symbol"].to_numpy())
    cols: dict[str, np.ndarray] = {}
    for a, b in pairs:
        fa, fb = base[f"feature_{a}"].to_numpy(dtype=np.float64), base[f"feature_{b}"].to_numpy(dtype=np.float64)
        r = rolling_corr(fa, fb, pos, window)
        # After warm-up, a window where one feature stayed constant co-moves with nothing: 0, not missing.
        flat = np.isnan(r) & (pos >= 2) & np.isfinite(fa) & np.isfinite(fb)
        cols[f"corr_f{a}_f{b}_{window}"] = np.where(flat, 0.0, r)
    imp = base[IMPORTANCE].to_numpy(dtype=np.float64)
    raw = base[RAW].to_numpy(dtype=np.float64)
    norm = base[NORM].to_numpy(dtype=np.float64)
    order = np.argsort(-np.nan_to_num(imp, nan=-np.inf), axis=1, kind="stable")
    rows = np.arange(len(base))
    top1, top2 = norm[rows, order[:, 0]], norm[rows, order[:, 1]] if len(base) else norm[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = top1 / (np.abs(top2) + 1e-6) * np.sign(np.where(top2 == 0, 1.0, top2))
        cols["top_importance_ratio"] = np.clip(ratio, -1e3, 1e3)
        weight = np.nansum(imp, axis=1)
        cols["importance_weighted_score"] = np.nansum(imp * norm, axis=1) / np.where(weight > 0, weight, np.nan)
    cols["top1_feature_value"] = top1
    cols["top1_feature_index"] = order[:, 0].astype(float) + 1.0 if len(base) else np.zeros(0)
    cols["raw_feature_l2"] = np.sqrt(np.nansum(raw * raw, axis=1))
    conf = base["confluence_overall"].to_numpy(dtype=np.float64)
    cols["confluence_x_confidence"] = conf * base["confidence"].to_numpy(dtype=np.float64)
    cols["vd_pressure"] = base["vd_mode_code"].to_numpy() * base["vd_strength"].to_numpy(dtype=np.float64)
    cols["confluence_dispersion"] = base[["confluence_technical", "confluence_fundamental",
                                          "confluence_sentiment"]].std(axis=1, ddof=0).to_numpy()
    return pd.DataFrame(cols, index=base.index)
