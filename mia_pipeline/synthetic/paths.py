"""Latent (efficient) ES/NQ log-price paths: common factor, leadership delay, scenario reshaping.

Log-returns per L1 step: ``ES = sqrt(c) F(t - d_ES) + sqrt(1 - c) e_ES`` and
``NQ = k (sqrt(c) F(t - d_NQ) + sqrt(1 - c) e_NQ)`` with ``F`` the common factor (carrying the
scenario drift), ``c`` the shock correlation, ``k`` the NQ/ES volatility ratio and ``d`` the
follower's delay in steps (0 for the leader and for ``balanced``). The follower therefore repeats
the leader's common moves ``d`` steps later: the leader's 1-s returns predict the follower's.
"""

from __future__ import annotations

import numpy as np

from mia_pipeline.synthetic.model import MarketModel
from mia_pipeline.synthetic.volatility import ar1, bridge_steps


def leadership_delays(leadership: str, strength: float, model: MarketModel, l1_interval_ms: int) -> tuple[int, int]:
    """Delay in L1 steps of (ES, NQ): the follower lags by ``strength * lead_seconds_per_strength``."""
    d = int(round(strength * model.lead_seconds_per_strength * 1000.0 / l1_interval_ms))
    if leadership == "NQ_leads":
        return d, 0
    if leadership == "ES_leads":
        return 0, d
    return 0, 0


def _delayed(x: np.ndarray, d: int, pre: np.ndarray) -> np.ndarray:
    if d == 0:
        return x
    return np.concatenate([pre[-d:], x])[: len(x)]  # step i sees the factor of step i - d


