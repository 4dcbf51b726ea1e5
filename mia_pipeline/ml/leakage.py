"""Leakage checks: plain functions returning a list of problems (empty = passed).

- :func:`asof_problems`: every ``*_asof`` column is <= ``t0`` (``success_asof`` strictly <);
- :func:`label_time_problems`: ``t0 < t1`` for every label row, and labels align with features;
- :func:`predictive_problems`: a feature that predicts a label almost perfectly (univariate AUC for a
  binary label, |Pearson r| for a numeric one) is a leak, e.g. the label plus tiny noise;
- :func:`point_in_time_problems`: recomputing features from only what was known at a cutoff gives the
  same values for the rows decided by then (catches a feature shifted into the future even when its
  as-of column was not shifted);
- :func:`mia_pipeline.ml.splits.split_problems`: purge/embargo of splits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from mia_pipeline.ml.features import ASOF_SUFFIX, feature_columns
from mia_pipeline.ml.splits import split_problems

__all__ = ["asof_problems", "label_time_problems", "predictive_problems", "point_in_time_problems",
           "split_problems", "univariate_auc", "all_problems"]

STRICT_ASOF = {"success_asof"}


def asof_problems(features: pd.DataFrame, t0: str = "t0") -> list[str]:
    if t0 not in features.columns:
        return [f"no {t0!r} column: rows have no decision time"]
    problems = []
    asof_cols = [c for c in features.columns if c.endswith(ASOF_SUFFIX)]
    if not asof_cols:
        problems.append("no *_asof column: the time of the inputs is not recorded")
    for c in asof_cols:
        late = features[c] >= features[t0] if c in STRICT_ASOF else features[c] > features[t0]
        late = late.fillna(False)
        if late.any():
            i = late.to_numpy().nonzero()[0][0]
            problems.append(f"{c}: {int(late.sum())} row(s) use data from after t0 "
                            f"(first: row {i}, {c}={features[c].iloc[i]} > t0={features[t0].iloc[i]})")
    return problems


def label_time_problems(labels: pd.DataFrame, features: pd.DataFrame | None = None) -> list[str]:
    problems = []
    for c in ("t0", "t1"):
        if c not in labels.columns:
            problems.append(f"labels have no {c!r} column")
    if problems:
        return problems
    if labels["t1"].isna().any():
        problems.append(f"{int(labels['t1'].isna().sum())} label row(s) without t1")
    bad = (labels["t1"] <= labels["t0"]).fillna(False)
    if bad.any():
        problems.append(f"{int(bad.sum())} label row(s) with t1 <= t0: the outcome cannot be known at decision")
    if features is not None:
        if len(features) != len(labels) or not (features.index == labels.index).all():
            problems.append("features and labels rows are not aligned")
        elif "t0" in features.columns and not (features["t0"] == labels["t0"]).all():
            problems.append("features and labels disagree on t0")
    return problems


def univariate_auc(x: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC of score ``x`` for binary ``y`` (Mann-Whitney with average ranks); NaN if undefined."""
    m = ~(np.isnan(x) | np.isnan(y))
    x, y = x[m], y[m] > 0
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = pd.Series(x).rank(method="average").to_numpy()
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def predictive_problems(features: pd.DataFrame, labels: pd.DataFrame, label_columns: Sequence[str] | None = None,
                        auc_threshold: float = 0.98, corr_threshold: float = 0.98, min_rows: int = 20) -> list[str]:
    """Features that predict a label almost perfectly on their own."""
    if label_columns is None:
        label_columns = [c for c in ("success", "tb_label", "r_multiple", "tb_return") if c in labels.columns]
    problems = []
    for lc in label_columns:
        y = pd.to_numeric(labels[lc], errors="coerce").to_numpy(dtype=np.float64)
        valid = ~np.isnan(y)
        if valid.sum() < min_rows:
            continue
        values = np.unique(y[valid])
        binary = len(values) == 2
        for fc in feature_columns(features):
            x = features[fc].to_numpy(dtype=np.float64)
            m = valid & ~np.isnan(x)
            if m.sum() < min_rows or np.nanstd(x[m]) == 0:
                continue
            if binary:
                auc = univariate_auc(x[m], (y[m] == values[1]).astype(float))
                if np.isfinite(auc) and max(auc, 1 - auc) >= auc_threshold:
                    problems.append(f"{fc} predicts {lc} almost perfectly (AUC {auc:.3f}): leaked label?")
            else:
                if np.std(y[m]) == 0:
                    continue
                r = float(np.corrcoef(x[m], y[m])[0, 1])
                if abs(r) >= corr_threshold:
                    problems.append(f"{fc} predicts {lc} almost perfectly (r {r:.3f}): leaked label?")
    return problems


def point_in_time_problems(compute: Callable[[pd.Timestamp | None], pd.DataFrame], cutoffs: Sequence,
                           key: str = "signal_id", rtol: float = 1e-7, atol: float = 1e-9) -> list[str]:
    """``compute(cutoff)`` builds features from data known at ``cutoff`` (``None`` = everything).

    For each cutoff, rows with t0 <= cutoff must be identical in both builds: a feature that changes when
    the future is removed was computed from the future.
    """
    full = compute(None).set_index(key)
    cols = feature_columns(full)
    problems = []
    for cut in cutoffs:
        part = compute(cut).set_index(key)
        part = part[part["t0"] <= cut]
        if not len(part):
            continue
        ref = full.loc[part.index, cols]
        for c in cols:
            a, b = ref[c].to_numpy(dtype=np.float64), part[c].to_numpy(dtype=np.float64)
            same = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
            if not same.all():
                problems.append(f"{c}: {int((~same).sum())} row(s) decided by {cut} change when data after the "
                                "cutoff is removed: the feature reads the future")
    return problems


def all_problems(features: pd.DataFrame, labels: pd.DataFrame, splits=None, embargo=None) -> list[str]:
    """The static checks of a built dataset (as-of, label times, predictive leaks, splits)."""
    problems = asof_problems(features) + label_time_problems(labels, features) + predictive_problems(features, labels)
    if splits is not None:
        problems += split_problems(labels["t0"], labels["t1"], splits, embargo)
    return problems
