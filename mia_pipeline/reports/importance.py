"""The numbers behind the feature-importance page (:mod:`mia_pipeline.reports.features`): permutation
importance fitted on purged train rows and measured on test rows only, rank correlations, redundant pairs.

Permutation scores are those of :func:`sklearn.inspection.permutation_importance` (same shuffles for the
same ``random_state``; a test pins the equality), computed in batches: every shuffled copy of a chunk of
features is stacked and scored by one ``predict_proba`` call, and the AUCs come from one rank pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

REDUNDANT = 0.95            # |rank correlation| between two features from which one is redundant
OUTCOMES = ("pnl", "r_multiple", "tb_return")
BATCH_CELLS = 250_000       # values per stacked predict_proba batch: 2 MB, stays in cache (64 MB was 1.5x slower)
MODEL = {"max_iter": 100, "max_leaf_nodes": 15, "max_bins": 63, "early_stopping": False}  # small trees: ~2k rows

def rank_corr(a: pd.DataFrame, b: pd.DataFrame, min_n: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spearman correlation of every column of ``a`` with every column of ``b`` (rows aligned) and the
    number of rows both hold: average ranks of each column over its non-NaN rows, then Pearson over the
    rows where both are present (one matrix product per moment; NaN where fewer than ``min_n`` rows or a
    constant column)."""
    A, B = a.rank().to_numpy(float), b.rank().to_numpy(float)
    ma, mb = ~np.isnan(A), ~np.isnan(B)
    with np.errstate(invalid="ignore", divide="ignore"):
        A = np.where(ma, A - np.nansum(A, 0) / ma.sum(0).clip(1), 0.0)
        B = np.where(mb, B - np.nansum(B, 0) / mb.sum(0).clip(1), 0.0)
        fa, fb = ma.astype(float), mb.astype(float)
        n = fa.T @ fb
        sa, sb = A.T @ fb, fa.T @ B
        cov = A.T @ B - sa * sb / n
        va = (A * A).T @ fb - sa * sa / n
        vb = fa.T @ (B * B) - sb * sb / n
        rho = cov / np.sqrt(va * vb)
    bad = (n < min_n) | (va <= 1e-9) | (vb <= 1e-9) | ~np.isfinite(rho)
    rho = np.where(bad, np.nan, np.clip(rho, -1.0, 1.0))
    return (pd.DataFrame(rho, index=a.columns, columns=b.columns),
            pd.DataFrame(n.astype(int), index=a.columns, columns=b.columns))


