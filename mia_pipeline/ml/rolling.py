"""Vectorised trailing-window primitives over rows grouped contiguously (e.g. per symbol, sorted by time).

Every function takes ``pos`` (the row's position inside its group, from :func:`group_positions`) and
uses rows ``i - w + 1 .. i`` of the same group only: the current row and the past, never the future.
Windows shorter than ``w`` at a group's start use the rows available (``min_periods`` below).
Implemented with cumulative sums restarted per group: O(n) per window, a loop over groups (never over
rows). Precision: a window's sum of squared deviations is a difference of cumulative sums, so its
absolute error is ~16 eps * sum((x - x_first)^2) over the group's past; windows below that are
reported as constant (std 0). Features apply it to returns and bounded oscillators, where this is far
below any meaningful digit.
"""

from __future__ import annotations

import numpy as np


def group_positions(groups: np.ndarray) -> np.ndarray:
    """Position of each row inside its run of equal ``groups`` values (rows must be grouped contiguously)."""
    groups = np.asarray(groups)
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.empty(n, dtype=bool)
    start[0] = True
    start[1:] = groups[1:] != groups[:-1]
    idx = np.arange(n)
    first = np.maximum.accumulate(np.where(start, idx, 0))
    return idx - first


def _2d(x: np.ndarray) -> tuple[np.ndarray, bool]:
    x = np.asarray(x, dtype=np.float64)
    return (x[:, None], True) if x.ndim == 1 else (x, False)


def _segments(pos: np.ndarray) -> list[tuple[int, int]]:
    starts = np.flatnonzero(pos == 0)
    return list(zip(starts.tolist(), np.append(starts[1:], len(pos)).tolist(), strict=True))


