"""Feature importance (guide §5.3): which features of the ML dataset tell winning decisions from losing ones.

What the page holds, for the weekly dataset bundles (``processed/ml_ready/<start>_<end>/``) of a period:

- **permutation importance** of each model feature: a HistGradientBoosting classifier (NaN-aware, fixed
  ``random_state``) is fitted per purged k-fold fold on that fold's **train rows only**, and the drop of
  its ROC AUC when one feature's values are shuffled is measured on that fold's **test rows only** (purged
  and embargoed folds: no test decision's label window overlaps a training row), so nothing the model saw
  in training is scored. Per feature: mean over folds, std, min and max over folds; per fold, test AUC.
  ``comprehensive`` adds the walk-forward folds and 10 shuffles per feature (3 otherwise);
- **rank (Spearman) correlation** of each feature with the outcome (the target, and pnl, R multiple or
  the triple-barrier return where present), each with its number of rows;
- **suggestions** worked out from those numbers: features never useful, NaN-only and constant features
  (left out of the model), redundant pairs (|rank correlation| >= 0.95), the features to keep.

Target: ``auto`` is trade success (executed decisions, non-NaN ``success``) when there are at least
100 such rows and every fold's training rows hold both outcomes; otherwise the triple-barrier outcome
(``tb_label > 0`` is a win, every decision). One bundle uses its stored splits; several bundles are
concatenated (t0 order) and their purged folds recomputed with :func:`mia_pipeline.ml.bundle.make_splits`.

The numbers (permutation importance, rank correlations, redundant pairs) are computed in
:mod:`mia_pipeline.reports.importance`.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from mia_pipeline.layout import Layout, parse_day
from mia_pipeline.ml.bundle import DatasetBundle, SplitConfig, make_splits, read_bundle
from mia_pipeline.ml.errors import DatasetError
from mia_pipeline.ml.features import feature_columns
from mia_pipeline.reports.base import Period, Report, ReportError
from mia_pipeline.reports.importance import MODEL, REDUNDANT, importance, outcome_corr, redundant_pairs
from mia_pipeline.reports.page import Page, md_table, new_figure

KIND, TITLE = "features", "Feature importance"
TARGETS = ("auto", "success", "tb_label")
MIN_ROWS = 20               # below this no model is fitted: the page is unverified
MIN_SUCCESS_ROWS = 100      # "auto" uses trade success only from this many executed decisions
TOP_PLOT, TOP_TABLE = 20, 20


# --- which bundles ------------------------------------------------------------------------------------------
def bundles_for_period(layout: Layout, period: Period) -> tuple[list[DatasetBundle], list[str]]:
    """The dataset bundles whose week ``<start>_<end>`` overlaps ``period`` (oldest first), and one line per
    overlapping folder that could not be read (skipped). Folders not named ``<day>_<day>`` are ignored."""
    root = layout.ml_ready_dir
    bundles, problems = [], []
    if not root.is_dir():
        return bundles, problems
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            start, end = (parse_day(d).isoformat() for d in folder.name.split("_"))
        except ValueError:
            continue
        if start > period.end or end < period.start:
            continue
        try:
            bundles.append(read_bundle(folder))
        except DatasetError as exc:
            problems.append(f"dataset {folder.name} skipped: unreadable ({exc})")
    return bundles, problems


def combine(bundles: list[DatasetBundle]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """(features, labels, splits, how): one bundle as stored; several concatenated in t0 order (a decision
    in two bundles kept once, from the later one) with purged and walk-forward folds recomputed."""
    names = ", ".join(b.name for b in bundles)
    if len(bundles) == 1 and "purged_kfold" in set(bundles[0].splits["scheme"].astype(str)):
        b = bundles[0]
        return b.features, b.labels, b.splits, f"Dataset {names}: its stored purged k-fold splits."
    features = pd.concat([b.features for b in bundles])
    labels = pd.concat([b.labels for b in bundles])
    keep = ~features.index.duplicated(keep="last")
    dropped = int((~keep).sum())
    features, labels = features[keep], labels[keep]
    order = np.argsort(labels["t0"].to_numpy(), kind="stable")
    features, labels = features.iloc[order], labels.iloc[order]
    embargo = (bundles[0].metadata.get("splits") or {}).get("embargo", SplitConfig().embargo)
    splits = make_splits(labels, SplitConfig(embargo=embargo))
    what = f"{len(bundles)} datasets ({names}) concatenated in t0 order" if len(bundles) > 1 else f"Dataset {names}"
    dup = f"; {dropped} decision(s) present in two datasets kept once" if dropped else ""
    return features, labels, splits, (f"{what}{dup}: purged k-fold and walk-forward splits recomputed on the "
                                      f"combined rows (embargo {embargo}), not the stored per-week splits.")


def fold_masks(splits: pd.DataFrame, index: pd.Index, scheme: str) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``[(fold, train mask, test mask)]`` over the rows of ``index`` for one split scheme."""
    s = splits[splits["scheme"].astype(str) == scheme]
    pos = index.astype(str).get_indexer(s["signal_id"].astype(str))
    known = pos >= 0
    pos, fold, test = pos[known], s["fold"].to_numpy()[known], (s["role"].astype(str) == "test").to_numpy()[known]
    out = []
    for k in np.unique(fold):
        tr, te = np.zeros(len(index), bool), np.zeros(len(index), bool)
        tr[pos[(fold == k) & ~test]] = True
        te[pos[(fold == k) & test]] = True
        out.append((int(k), tr, te))
    return out


