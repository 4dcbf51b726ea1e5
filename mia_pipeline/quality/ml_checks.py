"""The ML dataset checks as pure functions: the small frames the ML suites validate, computed with numpy
(vectorised, fast on 1 M rows), and the sentence each check reports (:func:`summarise`).

GX's pandas engine checks a condition per row; a correlation, an AUC or a fold's purge is a statistic
over many rows. So each such check is turned into a frame with one row per thing it judges, and a
standard GX expectation (:func:`mia_pipeline.quality.gx.ml_batches`) judges each row (the failing rows
name the feature, pair or fold):

- :func:`missing_frame`: one row per feature, its missing rate after the warm-up rows;
- :func:`balance_frame`: one row per (label, class), the class's share of the labelled rows;
- :func:`correlation_frame`: one row per feature pair, its |Pearson r| (pairwise-complete rows);
- :func:`leak_frame`: one row per (feature, label), how well the feature alone predicts the label
  (max(AUC, 1 - AUC), one-vs-rest for a class label; |r| for a continuous label);
- :func:`fold_frame`: one row per (scheme, fold), its training rows that are also test rows, overlap
  the test fold in [t0, t1] (purge) or start inside the embargo after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mia_pipeline.ml.labels import to_ns
from mia_pipeline.ml.splits import overlaps_any

KNOWN_CLASSES = {"success": (0.0, 1.0), "tb_label": (-1.0, 0.0, 1.0)}
MAX_CLASSES = 10        # a label with more distinct values is continuous


def warmup_mask(features: pd.DataFrame, rows: int) -> np.ndarray:
    """True for the first ``rows`` decisions of each symbol (rows sorted by t0): rolling windows fill up."""
    if rows <= 0 or not len(features):
        return np.zeros(len(features), dtype=bool)
    if "symbol" in features.columns:
        pos = features.groupby("symbol", sort=False, dropna=False).cumcount().to_numpy()
    else:
        pos = np.arange(len(features))
    return pos < rows


def feature_matrix(features: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    return np.asarray(features[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan))


def missing_frame(features: pd.DataFrame, names: Sequence[str], skip: np.ndarray) -> pd.DataFrame:
    """Missing values per feature over the rows not in ``skip`` (counted column by column: no copy)."""
    missing = features[list(names)].isna().sum().to_numpy(dtype=np.int64).copy()
    if skip.any():
        missing -= features.loc[skip, list(names)].isna().sum().to_numpy(dtype=np.int64)
    rows = int(len(features) - skip.sum())
    return pd.DataFrame({"feature": list(names), "rows": rows, "missing": missing,
                         "missing_rate": missing / rows if rows else np.zeros(len(names))})


def balance_frame(labels: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    parts = []
    for c in columns:
        if c not in labels.columns:
            continue
        counts = pd.to_numeric(labels[c], errors="coerce").value_counts(dropna=True)
        for k in KNOWN_CLASSES.get(c, ()):
            counts[k] = counts.get(k, 0)
        total = int(counts.sum())
        parts.append(pd.DataFrame({"label": c, "class": [f"{k:g}" for k in counts.index],
                                   "count": counts.to_numpy(dtype=np.int64),
                                   "share": counts.to_numpy(dtype=np.float64) / total if total else np.nan}))
    cols = {"label": pd.Series(dtype=str), "class": pd.Series(dtype=str), "count": pd.Series(dtype=np.int64),
            "share": pd.Series(dtype=np.float64)}
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(cols)


def abs_correlation(X: np.ndarray) -> np.ndarray:
    """|Pearson r| of every column pair over the rows where both are present (NaN when undefined).

    Pairwise-complete sums as four matrix products: counts, sums, sums of squares and cross products
    restricted to rows where the other column is present. Columns are centred first (precision)."""
    with _one_blas_thread():
        return _abs_correlation(X)


def _one_blas_thread():
    """BLAS on one thread: on a busy machine its worker threads spin and run several times slower,
    and these products are small (<= stats_sample_rows rows)."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _abs_correlation(X: np.ndarray) -> np.ndarray:
    n, k = X.shape
    valid = ~np.isnan(X)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.nanmean(X, axis=0) if n else np.zeros(k)
    Z = np.where(valid, X - np.nan_to_num(mu), 0.0)
    if valid.all():
        cov = Z.T @ Z
        d = np.sqrt(np.diag(cov))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = cov / np.outer(d, d)
    else:
        M = valid.astype(np.float64)
        cnt = M.T @ M
        sx = Z.T @ M                     # sx[i, j]: sum of column i over rows where j is present
        sxx = (Z * Z).T @ M
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = Z.T @ Z - sx * sx.T / cnt
            var_i = sxx - sx * sx / cnt
            r = cov / np.sqrt(var_i * var_i.T)
            r[cnt < 3] = np.nan
    r = np.abs(r)
    r[(r > 1) & (r < 1 + 1e-9)] = 1.0
    return r


