"""Train/test splits for labels with horizons (López de Prado, AFML ch. 7).

Each row ``i`` is the interval ``[t0_i, t1_i]`` (decision time, time its label became known).

- **purging**: a training row whose interval overlaps any test row's interval (closed intervals:
  ``t0_i <= t1_j and t0_j <= t1_i``) is removed from training;
- **embargo**: a training row whose ``t0`` lies in ``(end, end + embargo]`` after a test fold, where
  ``end`` is the latest ``t1`` of that fold, is removed too (serial correlation after the test fold);
- folds are contiguous blocks of rows in ``t0`` order.

:func:`purged_kfold` returns every fold (training on both sides of the test fold);
:func:`walk_forward` trains only on rows before the test fold (expanding, or the last
``max_train_size`` rows). Times may be datetimes (embargo a timedelta) or numbers (embargo a number).
Indices returned are positions (0..n-1) into the given arrays.
:class:`Normaliser` is fitted on training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Split:
    fold: int
    train: np.ndarray
    test: np.ndarray


def _as_int(x) -> np.ndarray:
    a = pd.Series(x) if not isinstance(x, pd.Series) else x
    if pd.api.types.is_datetime64_any_dtype(a):
        if getattr(a.dt, "tz", None) is not None:
            a = a.dt.tz_convert("UTC").dt.tz_localize(None)
        if a.isna().any():
            raise ValueError("t0/t1 contain missing times")
        return a.dt.as_unit("ns").to_numpy().view(np.int64)
    arr = np.asarray(a, dtype=np.float64)
    if np.isnan(arr).any():
        raise ValueError("t0/t1 contain missing values")
    return arr


def _embargo(embargo, t0) -> float | int:
    if embargo is None:
        return 0
    if isinstance(embargo, (pd.Timedelta, np.timedelta64)) or hasattr(embargo, "total_seconds"):
        return int(pd.Timedelta(embargo).value)
    return embargo


def _check(t0: np.ndarray, t1: np.ndarray) -> None:
    if len(t0) != len(t1):
        raise ValueError(f"t0 and t1 differ in length ({len(t0)} vs {len(t1)})")
    if (t1 < t0).any():
        raise ValueError("some t1 is before its t0: a label cannot be known before its decision")


def overlaps_any(t0: np.ndarray, t1: np.ndarray, test_t0: np.ndarray, test_t1: np.ndarray) -> np.ndarray:
    """For each interval [t0, t1], whether it overlaps any of the test intervals (vectorised, O(n log n))."""
    if len(test_t0) == 0:
        return np.zeros(len(t0), dtype=bool)
    order = np.argsort(test_t0, kind="stable")
    s0, cmax = test_t0[order], np.maximum.accumulate(test_t1[order])
    k = np.searchsorted(s0, t1, side="right")  # test intervals starting at or before t1
    has = k > 0
    out = np.zeros(len(t0), dtype=bool)
    out[has] = cmax[k[has] - 1] >= t0[has]
    return out


def _train_mask(t0, t1, test: np.ndarray, embargo) -> np.ndarray:
    mask = np.ones(len(t0), dtype=bool)
    mask[test] = False
    mask &= ~overlaps_any(t0, t1, t0[test], t1[test])
    if len(test):
        end = t1[test].max()
        mask &= ~((t0 > end) & (t0 <= end + embargo))
    return mask


def _blocks(t0: np.ndarray, n_blocks: int) -> list[np.ndarray]:
    order = np.argsort(t0, kind="stable")
    return [b for b in np.array_split(order, n_blocks)]


def purged_kfold(t0, t1, n_splits: int = 5, embargo=None) -> list[Split]:
    """K contiguous test folds; training = every other row, purged and embargoed."""
    a0, a1 = _as_int(t0), _as_int(t1)
    _check(a0, a1)
    if not 2 <= n_splits <= len(a0):
        raise ValueError(f"n_splits must be in 2..{len(a0)} (number of rows), got {n_splits}")
    e = _embargo(embargo, a0)
    out = []
    for k, test in enumerate(_blocks(a0, n_splits)):
        test = np.sort(test)
        out.append(Split(k, np.flatnonzero(_train_mask(a0, a1, test, e)), test))
    return out


def walk_forward(t0, t1, n_splits: int = 4, embargo=None, max_train_size: int | None = None) -> list[Split]:
    """Rows in t0 order cut into ``n_splits + 1`` blocks; fold k tests block k+1 and trains on rows
    before it whose labels are known before the test block starts (purged; embargo kept for symmetry)."""
    a0, a1 = _as_int(t0), _as_int(t1)
    _check(a0, a1)
    if not 1 <= n_splits < len(a0):
        raise ValueError(f"n_splits must be in 1..{len(a0) - 1}, got {n_splits}")
    e = _embargo(embargo, a0)
    blocks = _blocks(a0, n_splits + 1)
    out = []
    for k in range(n_splits):
        test = np.sort(blocks[k + 1])
        before = np.zeros(len(a0), dtype=bool)
        before[np.concatenate(blocks[: k + 1])] = True
        mask = before & _train_mask(a0, a1, test, e)
        train = np.flatnonzero(mask)
        if max_train_size is not None and len(train) > max_train_size:
            train = train[np.argsort(a0[train], kind="stable")][-max_train_size:]
            train = np.sort(train)
        out.append(Split(k, train, test))
    return out


def split_problems(t0, t1, splits: list[Split], embargo=None) -> list[str]:
    """Every broken rule of ``splits``: train/test overlap in rows or in [t0, t1], embargo violations."""
    a0, a1 = _as_int(t0), _as_int(t1)
    e = _embargo(embargo, a0)
    problems = []
    for s in splits:
        if np.intersect1d(s.train, s.test).size:
            problems.append(f"fold {s.fold}: {np.intersect1d(s.train, s.test).size} row(s) in both train and test")
        if not len(s.test):
            continue
        ov = overlaps_any(a0[s.train], a1[s.train], a0[s.test], a1[s.test])
        if ov.any():
            problems.append(f"fold {s.fold}: {int(ov.sum())} training row(s) overlap the test fold in [t0, t1] "
                            f"(first: row {int(s.train[ov][0])})")
        end = a1[s.test].max()
        emb = (a0[s.train] > end) & (a0[s.train] <= end + e)
        if emb.any():
            problems.append(f"fold {s.fold}: {int(emb.sum())} training row(s) inside the embargo after the test "
                            f"fold (first: row {int(s.train[emb][0])})")
    return problems


def splits_frame(splits: list[Split], index=None) -> pd.DataFrame:
    """Long form (fold, row, role) with role 'train' or 'test'; ``row`` is taken from ``index`` if given."""
    parts = []
    for s in splits:
        for role, rows in (("train", s.train), ("test", s.test)):
            ids = np.asarray(index)[rows] if index is not None else rows
            parts.append(pd.DataFrame({"fold": s.fold, "row": ids, "role": role}))
    if not parts:
        return pd.DataFrame({"fold": [], "row": [], "role": []})
    return pd.concat(parts, ignore_index=True)


class Normaliser:
    """Z-score per column, fitted on training rows only (constant columns get std 1)."""

    def __init__(self) -> None:
        self.mean_: pd.Series | None = None
        self.std_: pd.Series | None = None
        self.fitted_rows_: np.ndarray | None = None

    def fit(self, X: pd.DataFrame, train: np.ndarray) -> Normaliser:
        rows = X.iloc[np.asarray(train)]
        self.mean_ = rows.mean()
        std = rows.std(ddof=0)
        self.std_ = std.where(std > 0, 1.0).fillna(1.0)
        self.fitted_rows_ = np.asarray(train)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if self.mean_ is None:
            raise ValueError("Normaliser.transform before fit")
        return (X - self.mean_) / self.std_


def normalise_split(X: pd.DataFrame, split: Split) -> tuple[pd.DataFrame, pd.DataFrame, Normaliser]:
    """(train, test) normalised with statistics of the training rows of ``split`` only."""
    norm = Normaliser().fit(X, split.train)
    return norm.transform(X.iloc[split.train]), norm.transform(X.iloc[split.test]), norm