# --- target ------------------------------------------------------------------------------------------------
def choose_target(labels: pd.DataFrame, folds, target: str = "auto") -> tuple[str, np.ndarray, str]:
    """(name, y, why): ``y`` is 1.0 win / 0.0 loss / NaN for rows the target does not cover."""
    if target not in TARGETS:
        raise ReportError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    n = len(labels)
    nan = np.full(n, np.nan)
    success = labels["success"].to_numpy(float) if "success" in labels else nan
    tb = labels["tb_label"].to_numpy(float) if "tb_label" in labels else nan
    y_success = np.where(np.isnan(success), np.nan, (success > 0.5).astype(float))
    y_tb = np.where(np.isnan(tb), np.nan, (tb > 0).astype(float))
    n_s = int((~np.isnan(y_success)).sum())
    if target == "success":
        return "success", y_success, f"asked for: trade success of the {n_s} executed decision(s)."
    if target == "tb_label":
        return "tb_label", y_tb, "asked for: triple-barrier outcome (tb_label > 0 is a win) of every decision."
    lacking = [k for k, tr, _ in folds if len(np.unique(y_success[tr & ~np.isnan(y_success)])) < 2]
    if n_s >= MIN_SUCCESS_ROWS and not lacking:
        return "success", y_success, (f"trade success: {n_s} executed decisions, both outcomes in every "
                                      f"fold's training rows.")
    why = (f"only {n_s} executed decision(s) with a known outcome (< {MIN_SUCCESS_ROWS})" if n_s < MIN_SUCCESS_ROWS
           else f"fold(s) {', '.join(map(str, lacking))} train on one outcome only")
    return "tb_label", y_tb, (f"triple-barrier outcome (tb_label > 0 is a win) of every decision, because trade "
                              f"success has {why}.")


# --- plots ------------------------------------------------------------------------------------------------
def importance_figure(top: pd.DataFrame, scheme: str):
    fig, ax = new_figure(9.0, 0.3 * len(top) + 1.4)
    lo, hi = (top["importance"] - top["min"]).clip(lower=0), (top["max"] - top["importance"]).clip(lower=0)
    ax.barh(top["feature"][::-1], top["importance"][::-1], xerr=[lo[::-1], hi[::-1]], color="#3b7dd8",
            ecolor="#1c2330", capsize=2)
    ax.axvline(0, color="#5b6576", lw=0.8)
    ax.set_xlabel(f"drop of test AUC when shuffled (mean over {scheme} folds; bars: min..max over folds)")
    return fig


