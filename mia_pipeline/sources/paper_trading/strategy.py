"""The reference strategy: when to take a signal snapshot, how to score it, what to decide.

Cadence: each traded symbol is analysed at random gaps ~ U(gap_min_s, gap_max_s) after a warm-up,
which gives ~100 snapshots per trading hour for ES+NQ (the guide's target is 50-200).

Score: a regime-dependent weighted sum of the normalized features. In a TRENDING market the
strategy follows momentum, order flow and the leader; in a RANGING market it fades stretches away
from VWAP and trades absorption. ``direction = sign(score)``.

Confluence levels, each in [0, 1] (0.5 = no opinion), measure agreement with that direction:
technical (VWAP position, momentum, leader), sentiment (delta, divergence, imbalance, absorption),
fundamental (options flow bias, and gamma proximity: pinning helps a fade, hurts a breakout);
``overall`` blends them with the generator's leadership ``confluence_score``.
Decision: BUY/SELL when ``|score| >= score_threshold`` and ``overall >= min_overall_confluence``,
HOLD otherwise. Whether a BUY/SELL is executed is the portfolio's call (limits, heat, session end).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mia_pipeline.sources.paper_trading.config import StrategyConfig
from mia_pipeline.sources.paper_trading.features import N_FEATURES, FeatureFrame
from mia_pipeline.sources.paper_trading.market import MarketDay

#                     vwap  mom   delta vsurge div   imb   lead  absorb
W_TREND = np.array([0.10, 0.25, 0.20, 0.00, -0.10, 0.15, 0.15, 0.05])
W_RANGE = np.array([-0.30, -0.15, 0.05, 0.00, -0.15, 0.05, 0.05, 0.25])
VOLUME_WEIGHT = 0.05  # volume surge scales conviction, not direction
_TECHNICAL, _SENTIMENT = [0, 1, 6], [2, 4, 5, 7]

PATTERNS = {  # dominant feature -> (pattern when trending, pattern when ranging)
    0: ("vwap_breakout", "vwap_band_rejection"),
    1: ("momentum_thrust", "momentum_exhaustion"),
    2: ("delta_push", "delta_push"),
    3: ("volume_climax", "volume_climax"),
    4: ("delta_divergence", "delta_divergence"),
    5: ("imbalance_stack", "imbalance_stack"),
    6: ("leader_follow", "leader_follow"),
    7: ("absorption", "absorption"),
}
SIGNAL_TYPES = {(True, 1): "VIKINGS_ATTACK", (True, -1): "DEFENSEURS_ATTACK",
                (False, 1): "VIKINGS_REBOUND", (False, -1): "DEFENSEURS_REJECTION"}
ACTIONS = {1: "BUY", -1: "SELL", 0: "HOLD"}


@dataclass
class Signals:
    """Signal snapshots of one day in time order (structure of arrays, one row per snapshot)."""

    ts: np.ndarray  # int64 epoch ms of the snapshot
    calc_ts: np.ndarray  # int64 end of the last completed second the features come from
    sym: np.ndarray  # index into MarketDay.symbols
    sec: np.ndarray  # index into MarketDay.sec_ms
    trending: np.ndarray  # bool
    score: np.ndarray
    direction: np.ndarray  # +1 / -1
    decision: np.ndarray  # +1 BUY, -1 SELL, 0 HOLD
    confidence: np.ndarray
    technical: np.ndarray
    fundamental: np.ndarray
    sentiment: np.ndarray
    overall: np.ndarray
    importance: np.ndarray  # (m, 8), rows sum to 1
    raw: np.ndarray  # (m, 8)
    normalized: np.ndarray  # (m, 8)
    flow: np.ndarray  # vikings (+) vs defenseurs (-) balance in [-1, 1]
    flow_change: np.ndarray
    sigma_1s: np.ndarray  # realized 1-s log sigma
    session_volume: np.ndarray  # contracts traded in the session so far

    def __len__(self) -> int:
        return len(self.ts)


def schedule(m: MarketDay, symbols: list[int], cfg: StrategyConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Snapshot times (ms) and symbol indices, sorted by time then symbol."""
    span = (m.close_ms - m.open_ms) / 1000.0 - cfg.warmup_s
    n_max = int(span / cfg.gap_min_s) + 2
    ts, sym = [], []
    for j in symbols:
        gaps = rng.uniform(cfg.gap_min_s, cfg.gap_max_s, n_max)
        offsets = cfg.warmup_s + np.cumsum(gaps)
        t = m.open_ms + np.round(offsets[offsets < span + cfg.warmup_s] * 1000.0).astype(np.int64)
        ts.append(t)
        sym.append(np.full(len(t), j))
    t, s = np.concatenate(ts), np.concatenate(sym)
    order = np.lexsort((s, t))
    return t[order], s[order]


