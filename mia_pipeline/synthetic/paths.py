"""Latent (efficient) ES/NQ log-price paths: common factor, leadership lag, scenario reshaping.

Log-returns per L1 step, for the leader ``A`` and the follower ``B`` (the follower's moves scaled by
the NQ/ES volatility ratio ``k`` when it is NQ)::

    A(t) = sqrt(c) (sqrt(1 - s) F(t) + sqrt(s) G(t))     + D(t)                    + sqrt(1 - c) e_A(t)
    B(t) = sqrt(c) (sqrt(1 - s) F(t) + sqrt(s) G(t - d)) + (1 - s) D(t) + s D(t - d) + sqrt(1 - c) e_B(t)

``F`` is the simultaneous common factor, ``G`` the common news the leader trades first and the
follower ``d`` steps later (``model.lead_delay_s``), ``s`` the lagged share (``strength x
model.lead_share_per_strength``), ``D`` the scenario drift and jumps (``sqrt(c)`` x the factor drift),
``c`` the shock correlation. Every series is white, so each symbol keeps its 1-s variance and
the 1-min ES-NQ correlation (~c) whatever the strength; the strength moves only the share ``s`` of
the co-movement that arrives late: the 1-s cross-correlation is ``c (1 - s)`` at lag 0 and ``c s``
at lag ``d``. ``balanced`` or strength 0 -> ``s = 0``, everything simultaneous.
"""

from __future__ import annotations

import numpy as np

from mia_pipeline.synthetic.model import MarketModel
from mia_pipeline.synthetic.volatility import ar1, bridge_steps


def leadership_lags(leadership: str, strength: float, model: MarketModel,
                    l1_interval_ms: int) -> tuple[tuple[int, int], tuple[float, float]]:
    """``((delay ES, delay NQ) in L1 steps, (lagged share ES, lagged share NQ))``: the follower sees a
    share ``strength * lead_share_per_strength`` of the common moves ``lead_delay_s`` late; the
    leader (and both under ``balanced`` or strength 0) none."""
    share = float(strength) * model.lead_share_per_strength
    d = int(round(model.lead_delay_s * 1000.0 / l1_interval_ms))
    if share <= 0 or d == 0 or leadership not in ("NQ_leads", "ES_leads"):
        return (0, 0), (0.0, 0.0)
    if leadership == "NQ_leads":
        return (d, 0), (share, 0.0)
    return (0, d), (0.0, share)


def _delayed(x: np.ndarray, d: int, pre: np.ndarray) -> np.ndarray:
    if d == 0:
        return x
    return np.concatenate([pre[-d:], x])[: len(x)]  # step i sees the value of step i - d


def latent_log_paths(
    rng: np.random.Generator,
    shocks_sec: np.ndarray,  # (4, n_sec) unit-variance 1-s shocks: factor, ES idio, NQ idio, lagged news
    sigma_sec: np.ndarray,  # (n_sec,) ES log-return sigma per second (scenario included)
    step_sec: np.ndarray,
    factor_drift: np.ndarray,
    lags: tuple[tuple[int, int], tuple[float, float]],
    model: MarketModel,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(L, inc)``: (n_steps, 2) cumulative log-price moves from the start and per-step moves.
    ``lags`` comes from :func:`leadership_lags`."""
    n = len(step_sec)
    sig = sigma_sec[step_sec]
    f = bridge_steps(rng, shocks_sec[0], step_sec) * sig
    e_es = bridge_steps(rng, shocks_sec[1], step_sec) * sig
    e_nq = bridge_steps(rng, shocks_sec[2], step_sec) * sig
    g = bridge_steps(rng, shocks_sec[3], step_sec) * sig
    delays, shares = lags
    dmax = max(delays)
    m = np.bincount(step_sec, minlength=len(sigma_sec))
    pre = rng.standard_normal(dmax) * (sigma_sec[0] / np.sqrt(max(m[0], 1))) if dmax else np.zeros(0)
    c = model.es_nq_corr
    s_lag = max(shares)
    common = np.sqrt(1.0 - s_lag) * f
    inc = np.empty((n, 2))
    for j, e in ((0, e_es), (1, e_nq)):
        d, s = delays[j], shares[j]
        news = np.sqrt(s_lag) * _delayed(g, d, pre)
        drift = (1.0 - s) * factor_drift + s * _delayed(factor_drift, d, np.zeros(d)) if d else factor_drift
        inc[:, j] = np.sqrt(c) * (common + news + drift) + np.sqrt(1 - c) * e
    inc[:, 1] *= model.nq_vol_ratio
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
            # The margin covers the episode's own noise at 2 sigma, not always: top the ramp up so
            # the episode does end 2 ticks above the prior high (the path after it shifts along).
            short = prior_high + 2 * ticks[j] - L[b - 1, j]
            if short > 0:
                L[a:b, j] += np.linspace(0.0, short, b - a + 1)[1:]
                L[b:, j] += short