def latent_log_paths(
    rng: np.random.Generator,
    shocks_sec: np.ndarray,  # (3, n_sec) unit-variance 1-s shocks: factor, ES idio, NQ idio
    sigma_sec: np.ndarray,  # (n_sec,) ES log-return sigma per second (scenario included)
    step_sec: np.ndarray,
    factor_drift: np.ndarray,
    delays: tuple[int, int],
    model: MarketModel,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(L, inc)``: (n_steps, 2) cumulative log-price moves from the start and per-step moves."""
    n = len(step_sec)
    sig = sigma_sec[step_sec]
    f = bridge_steps(rng, shocks_sec[0], step_sec) * sig + factor_drift
    e_es = bridge_steps(rng, shocks_sec[1], step_sec) * sig
    e_nq = bridge_steps(rng, shocks_sec[2], step_sec) * sig
    dmax = max(delays)
    m = np.bincount(step_sec, minlength=len(sigma_sec))
    pre = rng.standard_normal(dmax) * (sigma_sec[0] / np.sqrt(max(m[0], 1))) if dmax else np.zeros(0)
    c = model.es_nq_corr
    inc = np.empty((n, 2))
    inc[:, 0] = np.sqrt(c) * _delayed(f, delays[0], pre) + np.sqrt(1 - c) * e_es
    inc[:, 1] = model.nq_vol_ratio * (np.sqrt(c) * _delayed(f, delays[1], pre) + np.sqrt(1 - c) * e_nq)
    return np.cumsum(inc, axis=0), inc


# --- scenario reshaping of the paths, in place, per symbol -------------------------------------


def mean_revert(L: np.ndarray, lo: int, hi: int, anchors: np.ndarray, phi: float) -> None:
    """Turn steps [lo, hi) into an OU process toward ``anchors`` (log levels per symbol); the path
    after ``hi`` keeps its own moves, continuing from the new level."""
    for j in range(L.shape[1]):
        before = L[lo - 1, j] if lo > 0 else 0.0
        inc = np.diff(L[lo:hi, j], prepend=before)
        new = ar1(inc, phi, before - anchors[j]) + anchors[j]
        shift = new[-1] - L[hi - 1, j]
        L[lo:hi, j] = new
        L[hi:, j] += shift


def press(L: np.ndarray, lo: int, hi: int, levels: np.ndarray, side: int, phi: float, margin: float) -> None:
    """Mean-revert steps [lo, hi) toward an anchor ``margin`` stationary OU sigmas beyond ``levels``
    (log levels per symbol; beyond = above for side=+1, below for -1): the price travels to the level
    and keeps pressing against it. The sigma is the path's own over the window (so a volatility burst
    during the window, which widens the excursions, also pushes the anchor further beyond the level)."""
    for j in range(L.shape[1]):
        before = L[lo - 1, j] if lo > 0 else 0.0
        inc = np.diff(L[lo:hi, j], prepend=before)
        sd = float(np.sqrt(np.mean(inc**2) / max(1.0 - phi * phi, 1e-12)))
        mean_revert(L[:, j:j + 1], lo, hi, np.array([levels[j] + side * margin * sd]), phi)


def cap(L: np.ndarray, lo: int, hi: int, caps: np.ndarray, side: int) -> None:
    """Hold steps [lo, hi) at or below (side=+1) / above (side=-1) ``caps``; later steps continue."""
    for j in range(L.shape[1]):
        seg = L[lo:hi, j]
        clipped = np.minimum(seg, caps[j]) if side > 0 else np.maximum(seg, caps[j])
        L[hi:, j] += clipped[-1] - seg[-1]
        L[lo:hi, j] = clipped


def realised_sigma_1min(L: np.ndarray, ends: np.ndarray, j: int) -> float:
    """Standard deviation of the 1-min moves of ``L[:, j]`` sampled at ``ends`` (the last step of each
    minute, preceded by the level before the first minute: ``ends[0]`` may be -1 for the start)."""
    x = np.where(ends >= 0, L[np.maximum(ends, 0), j], 0.0)
    return float(np.std(np.diff(x), ddof=1)) if len(x) >= 3 else 0.0


def ensure_move(L: np.ndarray, lo: int, hi: int, side: int, min_move: np.ndarray, weight: np.ndarray,
                realised: tuple[np.ndarray, float, float] | None = None) -> None:
    """Make the move over steps [lo, hi) at least ``min_move`` (log units, per symbol) in direction
    ``side`` by adding a drift spread like ``weight`` (a trend must not be cancelled by a rare noise
    draw); later steps shift with it. ``realised = (ends, k, minutes)`` also requires ``k`` times the
    path's own 1-min sigma (measured at ``ends``, see :func:`realised_sigma_1min`) x sqrt(minutes):
    the move then holds in the units a reader measures it in, whatever the jumps and clusters did."""
    w = np.cumsum(weight[lo:hi]) / max(float(np.sum(weight[lo:hi])), 1e-300)
    for j in range(L.shape[1]):
        before = L[lo - 1, j] if lo > 0 else 0.0
        need = min_move[j]
        if realised is not None:
            ends, k, minutes = realised
            need = max(need, k * realised_sigma_1min(L, ends, j) * np.sqrt(minutes))
        shortfall = need - side * (L[hi - 1, j] - before)
        if shortfall > 0:
            L[lo:hi, j] += side * shortfall * w
            L[hi:, j] += side * shortfall


def divergence_ramps(L: np.ndarray, sig: np.ndarray, episodes, lookback: int, reversal: int,
                     ticks: np.ndarray) -> None:
    """For each episode [a, b): ramp the price to a new high over the ``lookback`` window (with a
    margin above the episode's own noise), then give most of it back over ``reversal`` steps.
    ``sig`` is the (n_steps, 2) per-step log-return sigma."""
    n = L.shape[0]
    for a, b in episodes:
        for j in range(L.shape[1]):
            prior_high = L[max(0, a - lookback):a, j].max(initial=L[a, j])
            noise = np.sqrt(np.sum(sig[a:b, j] ** 2))
            need = max(prior_high - L[a, j], 0.0) + 2.0 * noise + 2 * ticks[j]
            rise = np.linspace(0.0, need, b - a + 1)[1:]
            L[a:b, j] += rise
            end = min(n, b + reversal)
            back = np.linspace(0.0, -0.8 * need, end - b + 1)[1:]
            L[b:end, j] += need + back
            L[end:, j] += need * 0.2