def auc_rows(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` (shape ``(m, n)``) against ``y`` (n 0/1 labels), ties counted half."""
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=1)
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    return (ranks[:, pos].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def permutation_scores(model, X: np.ndarray, y: np.ndarray, n_repeats: int, random_state: int) -> np.ndarray:
    """Drop of test AUC when each column is shuffled, shape ``(features, repeats)``: the numbers of
    ``sklearn.inspection.permutation_importance(model, X, y, scoring="roc_auc", n_repeats, random_state)``
    (same shuffles), every shuffled copy of a chunk of columns scored in one ``predict_proba`` call."""
    n, p = X.shape
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    rng, idx, perms = np.random.RandomState(seed), np.arange(n), []
    cur = np.arange(n)
    for _ in range(n_repeats):     # sklearn re-shuffles the already shuffled column: compose the shuffles
        rng.shuffle(idx)
        cur = cur[idx]
        perms.append(cur.copy())
    base = auc_rows(model.predict_proba(X)[:, 1][None, :], y)[0]
    out = np.empty((p, n_repeats))
    chunk = max(1, BATCH_CELLS // max(1, n * p * n_repeats))
    for c0 in range(0, p, chunk):
        cols = np.arange(c0, min(p, c0 + chunk))
        stack = np.broadcast_to(X, (len(cols), n_repeats, n, p)).copy()
        for j, c in enumerate(cols):
            for r, perm in enumerate(perms):
                stack[j, r, :, c] = X[perm, c]
        proba = model.predict_proba(stack.reshape(-1, p))[:, 1].reshape(len(cols) * n_repeats, n)
        out[cols] = base - auc_rows(proba, y).reshape(len(cols), n_repeats)
    return out


@dataclass
class Importance:
    table: pd.DataFrame                      # per feature: mean, std, min, max over folds, folds_useful
    folds: pd.DataFrame                      # per fold: scheme, fold, train, test, test wins, test AUC
    skipped: list[str] = field(default_factory=list)


def importance(X: pd.DataFrame, y: np.ndarray, fold_list, scheme: str, n_repeats: int, seed: int) -> Importance:
    """Fit per fold on train rows, permutation importance on test rows (rows with NaN ``y`` left out)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: on a busy 2-core machine (Dagster runs beside) spinning threads made the same work
    # 10-40x slower; on ~2k rows one thread is fast enough (about 1 s per fold).
    with threadpool_limits(1):
        return _importance(HistGradientBoostingClassifier, X, y, fold_list, scheme, n_repeats, seed)


def _importance(HistGradientBoostingClassifier, X, y, fold_list, scheme, n_repeats, seed) -> Importance:
    values, labelled = X.to_numpy(float), ~np.isnan(y)
    per_fold, useful, rows, skipped = [], [], [], []
    for k, tr, te in fold_list:
        tr, te = tr & labelled, te & labelled
        ytr, yte = y[tr].astype(int), y[te].astype(int)
        if len(np.unique(ytr)) < 2 or len(np.unique(yte)) < 2:
            which = "training" if len(np.unique(ytr)) < 2 else "test"
            skipped.append(f"{scheme} fold {k}: its {which} rows hold one outcome only ({int(tr.sum())} train, "
                           f"{int(te.sum())} test): not scored")
            continue
        model = HistGradientBoostingClassifier(random_state=seed, **MODEL).fit(values[tr], ytr)
        auc = float(auc_rows(model.predict_proba(values[te])[:, 1][None, :], yte)[0])
        scores = permutation_scores(model, values[te], yte, n_repeats, seed)
        mean, std = scores.mean(1), scores.std(1)
        per_fold.append(mean)
        useful.append(mean - 2 * std > 0)    # sklearn's own reading: a shuffle hurts beyond 2 std of the repeats
        rows.append({"scheme": scheme, "fold": k, "train rows": int(tr.sum()), "test rows": int(te.sum()),
                     "test wins": int(yte.sum()), "test AUC": auc})
    folds = pd.DataFrame(rows, columns=["scheme", "fold", "train rows", "test rows", "test wins", "test AUC"])
    if not per_fold:
        return Importance(pd.DataFrame(), folds, skipped)
    m = np.vstack(per_fold)
    table = pd.DataFrame({"feature": X.columns, "importance": m.mean(0), "std": m.std(0), "min": m.min(0),
                          "max": m.max(0), "folds useful": np.vstack(useful).sum(0), "folds": len(per_fold)})
    table["never useful"] = (table["importance"] <= 0) | (table["folds useful"] == 0)
    table = table.sort_values(["importance", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return Importance(table, folds, skipped)


def redundant_pairs(X: pd.DataFrame, imp: pd.DataFrame) -> pd.DataFrame:
    """Feature pairs with |rank correlation| >= REDUNDANT, with the one to drop (the less important one)."""
    cols = ["feature", "other", "rank corr", "rows", "drop"]
    if X.shape[1] < 2:
        return pd.DataFrame(columns=cols)
    rho, n = rank_corr(X, X)
    r = rho.to_numpy()
    i, j = np.nonzero(np.triu(np.abs(np.nan_to_num(r)) >= REDUNDANT, k=1))
    score = imp.set_index("feature")["importance"] if len(imp) else pd.Series(dtype=float)
    a, b = X.columns[i], X.columns[j]
    ia, ib = score.reindex(a).fillna(-np.inf).to_numpy(), score.reindex(b).fillna(-np.inf).to_numpy()
    out = pd.DataFrame({"feature": a, "other": b, "rank corr": r[i, j], "rows": n.to_numpy()[i, j],
                        "drop": np.where(ib <= ia, b, a)})
    return out.sort_values("rank corr", key=np.abs, ascending=False, kind="stable").reset_index(drop=True)


def outcome_corr(X: pd.DataFrame, labels: pd.DataFrame, y: np.ndarray, target: str) -> pd.DataFrame:
    """Per feature, rank correlation and rows with the target and each continuous outcome present."""
    outcomes = pd.DataFrame({target: y}, index=X.index)
    for c in OUTCOMES:
        if c in labels and labels[c].notna().sum() >= 5:
            outcomes[c] = labels[c].to_numpy(float)
    rho, n = rank_corr(X, outcomes)
    out = pd.DataFrame({"feature": X.columns})
    for c in outcomes.columns:
        out[f"ρ {c}"], out[f"n {c}"] = rho[c].to_numpy(), n[c].to_numpy()
    key = out[f"ρ {target}"].abs()
    return out.assign(_k=key.fillna(-1)).sort_values("_k", ascending=False, kind="stable").drop(columns="_k") \
        .reset_index(drop=True)
