"""GX validation of a 1 M-row ML dataset (60 features, labels, purged k-fold + walk-forward splits):
every check of :func:`mia_pipeline.ml.validation.validate_dataset` that runs on the dataset alone (no Data
Docs, no data root: the checks that rebuild columns from the source days -- sources_unchanged,
columns_accounted, point_in_time, labels_rederived -- are UNVERIFIED here, and the in-memory bundle has
no files to checksum; their cost is one build of the window plus one per sampled row, see README).

Baseline, same run, same checks, pandas only (the project's leakage module as it was before GX):
``isna().mean()`` per feature after the warm-up, ``value_counts`` shares, ``DataFrame.corr()``,
pandas comparisons of as-of and label times, ``leakage.univariate_auc`` / ``np.corrcoef`` per feature
and label on the same row sample, and ``splits.split_problems`` per fold. Both must find the same
thing (the dataset holds one planted leak). The GX import (seconds, once per process) and one warm-up
run are not timed; best of 3. Goal: <= 2 s.
"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mia_pipeline.ml.bundle import DatasetBundle, SplitConfig, make_splits  # noqa: E402
from mia_pipeline.ml.features import feature_columns  # noqa: E402
from mia_pipeline.ml.leakage import univariate_auc  # noqa: E402
from mia_pipeline.ml.splits import Split, split_problems  # noqa: E402
from mia_pipeline.ml.validation import ValidationConfig, validate_dataset  # noqa: E402
from mia_pipeline.quality import ml_checks as S  # noqa: E402

ROWS, FEATURES, SYMBOLS = 1_000_000, 60, 4
GOAL_S = 2.0


def dataset() -> DatasetBundle:
    rng = np.random.default_rng(3)
    n = ROWS
    t0 = pd.Series(pd.Timestamp("2024-01-02", tz="UTC") + pd.to_timedelta(np.arange(n) * 15, unit="s"))
    ids = pd.Index([f"sig-{i:08d}" for i in range(n)], name="signal_id", dtype="string")
    X = rng.normal(size=(n, FEATURES))
    X[: 30 * SYMBOLS, :10] = np.nan                       # warm-up of rolling windows
    X[rng.random((n, FEATURES)) < 0.002] = np.nan         # scattered gaps (0.2 %)
    feats = pd.DataFrame(X, columns=[f"f_{i:02d}" for i in range(FEATURES)], index=ids)
    tb = rng.choice([-1.0, 0.0, 1.0], n, p=[0.3, 0.4, 0.3])
    feats["f_leak"] = tb + rng.normal(0, 0.01, n)         # the planted leak
    feats.insert(0, "t0", t0.to_numpy())
    feats.insert(1, "symbol", np.tile(np.array([f"S{i}" for i in range(SYMBOLS)]), n // SYMBOLS))
    feats["features_asof"] = feats["t0"] - pd.Timedelta("1s")
    feats["bar_asof"] = feats["t0"].dt.floor("min")
    feats["bar_close"] = 5000 + rng.normal(size=n).cumsum()
    success = np.where(rng.random(n) < 0.2, (rng.random(n) < 0.5).astype(float), np.nan)
    labels = pd.DataFrame({"t0": t0.to_numpy(), "t1": (t0 + pd.Timedelta("5min")).to_numpy(), "success": success,
                           "tb_label": tb, "tb_return": rng.normal(0, 1e-3, n),
                           "tb_entry": feats["bar_close"].to_numpy(), "tb_entry_asof": feats["bar_asof"].to_numpy()},
                          index=ids)
    splits = make_splits(labels, SplitConfig())
    return DatasetBundle(feats, labels, splits, {"splits": {"embargo": "30min"}})


def project(b: DatasetBundle, cfg: ValidationConfig) -> set:
    report = validate_dataset(b, cfg)
    return {r.name for r in report.failed}


def baseline(b: DatasetBundle, cfg: ValidationConfig) -> set:
    F, L = b.features, b.labels
    names = feature_columns(F)
    failed = set()
    if F[["t0", "symbol"]].isna().any().any() or L[["t0", "t1"]].isna().any().any():
        failed.add("critical_values_present")
    warm = F.groupby("symbol").cumcount() < 30
    if (F.loc[~warm, names].isna().mean() > cfg.max_missing_rate).any():
        failed.add("missing_rate_below_max")
    for c in cfg.balance_labels:
        share = L[c].value_counts(normalize=True)
        if share.min() < cfg.min_class_share or share.max() > cfg.max_class_share:
            failed.add("label_balance")
    corr = F[names].corr().abs().to_numpy()
    if (corr[np.triu_indices(len(names), 1)] > cfg.max_abs_correlation).any():
        failed.add("feature_correlation")
    if ((F["features_asof"] > F["t0"]) | (F["bar_asof"] > F["t0"]) | (L["tb_entry_asof"] > L["t0"])).any():
        failed.add("asof_not_after_t0")
    if (L["t1"] <= L["t0"]).any() or not (L["t0"] == F["t0"]).all():
        failed.add("label_times")
    if not (F["bar_close"] == L["tb_entry"]).all():
        failed.add("bar_features_match_label_entry")
    sample = S.sample_rows(len(L), cfg.stats_sample_rows)
    Fs, Ls = F.iloc[sample], L.iloc[sample]
    for lc in cfg.leak_labels:
        if lc not in Ls.columns:
            continue
        y = Ls[lc].to_numpy(dtype=float)
        classes = np.unique(y[~np.isnan(y)])
        for fc in names:
            x = Fs[fc].to_numpy()
            if len(classes) <= S.MAX_CLASSES:
                aucs = [univariate_auc(x, (y == c).astype(float) + np.where(np.isnan(y), np.nan, 0)) for c in classes]
                if max(max(a, 1 - a) for a in aucs if np.isfinite(a)) >= cfg.leak_auc:
                    failed.add("no_label_leak")
            else:
                m = ~(np.isnan(x) | np.isnan(y))
                if abs(np.corrcoef(x[m], y[m])[0, 1]) >= cfg.leak_abs_r:
                    failed.add("no_label_leak")
    pos = pd.Series(np.arange(len(L)), index=L.index)
    for _, s in b.splits.groupby("scheme"):
        folds = [Split(int(f), pos[g.loc[g["role"] == "train", "signal_id"]].to_numpy(),
                       pos[g.loc[g["role"] == "test", "signal_id"]].to_numpy()) for f, g in s.groupby("fold")]
        for p in split_problems(L["t0"], L["t1"], folds, pd.Timedelta("30min")):
            failed.add("splits_embargoed" if "embargo" in p else "splits_purged")
    return failed


def timed(fn, *args, repeat: int = 3):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> int:
    import great_expectations  # noqa: F401  (import cost is per process, not per validation)

    b = dataset()
    cfg = ValidationConfig()
    project(b, cfg)                                       # warm-up
    tp, mine = timed(project, b, cfg)
    tb, ref = timed(baseline, b, cfg, repeat=1)
    assert mine == ref == {"no_label_leak"}, (mine, ref)
    print(f"gx_validation: {tp:.2f} s for {ROWS:,} rows x {FEATURES + 1} features, {len(b.splits):,} split rows "
          f"| baseline pandas-only checks {tb:.2f} s | ratio {tb / tp:.1f}x | goal <= {GOAL_S} s: "
          f"{'OK' if tp <= GOAL_S else 'MISSED'}")
    return 0 if tp <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
