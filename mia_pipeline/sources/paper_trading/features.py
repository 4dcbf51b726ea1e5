"""The eight Battle Navale features and the market regime, per open second and symbol.

All windows are trailing and in open seconds; the row of second ``s`` uses data up to the end of
``s`` only (a signal at time t reads the last completed second), so the features are causal.

====  ===================  ==============================================================  ========
#     name                 definition                                                      source
====  ===================  ==============================================================  ========
1     vwap_deviation       (close - VWAP) / (VWAP+1sd - VWAP): position in the VWAP bands  bars
2     momentum_z           60-s log return / (1-s realized sigma over 5 min * sqrt(60))     bars
3     orderflow_delta      120-s aggressor delta / sqrt(120-s volume)                      footprint
4     volume_surge         log of 60-s volume over its 30-min trailing average              bars
5     delta_divergence     price vs delta divergence (> 0 bearish), 45 s                   leadership
6     volume_imbalance     (buy - sell) / (buy + sell) aggressor volume, 30 s              leadership
7     leader_signal        the other symbol's 30-s momentum z, weighted by how much it     leadership
                           leads this one (0 when this symbol leads)
8     absorption           sierra pattern strength signed against the aggressor: > 0 when  leadership
                           selling is absorbed (bullish), < 0 when buying is absorbed
====  ===================  ==============================================================  ========

``normalized`` is the causal expanding z-score of each feature over the session, clipped to ±4.
Regime: efficiency ratio of the price over 15 min (net move / path length sampled every 30 s);
TRENDING at or above ``StrategyConfig.trend_efficiency``, RANGING below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mia_pipeline.sources.paper_trading.market import MarketDay
from mia_pipeline.synthetic.features import lagged, rolling_sum

FEATURE_NAMES = ("vwap_deviation", "momentum_z", "orderflow_delta", "volume_surge", "delta_divergence",
                 "volume_imbalance", "leader_signal", "absorption")
N_FEATURES = len(FEATURE_NAMES)
REGIME_WINDOW_S = 900
REGIME_STEP_S = 30


@dataclass
class FeatureFrame:
    raw: np.ndarray  # (n, k, 8)
    normalized: np.ndarray  # (n, k, 8)
    sigma_1s: np.ndarray  # (n, k) realized 1-s log-return sigma (5 min)
    efficiency: np.ndarray  # (n, k) 15-min efficiency ratio in [0, 1]
    flow_change: np.ndarray  # (n, k) change of the 30-s imbalance over the last 30 s


def _count(n: int, w: int) -> np.ndarray:
    return np.minimum(np.arange(1, n + 1), w)[:, None]


def expanding_z(x: np.ndarray, clip: float = 4.0) -> np.ndarray:
    """Causal z-score of each column against its own history up to and including the row."""
    n = len(x)
    t = np.arange(1, n + 1).reshape((n,) + (1,) * (x.ndim - 1))
    mean = np.cumsum(x, axis=0) / t
    var = np.maximum(np.cumsum(x * x, axis=0) / t - mean**2, 0.0)
    z = np.where(var > 1e-12, (x - mean) / np.sqrt(np.maximum(var, 1e-12)), 0.0)
    return np.clip(z, -clip, clip)


def compute_features(m: MarketDay) -> FeatureFrame:
    n = m.n
    lc = np.log(m.close)
    r = np.diff(lc, axis=0, prepend=lc[:1])
    # Realized sigma with a floor of a quarter tick, so a frozen book never divides by zero.
    floor = 0.25 * 0.25 / m.close
    sigma = np.maximum(np.sqrt(rolling_sum(r * r, 300) / _count(n, 300)), floor)
    band = np.maximum(m.vwap_sd1 - m.vwap, 0.25)
    f1 = (m.close - m.vwap) / band
    f2 = (lc - lagged(lc, 60)) / (sigma * np.sqrt(60.0))
    delta = rolling_sum(m.buy_volume - m.sell_volume, 120)
    f3 = delta / np.sqrt(np.maximum(rolling_sum(m.buy_volume + m.sell_volume, 120), 1.0))
    avg60 = rolling_sum(m.volume, 1800) / _count(n, 1800) * 60.0
    f4 = np.log((rolling_sum(m.volume, 60) + 1.0) / (avg60 + 1.0))
    f5 = m.lf["delta_divergence"]
    f6 = m.lf["volume_imbalance"]
    z30 = (lc - lagged(lc, 30)) / (sigma * np.sqrt(30.0))
    follower = np.clip(-m.lf["leadership_strength"] * 4.0, 0.0, 1.0)
    f7 = z30[:, ::-1] * follower
    f8 = -m.lf["sierra_pattern_strength"] * np.sign(f6)
    raw = np.stack([f1, f2, f3, f4, f5, f6, f7, f8], axis=-1)
    raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
    return FeatureFrame(raw=raw, normalized=expanding_z(raw), sigma_1s=sigma,
                        efficiency=efficiency_ratio(m.close), flow_change=f6 - lagged(f6, 30))


def efficiency_ratio(close: np.ndarray, window: int = REGIME_WINDOW_S, step: int = REGIME_STEP_S) -> np.ndarray:
    """|net move over ``window``| / path length of ``step``-second moves inside it, in [0, 1]."""
    net = np.abs(close - lagged(close, window))
    path = rolling_sum(np.abs(close - lagged(close, step)), window) / step
    with np.errstate(invalid="ignore", divide="ignore"):
        er = np.where(path > 0, net / path, 0.0)
    return np.clip(er, 0.0, 1.0)