def corr_figure(top: pd.DataFrame, col: str):
    fig, ax = new_figure(9.0, 0.3 * len(top) + 1.4)
    vals = top[col][::-1]
    ax.barh(top["feature"][::-1], vals, color=np.where(vals > 0, "#1d7a3a", "#b3261e"))
    ax.axvline(0, color="#5b6576", lw=0.8)
    ax.set_xlabel(f"Spearman correlation with {col[2:]}")
    return fig


# --- the report --------------------------------------------------------------------------------------------
def _f(x) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


def _unverified(page: Page, period: Period, reason: str, figures: dict) -> Report:
    page.notice("error", f"UNVERIFIED: {reason}")
    return Report(KIND, TITLE, period, page, status="unverified", problems=[reason], figures=figures,
                  summary=f"**{TITLE}** {period}: UNVERIFIED — {reason}")


def build_feature_report(bundles: list[DatasetBundle], period: Period, *, comprehensive: bool = False,
                         target: str = "auto", seed: int = 0) -> Report:
    """The feature-importance page of the ML datasets ``bundles`` over ``period`` (nothing written).

    Status: ``no data`` without a bundle or decision; ``unverified`` (``problems`` says why) when the
    importance cannot be measured (fewer than MIN_ROWS rows, one outcome class, every feature NaN-only or
    constant, no fold holding both outcomes); ``ok`` otherwise. Raises :class:`ReportError` for an
    unknown ``target``."""
    if target not in TARGETS:
        raise ReportError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    clock = time.perf_counter()
    page = Page(TITLE, f"ML datasets, {period} — permutation importance on purged test folds")
    figures: dict = {"bundles": len(bundles), "rows": 0, "features": 0, "target": None, "folds": 0,
                     "mean_test_auc": None, "top_feature": None, "top_importance": None, "never_useful": 0,
                     "redundant_pairs": 0, "nan_only": 0, "constant": 0}
    if not bundles or not sum(len(b.features) for b in bundles):
        why = "no ML dataset overlaps this period" if not bundles else "the datasets of this period hold no decision"
        page.notice("warn", f"NO DATA: {why}. Build one (`mia ml build` / the ml_dataset asset) and re-run.")
        return Report(KIND, TITLE, period, page, status="no data", figures=figures,
                      summary=f"**{TITLE}** {period}: no data — {why}.")
    features, labels, splits, how = combine(bundles)
    page.notice("info", how)
    schemes = ["purged_kfold"] + (["walk_forward"] if comprehensive else [])
    folds = {s: fold_masks(splits, features.index, s) for s in schemes}
    name, y, why = choose_target(labels, folds["purged_kfold"], target)
    page.notice("info", f"Target: {name} — {why}")
    rows = ~np.isnan(y)
    X = features.loc[rows, feature_columns(features)].astype(float).replace([np.inf, -np.inf], np.nan)
    yr, lab = y[rows], labels.loc[rows]
    nan_only = [c for c in X.columns if X[c].isna().all()]   # +/-inf counts as missing (no usable value)
    constant = [c for c in X.columns if c not in nan_only and X[c].nunique(dropna=True) <= 1]
    used = [c for c in X.columns if c not in nan_only and c not in constant]
    wins = int(np.nansum(yr))
    figures.update(rows=int(rows.sum()), features=len(used), target=name, nan_only=len(nan_only),
                   constant=len(constant))
    page.h2("Data")
    page.cards({"decisions": len(features), "rows (target known)": int(rows.sum()), "wins": wins,
                "features used": len(used), "NaN-only": len(nan_only), "constant": len(constant)})
    if not rows.any():
        why = f"no decision has a known {name} outcome"
        page.notice("warn", f"NO DATA: {why}.")
        return Report(KIND, TITLE, period, page, status="no data", figures=figures,
                      summary=f"**{TITLE}** {period}: no data — {why}.")

    reason = None
    if rows.sum() < MIN_ROWS:
        reason = f"only {int(rows.sum())} row(s) with a known {name} outcome (< {MIN_ROWS}): no model is fitted"
    elif wins in (0, int(rows.sum())):
        reason = (f"the target {name} has one class ({wins} win(s) of {int(rows.sum())}): importance cannot be "
                  f"measured")
    elif not used:
        reason = "every feature is NaN-only or constant on these rows: nothing to fit"
    imp = {}
    if reason is None:
        reps = 10 if comprehensive else 3
        imp = {s: importance(X[used], y[rows], [(k, tr[rows], te[rows]) for k, tr, te in folds[s]], s, reps, seed)
               for s in schemes}
        if imp["purged_kfold"].table.empty:
            reason = "no purged fold holds both outcomes in its training and test rows: importance cannot be measured"

    main = imp["purged_kfold"].table if reason is None else pd.DataFrame(columns=["feature", "importance"])
    corr = outcome_corr(X[used], lab, yr, name) if used else pd.DataFrame()
    pairs = redundant_pairs(X[used], main)
    figures["redundant_pairs"] = len(pairs)

    page.h2("Permutation importance")
    if reason is not None:
        page.notice("error", f"Importance not measured: {reason}.")
        for s in imp.values():
            page.bullets(s.skipped)
    else:
        fold_table = pd.concat([i.folds for i in imp.values()], ignore_index=True)
        pk = imp["purged_kfold"]
        mean_auc = float(pk.folds["test AUC"].mean())
        top = main.iloc[0]
        figures.update(folds=len(pk.folds), mean_test_auc=_f(mean_auc), top_feature=str(top["feature"]),
                       top_importance=_f(top["importance"]), never_useful=int(main["never useful"].sum()))
        page.cards({"folds scored": len(pk.folds), "mean test AUC": mean_auc, "top feature": top["feature"],
                    "never useful": int(main["never useful"].sum())})
        page.bullets(s for i in imp.values() for s in i.skipped)
        shown = main.head(TOP_PLOT)
        if (shown["importance"].abs() > 0).any() or (shown["max"] > 0).any():
            page.figure(importance_figure(shown, "purged k-fold"),
                        f"Top {len(shown)} features by permutation importance (purged k-fold test folds)")
        else:
            page.notice("warn", "Every permutation importance is 0: the model's test AUC does not depend on any "
                                "single feature (no bar to draw).")
        page.table(main, caption="Importance per feature (drop of test AUC; over folds)",
                   max_rows=None if comprehensive else TOP_TABLE)
        if comprehensive and "walk_forward" in imp and not imp["walk_forward"].table.empty:
            page.table(imp["walk_forward"].table, caption="Walk-forward folds: importance per feature")
        page.table(fold_table, caption="Test AUC per fold (model fitted on the fold's train rows only)")

    page.h2("Correlation with the outcome")
    ccol = f"ρ {name}"
    if not corr.empty and corr.filter(like="ρ ").notna().any().any():
        plot_col = ccol if corr[ccol].notna().any() else next(c for c in corr if c.startswith("ρ ")
                                                               and corr[c].notna().any())
        top_c = corr.dropna(subset=[plot_col]).reindex(columns=["feature", plot_col])
        top_c = top_c.loc[top_c[plot_col].abs().sort_values(ascending=False, kind="stable").index].head(TOP_PLOT)
        page.figure(corr_figure(top_c, plot_col), f"Top {len(top_c)} features by |Spearman correlation| with "
                                                  f"{plot_col[2:]}")
        page.table(corr, caption="Spearman correlation of each feature with the outcomes (n: rows both present)",
                   max_rows=None if comprehensive else TOP_TABLE)
    else:
        why = ("every feature is NaN-only or constant on these rows" if not used else
               f"fewer than 5 rows pair a feature with a varying outcome ({int(rows.sum())} row(s) with a known "
               f"target, {wins} win(s))")
        page.notice("warn", f"No correlation computable: {why}.")

    page.h2("Suggestions")
    page.bullets(suggestions(main, pairs, nan_only, constant, figures.get("mean_test_auc")))
    if len(pairs):
        page.table(pairs, caption=f"Redundant pairs (|rank correlation| >= {REDUNDANT})",
                   max_rows=None if comprehensive else 30)
    if nan_only or constant:
        page.h3("Left out of the model")
        page.bullets([f"NaN-only ({len(nan_only)}): {', '.join(nan_only)}"] * bool(nan_only)
                     + [f"constant ({len(constant)}): {', '.join(constant)}"] * bool(constant))

    seconds = time.perf_counter() - clock
    figures["seconds"] = round(seconds, 2)
    page.p(f"Computed in {seconds:.1f} s; model HistGradientBoostingClassifier({MODEL}, random_state={seed}); "
           f"{10 if comprehensive else 3} shuffles per feature and fold.")
    if reason is not None:
        return _unverified(page, period, reason, figures)
    top10 = main.head(10)[["rank", "feature", "importance", "std", "min", "max"]]
    summary = (f"**{TITLE}** {period}: target {name}, {figures['rows']} rows, {len(used)} features, "
               f"mean test AUC {figures['mean_test_auc']:.3f}; {figures['never_useful']} never useful, "
               f"{len(pairs)} redundant pair(s), {len(nan_only)} NaN-only.\n\n{md_table(top10, 10)}")
    return Report(KIND, TITLE, period, page, status="ok", figures=figures, summary=summary)