def correlation_frame(X: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    r = abs_correlation(X)
    i, j = np.triu_indices(len(names), 1)
    a = np.asarray(names, dtype=object)
    return pd.DataFrame({"feature_a": a[i], "feature_b": a[j], "abs_corr": r[i, j]})


def average_ranks(x: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Ranks 1..n with ties sharing their average rank (as ``scipy.stats.rankdata``); ``order`` is
    ``argsort(x)`` when the caller has it."""
    order = np.argsort(x, kind="stable") if order is None else order
    s = x[order]
    new = np.r_[True, s[1:] != s[:-1]]
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(s)]
    ranks = np.empty(len(x))
    ranks[order] = ((starts + ends + 1) / 2.0)[group]
    return ranks


def _auc_from_ranks(ranks: np.ndarray, positive: np.ndarray) -> float:
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def sample_rows(n: int, cap: int) -> np.ndarray:
    """At most ``cap`` evenly spaced row positions (all rows when n <= cap): deterministic."""
    return np.arange(n) if n <= cap else np.unique(np.linspace(0, n - 1, cap).astype(np.int64))


def leak_frame(X: np.ndarray, names: Sequence[str], labels: pd.DataFrame, label_columns: Sequence[str],
               min_rows: int = 20, min_class_rows: int = 10) -> pd.DataFrame:
    """One row per (feature, label): ``auc`` = max over classes of max(AUC, 1 - AUC) for a class label,
    ``abs_r`` = |Pearson r| for a continuous one (the other is NaN). A class (or its rest) with fewer
    than ``min_class_rows`` rows is not scored: with 6 losers, some honest feature of 180 separates
    them perfectly by chance."""
    rows, orders = [], {}
    for lc in label_columns:
        if lc not in labels.columns:
            continue
        y = pd.to_numeric(labels[lc], errors="coerce").to_numpy(dtype=np.float64)
        has_y = ~np.isnan(y)
        if has_y.sum() < min_rows:
            continue
        classes = np.unique(y[has_y])
        if len(classes) < 2:
            continue
        categorical = len(classes) <= MAX_CLASSES
        for j, name in enumerate(names):
            x = X[:, j]
            m = has_y & ~np.isnan(x)
            if m.sum() < min_rows:
                continue
            xm, ym = x[m], y[m]
            if xm.min() == xm.max():
                continue
            auc = r = np.nan
            if categorical:
                # one sort of x per feature: its order restricted to these rows is their order
                if j not in orders:
                    orders[j] = np.argsort(x, kind="stable")
                kept = orders[j][m[orders[j]]]
                ranks = average_ranks(xm, (np.cumsum(m) - 1)[kept])
                scored = [c for c in (classes[1:] if len(classes) == 2 else classes)
                          if min_class_rows <= (ym == c).sum() <= len(ym) - min_class_rows]
                if not scored:
                    continue
                auc = max(max(a, 1 - a) for a in (_auc_from_ranks(ranks, ym == c) for c in scored))
            elif ym.std() > 0:
                r = abs(float(np.corrcoef(xm, ym)[0, 1]))
            rows.append((name, lc, int(m.sum()), auc, r))
    return pd.DataFrame(rows, columns=["feature", "label", "rows", "auc", "abs_r"]).astype(
        {"feature": object, "label": object, "rows": np.int64, "auc": np.float64, "abs_r": np.float64})


def _positions(ids: pd.Series, index: pd.Index) -> np.ndarray:
    """Row position of each id in ``index`` (-1 if absent); Arrow's hash lookup, ~6x pandas' on strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(ids.dtype, pd.CategoricalDtype) and ids.cat.categories.equals(pd.Index(index.astype(str))):
        return ids.cat.codes.to_numpy(dtype=np.int64)  # categories are the dataset's rows: codes are positions
    try:
        found = pc.index_in(pa.array(ids.array), value_set=pa.array(index.array))
    except (pa.ArrowException, TypeError):
        return index.get_indexer(ids)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _codes(values: pd.Series, vocabulary: Sequence[str]) -> np.ndarray:
    """Position of each value in a small ``vocabulary`` (-1 if absent), one vectorised comparison each."""
    if isinstance(values.dtype, pd.CategoricalDtype):  # one comparison per category, then a lookup by code
        lookup = np.array([list(vocabulary).index(c) if c in vocabulary else -1 for c in values.cat.categories] + [-1])
        return lookup[values.cat.codes.to_numpy(dtype=np.int64)]
    out = np.full(len(values), -1, dtype=np.int64)
    for i, v in enumerate(vocabulary):
        out[(values == v).to_numpy(dtype=bool, na_value=False)] = i
    return out


def fold_frame(labels: pd.DataFrame, splits: pd.DataFrame, embargo: pd.Timedelta) -> pd.DataFrame:
    """One row per (scheme, fold): train/test sizes and their broken rules (see module doc).

    ``unknown_rows``: split rows naming a signal_id that is not in the dataset."""
    cols = ["scheme", "fold", "train", "test", "unknown_rows", "in_both", "overlapping", "in_embargo",
            "not_before_test"]
    if not len(splits) or not len(labels):
        return pd.DataFrame({c: pd.Series(dtype=object if c == "scheme" else np.int64) for c in cols})
    t0, t1 = to_ns(labels["t0"]), to_ns(labels["t1"])
    pos = _positions(splits["signal_id"], labels.index)
    is_train = _codes(splits["role"], ["train"]) == 0
    schemes = sorted(splits["scheme"].dropna().unique())
    scheme_code = _codes(splits["scheme"], schemes)
    fold = splits["fold"].to_numpy(dtype=np.int64)
    key = scheme_code * (int(fold.max()) + 1 if len(fold) else 1) + fold
    e = int(pd.Timedelta(embargo).value)
    mark = np.zeros(len(labels), dtype=bool)
    rows = []
    for k in np.flatnonzero(np.bincount(key)):    # a handful of folds: one pass over the split rows each
        idx = key == k
        p, tr = pos[idx], is_train[idx]
        train, test = p[tr & (p >= 0)], p[~tr & (p >= 0)]
        mark[test] = True
        both = int(mark[train].sum())
        mark[test] = False
        overlapping = in_embargo = not_before = 0
        first = int(np.flatnonzero(idx)[0])
        scheme = schemes[scheme_code[first]] if scheme_code[first] >= 0 else "?"
        if len(test) and len(train):
            overlapping = int(overlaps_any(t0[train], t1[train], t0[test], t1[test]).sum())
            end = t1[test].max()
            in_embargo = int(((t0[train] > end) & (t0[train] <= end + e)).sum())
            if scheme == "walk_forward":     # trains on the past only: every label known before the block
                start = t0[test].min()
                not_before = int(((t0[train] >= start) | (t1[train] >= start)).sum())
        rows.append((scheme, int(fold[first]), len(train), len(test), int((p < 0).sum()),
                     both, overlapping, in_embargo, not_before))
    return pd.DataFrame(rows, columns=cols)


def _examples(o, ids: pd.Index, n: int = 3) -> str:
    """Up to ``n`` failing rows: their id columns and values (raw batches: the row's signal_id)."""
    rows = o.result.get("partial_unexpected_index_list") or o.result.get("partial_unexpected_list") or []
    shown = []
    for r in rows[:n]:
        if isinstance(r, dict):
            shown.append(", ".join(f"{k}={_fmt(v)}" for k, v in r.items()))
        elif isinstance(r, (int, np.integer)) and o.batch in RAW_BATCHES and 0 <= r < len(ids):
            shown.append(f"{ids.name or 'row'}={ids[r]}")
        else:
            shown.append(_fmt(r))
    return "; ".join(f"[{s}]" for s in shown)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)


RAW_BATCHES = ("dataset_features", "dataset_label_times")


def summarise(check: str, outcomes: list, frames: dict, cfg, n_features: int, ids: pd.Index) -> tuple[object, str]:
    """(observed value, one readable sentence) of one check from its GX outcomes and derived frame."""
    failing = [o for o in outcomes if not o.success]
    bad = "; ".join(f"{o.expectation}: " + (f"could not run ({o.result['exception']})" if "exception" in o.result
                    else f"{o.result.get('unexpected_count', 0):,} unexpected, e.g. {_examples(o, ids)}") for o in failing)
    if check == "missing_rate_below_max":
        f = frames["feature_missing"]
        worst = f.loc[f["missing_rate"].idxmax()] if len(f) else None
        obs = float(worst["missing_rate"]) if worst is not None else 0.0
        warm = f"{len(ids) - int(worst['rows']):,} warm-up rows" if worst is not None else "warm-up"
        head = (f"{n_features} features, worst {worst['feature']} {obs:.2%} missing" if obs
                else f"{n_features} features, none missing") + f" after {warm} (max {cfg.max_missing_rate:.2%})"
    elif check == "feature_correlation":
        f = frames["feature_pairs"]
        obs = float(f["abs_corr"].max()) if len(f) and f["abs_corr"].notna().any() else 0.0
        over = int((f["abs_corr"] > cfg.max_abs_correlation).sum())
        head = f"{len(f):,} pairs, max |r| {obs:.3f}, {over} above {cfg.max_abs_correlation}"
    elif check == "no_label_leak":
        f = frames["label_leaks"]
        obs = {"auc": float(f["auc"].max()) if f["auc"].notna().any() else None,
               "abs_r": float(f["abs_r"].max()) if f["abs_r"].notna().any() else None}
        head = (f"{len(f):,} feature/label pairs, max AUC {_fmt(obs['auc'])} (limit {cfg.leak_auc}), "
                f"max |r| {_fmt(obs['abs_r'])} (limit {cfg.leak_abs_r})")
    elif check == "label_balance":
        f = frames["label_balance"]
        obs = {k: float(g["share"].min()) for k, g in f.groupby("label")}
        head = ", ".join(f"{k} minority share {v:.1%}" for k, v in obs.items()) + \
            f" (bounds {cfg.min_class_share:.0%}..{cfg.max_class_share:.0%})"
    elif check in ("splits_purged", "splits_embargoed", "splits_walk_forward_ordered"):
        f = frames["folds"]
        cols = {"splits_purged": ["in_both", "unknown_rows", "overlapping"], "splits_embargoed": ["in_embargo"],
                "splits_walk_forward_ordered": ["not_before_test"]}[check]
        obs = int(f[cols].to_numpy().sum())
        head = f"{len(f)} folds, {obs} bad training row(s)"
    elif check in ("point_in_time", "labels_rederived"):
        f = frames["point_in_time" if check == "point_in_time" else "labels"]
        obs = int(f["changed"].sum())
        cut = f.attrs.get("cutoffs")
        head = (f"{len(f)} columns, {obs:,} stored value(s) differ from the recomputation"
                + (f" (all rows, then {cut} sampled rows' t0 as cutoffs)" if cut is not None else " (all rows)"))
    elif check == "splits_rederived":
        f = frames["splits_rederived"]
        obs = {"extra": int(f["extra"].sum()), "missing": int(f["missing"].sum())}
        head = (f"{len(f)} folds, {obs['extra']:,} split row(s) the config does not give, "
                f"{obs['missing']:,} it gives missing")
    elif check == "files_match_manifest":
        f = frames["files"]
        obs = f.loc[~f["same"], "file"].tolist()
        head = f"{len(f)} files, " + (f"changed since written: {', '.join(obs)}" if obs else "all as recorded")
    else:
        obs = sum(int(o.result.get("unexpected_count") or 0) for o in outcomes)
        head = f"{len(outcomes)} expectation(s), {obs:,} failing row(s)"
    return obs, head + (f" -- {bad}" if bad else "")