def _seg_sum(v: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing sums over min(w, i + 1) rows of one group, and the cumulative sums (same shape)."""
    cs = np.cumsum(v, axis=0)
    out = cs.copy()
    if w < len(v):
        out[w:] -= cs[:-w]
    return out, cs


def _window_sum(x: np.ndarray, pos: np.ndarray, w: int) -> np.ndarray:
    """Trailing sums over ``min(w, pos + 1)`` rows; cumulative sums restart at each group.

    Restarting per group (a loop over groups, not rows) makes a row's value depend on its own group's
    past only, bit for bit: removing later rows or other groups cannot change it.
    """
    out = np.empty_like(x)
    for a, b in _segments(pos):
        out[a:b] = _seg_sum(x[a:b], w)[0]
    return out


def _center(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Each group's first value (0 when missing): subtracting it keeps cumulative sums small, causally."""
    first = np.arange(len(pos)) - pos
    c = x[first]
    return np.where(np.isnan(c), 0.0, c)


def rolling_mean_std_multi(x: np.ndarray, pos: np.ndarray, windows, min_periods: int = 1):
    """{w: (mean, std)} for several windows in one pass (shared cumulative sums); see rolling_mean_std."""
    x, squeeze = _2d(x)
    nan = np.isnan(x)
    has_nan = bool(nan.any())
    res = {w: (np.empty_like(x), np.empty_like(x)) for w in windows}
    eps16 = 16 * np.finfo(np.float64).eps
    mp_mean, mp_std = max(min_periods, 1), max(min_periods, 2)
    for a, b in _segments(pos):
        seg = x[a:b]
        n = b - a
        c = np.nan_to_num(seg[0], nan=0.0)
        d = seg - c
        if has_nan:
            valid = ~nan[a:b]
            d[~valid] = 0.0
            csn = np.cumsum(valid, axis=0, dtype=np.float64)
        else:
            csn = np.arange(1, n + 1, dtype=np.float64)[:, None]
        cs1 = np.cumsum(d, axis=0)
        d *= d
        cs2 = np.cumsum(d, axis=0)
        for w in windows:
            mean, std = res[w][0][a:b], res[w][1][a:b]
            s1, s2, cnt = cs1.copy(), cs2.copy(), csn.copy()
            if w < n:
                s1[w:] -= cs1[:-w]
                s2[w:] -= cs2[:-w]
                cnt[w:] -= csn[:-w]
            with np.errstate(invalid="ignore", divide="ignore"):
                np.divide(s1, cnt, out=mean)           # window mean of d
                s1 *= mean
                s2 -= s1                               # sum of squared deviations
                s2[s2 <= eps16 * cs2] = 0.0            # below rounding error: a constant window
                cnt -= 1.0
                np.divide(s2, cnt, out=std)
                np.sqrt(std, out=std)
                mean += c
            cnt += 1.0
            if has_nan:
                mean[cnt < mp_mean] = np.nan
                std[cnt < mp_std] = np.nan
            else:
                mean[: mp_mean - 1] = np.nan
                std[: mp_std - 1] = np.nan
    if squeeze:
        return {w: (m[:, 0], s_[:, 0]) for w, (m, s_) in res.items()}
    return res


def rolling_mean_std(x: np.ndarray, pos: np.ndarray, w: int, min_periods: int = 1):
    """Trailing mean and sample std (ddof=1) over ``w`` rows; NaN inputs are skipped.

    Per group: values are centred on the group's first value (causal), then cumulative sums of the
    values and their squares give each window's sum and sum of squares.
    """
    return rolling_mean_std_multi(x, pos, (w,), min_periods)[w]


def rolling_sum(x: np.ndarray, pos: np.ndarray, w: int) -> np.ndarray:
    x, squeeze = _2d(x)
    out = _window_sum(np.where(np.isnan(x), 0.0, x), pos, w)
    return out[:, 0] if squeeze else out


def _heads(pos: np.ndarray, k: int) -> np.ndarray:
    """Indices of the rows with fewer than ``k`` rows before them in their group."""
    starts = np.flatnonzero(pos == 0)
    idx = (starts[:, None] + np.arange(k)[None, :]).ravel()
    idx = idx[idx < len(pos)]
    return idx[pos[idx] < k]


def lag(x: np.ndarray, pos: np.ndarray, k: int) -> np.ndarray:
    """``x`` of ``k`` rows earlier in the same group (NaN when the group has fewer rows)."""
    x, squeeze = _2d(x)
    out = np.empty_like(x)
    out[k:] = x[: len(x) - k]
    out[_heads(pos, k)] = np.nan
    return out[:, 0] if squeeze else out


def momentum(x: np.ndarray, pos: np.ndarray, k: int) -> np.ndarray:
    """x - x[-k] within the group."""
    x, squeeze = _2d(x)
    out = np.empty_like(x)
    np.subtract(x[k:], x[: len(x) - k], out=out[k:])
    out[_heads(pos, k)] = np.nan
    return out[:, 0] if squeeze else out


def rate_of_change(x: np.ndarray, pos: np.ndarray, k: int, floor: float = 0.0) -> np.ndarray:
    """(x - x[-k]) / max(|x[-k]|, floor); NaN where that denominator is 0 or a value is missing.

    ``floor`` > 0 keeps the rate defined for oscillators that cross or sit at 0.
    """
    x, squeeze = _2d(x)
    out = np.empty_like(x)
    past = x[: len(x) - k]
    np.subtract(x[k:], past, out=out[k:])
    den = np.abs(past)
    if floor > 0:
        np.maximum(den, floor, out=den)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        np.divide(out[k:], den, out=out[k:])
    out[_heads(pos, k)] = np.nan
    bad = ~np.isfinite(out)
    if bad.any():
        out[bad] = np.nan
    return out[:, 0] if squeeze else out


def rolling_corr(x: np.ndarray, y: np.ndarray, pos: np.ndarray, w: int, min_periods: int = 3) -> np.ndarray:
    """Trailing Pearson correlation of ``x`` and ``y`` over ``w`` rows (rows where both are present)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    valid = ~(np.isnan(x) | np.isnan(y))
    xv = np.where(valid, x - _center(x, pos), 0.0)
    yv = np.where(valid, y - _center(y, pos), 0.0)
    cnt = _window_sum(valid.astype(np.float64), pos, w)
    sx, sy = _window_sum(xv, pos, w), _window_sum(yv, pos, w)
    sxx, syy, sxy = _window_sum(xv * xv, pos, w), _window_sum(yv * yv, pos, w), _window_sum(xv * yv, pos, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sy / cnt
        vx = sxx - sx * sx / cnt
        vy = syy - sy * sy / cnt
        r = cov / np.sqrt(vx * vy)
    ok = (cnt >= min_periods) & (vx > 1e-12 * np.maximum(sxx, 1e-300)) & (vy > 1e-12 * np.maximum(syy, 1e-300))
    return np.where(ok, np.clip(r, -1.0, 1.0), np.nan)


def rolling_share_of_current(codes: np.ndarray, pos: np.ndarray, w: int) -> np.ndarray:
    """Share of the trailing ``w`` rows whose category equals the current row's (codes >= 0; -1 = missing)."""
    codes = np.asarray(codes)
    k = int(codes.max()) + 1 if len(codes) and codes.max() >= 0 else 1
    onehot = np.zeros((len(codes), k))
    ok = codes >= 0
    onehot[np.nonzero(ok)[0], codes[ok]] = 1.0
    counts = _window_sum(onehot, pos, w)
    n = np.minimum(w, pos + 1)
    out = np.full(len(codes), np.nan)
    out[ok] = counts[np.nonzero(ok)[0], codes[ok]] / n[ok]
    return out