def suggestions(imp: pd.DataFrame, pairs: pd.DataFrame, nan_only: list[str], constant: list[str],
                mean_auc: float | None) -> list[str]:
    """What to do, from the numbers."""
    out = []
    if len(imp):
        keep = imp[(imp["folds useful"] == imp["folds"]) & (imp["importance"] > 0)]
        head = keep if len(keep) else imp[imp["importance"] > 0].head(5)
        if len(head):
            listed = ", ".join(f"{r.feature} ({r.importance:.4f})" for r in head.head(10).itertuples())
            out.append(("Keep: useful in every fold: " if len(keep) else "Strongest (not useful in every fold): ")
                       + listed)
        never = imp.loc[imp["never useful"], "feature"].tolist()
        if never:
            out.append(f"Drop candidates, never useful ({len(never)} of {len(imp)}: mean importance <= 0 or "
                       f"within 2 std of 0 in every fold): {', '.join(never[:40])}"
                       + (f" ... and {len(never) - 40} more" if len(never) > 40 else ""))
    if mean_auc is not None and mean_auc < 0.55:
        out.append(f"Mean test AUC is {mean_auc:.3f} (0.5 = chance): the ranking describes a weak model; "
                   f"read it as a hint, and collect more labelled decisions before dropping features.")
    if len(pairs):
        drops = pd.unique(pairs["drop"])
        out.append(f"Redundant: {len(pairs)} pair(s) with |rank correlation| >= {REDUNDANT}; dropping "
                   f"{len(drops)} feature(s) (the less important of each pair) loses little: "
                   f"{', '.join(drops[:30])}" + (" ..." if len(drops) > 30 else ""))
    if nan_only:
        out.append(f"{len(nan_only)} NaN-only feature(s) carry nothing on these rows (left out): "
                   f"{', '.join(nan_only[:20])}; check their source or warm-up window.")
    if constant:
        out.append(f"{len(constant)} constant feature(s) (left out): {', '.join(constant[:20])}.")
    return out or ["Nothing to suggest: no importance measured and no redundant, NaN-only or constant feature."]
