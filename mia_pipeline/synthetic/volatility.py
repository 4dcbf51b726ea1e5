"""Vectorised stochastic-volatility building blocks (no per-step Python loops).

Linear recursions ``x_t = a_t * x_{t-1} + b_t`` (AR(1), OU, GARCH variance) are solved block by
block with cumulative products: inside a block ``x_j = P_j * (x_prev + sum_{i<=j} b_i / P_i)`` with
``P_j = prod_{i<=j} a_i``. The block length keeps ``P`` far from float64 under/overflow, so the
result matches the sequential recursion to rounding error while the Python loop runs over blocks
(tens per day), not over seconds or ticks.
"""

from __future__ import annotations

import numpy as np


def _block_length(a_min: float) -> int:
    if a_min >= 1.0:
        return 8192
    return int(max(1, min(8192, 500.0 / -np.log(a_min))))


def _scan_inputs(a, b, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(a broadcast to len(b), b, n) as float64; raises ValueError unless every a > 0."""
    b = np.asarray(b, dtype=np.float64)
    n = len(b)
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), (n,))
    if n and np.any(a <= 0):
        raise ValueError(f"{name} needs strictly positive coefficients")
    return a, b, n


def linear_scan(a: np.ndarray | float, b: np.ndarray, x0: float = 0.0) -> np.ndarray:
    """Solve ``x_t = a_t * x_{t-1} + b_t`` for t = 0..n-1 with ``x_{-1} = x0`` (requires a > 0)."""
    a, b, n = _scan_inputs(a, b, "linear_scan")
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    block = _block_length(float(a.min()))
    x = float(x0)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        p = np.cumprod(a[lo:hi])
        seg = p * (x + np.cumsum(b[lo:hi] / p))
        out[lo:hi] = seg
        x = seg[-1]
    return out


def ar1(e: np.ndarray, phi: float, x0: float = 0.0) -> np.ndarray:
    """AR(1) ``x_t = phi * x_{t-1} + e_t``; ``phi`` in [0, 1]."""
    if phi <= 0.0:
        return np.asarray(e, dtype=np.float64).copy()
    return linear_scan(phi, e, x0)


def student_t(rng: np.random.Generator, nu: float, size) -> np.ndarray:
    """Student-t draws scaled to unit variance (Gaussian when ``nu`` is infinite)."""
    if not np.isfinite(nu):
        return rng.standard_normal(size)
    return rng.standard_t(nu, size) * np.sqrt((nu - 2.0) / nu)


def capped_linear_scan(a: np.ndarray, b: np.ndarray, x0: float, x_max: float) -> np.ndarray:
    """``x_t = min(a_t * x_{t-1} + b_t, x_max)`` (requires a > 0): the blocked linear scan, restarted
    from ``x_max`` after each crossing. The Python loop runs over blocks and crossings; after a crossing
    the next block is short (crossings come in clusters) and it doubles back while none occurs."""
    a, b, n = _scan_inputs(a, b, "capped_linear_scan")
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    longest = _block_length(float(a.min()))
    lo, x, block = 0, float(x0), longest
    while lo < n:
        hi = min(n, lo + block)
        p = np.cumprod(a[lo:hi])
        seg = p * (x + np.cumsum(b[lo:hi] / p))
        over = np.flatnonzero(seg > x_max)
        if len(over):
            j = int(over[0])
            out[lo:lo + j] = seg[:j]
            out[lo + j] = x_max
            lo, x, block = lo + j + 1, x_max, min(longest, max(64, 2 * (j + 1)))
        else:
            out[lo:hi] = seg
            lo, x, block = hi, seg[-1], min(longest, 2 * block)
    return out


def garch_unit_variance(z: np.ndarray, alpha: float, beta: float, burn_in: np.ndarray | None = None,
                        h_max: float | None = None) -> np.ndarray:
    """GARCH(1,1) conditional variance normalised to unconditional mean 1.

    ``h_t = (1 - alpha - beta) + alpha * z_{t-1}^2 * h_{t-1} + beta * h_{t-1}`` where ``z`` are the
    unit-variance shocks (so the return is ``sqrt(h_t) * z_t``). ``burn_in`` shocks, if given, are run
    first so the session does not start at exactly h = 1. ``h_max`` caps ``h`` inside the recursion
    (a burst then decays from the cap as soon as the shocks calm down).
    """
    if alpha <= 0.0:
        return np.ones(len(z))
    omega = 1.0 - alpha - beta
    h0 = 1.0
    if burn_in is not None and len(burn_in):
        h0 = garch_unit_variance(burn_in, alpha, beta, h_max=h_max)[-1]
        prev = burn_in[-1]
    else:
        prev = 0.0
    z_prev = np.concatenate([[prev], z[:-1]])
    a = alpha * z_prev**2 + beta
    if h_max is not None:
        return capped_linear_scan(a, np.full(len(z), omega), h0, h_max)
    return linear_scan(a, np.full(len(z), omega), h0)


def bridge_steps(rng: np.random.Generator, per_second: np.ndarray, step_sec: np.ndarray) -> np.ndarray:
    """Split each second's shock over its steps: the steps of a second sum exactly to its shock.

    Step = ``z_s / m + (g - mean_s(g)) / sqrt(m)`` with ``g`` Gaussian and ``m`` steps in the second,
    so each step has variance ``1/m`` of the second's and the sub-second path is a Brownian bridge.
    """
    n_sec = len(per_second)
    m = np.bincount(step_sec, minlength=n_sec).astype(np.float64)
    g = rng.standard_normal(len(step_sec))
    g_mean = np.bincount(step_sec, weights=g, minlength=n_sec) / np.maximum(m, 1.0)
    m_step = m[step_sec]
    return per_second[step_sec] / m_step + (g - g_mean[step_sec]) / np.sqrt(m_step)