def evaluate(m: MarketDay, f: FeatureFrame, ts: np.ndarray, sym: np.ndarray, cfg: StrategyConfig) -> Signals:
    """Score every snapshot at once (vectorized over snapshots)."""
    sec = np.maximum(np.searchsorted(m.sec_ms + 1000, ts, side="right") - 1, 0)
    z = f.normalized[sec, sym]  # (m, 8)
    trending = f.efficiency[sec, sym] >= cfg.trend_efficiency
    w = np.where(trending[:, None], W_TREND, W_RANGE)
    contrib = w * z
    score = contrib.sum(axis=1)
    direction = np.where(score >= 0, 1, -1)
    agree = 0.5 * (1.0 + np.tanh(direction[:, None] * np.sign(w) * z))
    technical = agree[:, _TECHNICAL].mean(axis=1)
    sentiment = agree[:, _SENTIMENT].mean(axis=1)
    flow_bias = m.lf["options_flow_bias"][sec, sym]
    gamma = m.lf["gamma_proximity"][sec, sym]
    fundamental = 0.7 * 0.5 * (1.0 + direction * flow_bias) + 0.3 * np.where(trending, 1.0 - gamma, gamma)
    overall = (0.35 * technical + 0.35 * sentiment + 0.15 * fundamental
               + 0.15 * m.lf["confluence_score"][sec, sym])
    surge = f.normalized[sec, sym, 3]
    conviction = np.tanh(np.abs(score) * (1.0 + VOLUME_WEIGHT * surge))
    confidence = np.clip(0.45 * conviction + 0.55 * overall, 0.0, 0.99)
    act = (np.abs(score) >= cfg.score_threshold) & (overall >= cfg.min_overall_confluence)
    imp = np.abs(contrib)
    imp[:, 3] = VOLUME_WEIGHT * np.abs(surge)
    total = imp.sum(axis=1, keepdims=True)
    importance = np.where(total > 0, imp / np.where(total > 0, total, 1.0), 1.0 / N_FEATURES)
    raw = f.raw[sec, sym]
    flow = np.clip(0.5 * raw[:, 5] * 2.0 + 0.5 * np.tanh(raw[:, 2] / 5.0), -1.0, 1.0)
    cum_volume = np.cumsum(m.volume, axis=0)
    return Signals(
        ts=ts, calc_ts=m.sec_ms[sec] + 1000, sym=sym, sec=sec, trending=trending, score=score,
        direction=direction, decision=np.where(act, direction, 0), confidence=confidence,
        technical=technical, fundamental=fundamental, sentiment=sentiment, overall=overall,
        importance=importance, raw=raw, normalized=z, flow=flow, flow_change=f.flow_change[sec, sym],
        sigma_1s=f.sigma_1s[sec, sym], session_volume=cum_volume[sec, sym],
    )


def patterns(s: Signals, i: int) -> tuple[str, list[str]]:
    """Primary pattern (the largest contribution) and up to three secondary ones (share >= 15%)."""
    order = np.argsort(-s.importance[i], kind="stable")
    pick = 0 if s.trending[i] else 1
    names = [PATTERNS[int(k)][pick] for k in order]
    secondary = [n for k, n in zip(order[1:4], names[1:4], strict=True) if s.importance[i, k] >= 0.15]
    return names[0], [n for n in dict.fromkeys(secondary) if n != names[0]]


def vikings_defenseurs(s: Signals, i: int) -> dict:
    """Battle Navale balance: Vikings = aggressive buyers, Défenseurs = sellers defending their levels."""
    flow, change = float(s.flow[i]), float(s.flow_change[i])
    mode = "VIKINGS_DOMINANT" if flow > 0.1 else "DEFENSEURS_DOMINANT" if flow < -0.1 else "BALANCED"
    side = 1.0 if flow >= 0 else -1.0
    trend = change * side
    momentum = "INCREASING" if trend > 0.05 else "DECREASING" if trend < -0.05 else "STABLE"
    return {"mode": mode, "strength": round(min(10.0, abs(flow) * 20.0), 1), "momentum": momentum}


def strength_label(confidence: float) -> str:
    return "HIGH" if confidence >= 0.8 else "MEDIUM" if confidence >= 0.65 else "LOW"
