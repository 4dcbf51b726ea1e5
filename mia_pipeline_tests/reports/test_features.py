"""The feature-importance report on in-memory datasets with a planted signal: ``f_signal`` decides the
outcome, ``f_copy`` is twice it (a redundant pair), ``f_noise`` is noise, ``f_nan`` is NaN-only and
``f_const`` constant. Bad inputs (no dataset, one outcome class, too few rows, NaN-only features) give a
page that says so with the right status."""

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance

from mia_pipeline.layout import Layout
from mia_pipeline.ml.bundle import DatasetBundle, SplitConfig, make_splits, week_of, write_bundle
from mia_pipeline.reports.base import Period, ReportError
from mia_pipeline.reports.features import build_feature_report, bundles_for_period
from mia_pipeline.reports.importance import importance, permutation_scores, rank_corr

PERIOD = Period("2025-06-22", "2025-07-05")
START = pd.Timestamp("2025-06-23 13:30", tz="UTC")


def planted(n: int = 600, start=START, seed: int = 1, success_rows: int = 0, prefix: str = "sig") -> DatasetBundle:
    """``n`` decisions 10 min apart; the outcome is a win exactly when f_signal > 0.6 (a few flipped)."""
    rng = np.random.default_rng(seed)
    t0 = start + pd.to_timedelta(np.arange(n) * 10, unit="min")
    ids = pd.Index([f"{prefix}-{i:05d}" for i in range(n)], name="signal_id", dtype="string")
    sig = rng.random(n)
    win = (sig > 0.6) ^ (rng.random(n) < 0.03)
    feats = pd.DataFrame({"t0": t0, "symbol": "ES", "f_signal": sig, "f_noise": rng.normal(size=n),
                          "f_copy": sig * 2, "f_nan": np.nan, "f_const": 3.0,
                          "features_asof": t0 - pd.Timedelta("1s")}, index=ids)
    success = np.full(n, np.nan)
    success[:success_rows] = win[:success_rows]
    labels = pd.DataFrame({"t0": t0, "t1": t0 + pd.Timedelta("15min"), "success": success,
                           "pnl": np.where(np.isnan(success), np.nan, np.where(win, 50.0, -40.0)),
                           "tb_label": np.where(win, 1.0, -1.0), "tb_return": np.where(win, 1e-3, -1e-3)}, index=ids)
    a, b = week_of(t0[0]), week_of(t0[-1])
    return DatasetBundle(feats, labels, make_splits(labels, SplitConfig()),
                         {"window": {"start": a[0], "end": b[1]}, "splits": {"embargo": "30min"}})


@pytest.fixture(scope="module")
def report():
    return build_feature_report([planted()], PERIOD)


def html_of(rep) -> str:
    return rep.page.html()


def assert_self_contained(html: str) -> None:
    assert "http://" not in html and "https://" not in html
    for src in re.findall(r'<img[^>]*src="([^"]*)"', html):
        assert src.startswith("data:image/png;base64,")


def test_planted_signal_ranks_first_with_its_fold_spread(report):
    assert report.status == "ok", report.problems
    assert report.problems == []
    f = report.figures
    assert f["target"] == "tb_label" and f["rows"] == 600 and f["folds"] == 5
    assert f["top_feature"] == "f_signal"
    assert f["top_importance"] > 0.2
    assert f["mean_test_auc"] > 0.9
    assert f["features"] == 3 and f["nan_only"] == 1
    html = html_of(report)
    assert "Top 3 features by permutation importance" in html
    for col in ("<th>std</th>", "<th>min</th>", "<th>max</th>"):
        assert col in html
    assert "| 1 | f_signal |" in report.summary


def test_noise_is_never_useful_and_the_copy_is_redundant(report):
    html = html_of(report)
    assert report.figures["never_useful"] >= 1
    assert report.figures["redundant_pairs"] == 1
    never = re.search(r"never useful \((\d+) of 3[^<]*: ([^<]*)</li>", html)
    assert never, "no never-useful suggestion on the page"
    assert "f_noise" in never.group(2) and "f_signal" not in never.group(2)
    assert "Redundant: 1 pair(s)" in html and "f_copy" in html
    assert re.search(r"NaN-only \(1\): f_nan", html)
    assert re.search(r"constant \(1\): f_const", html)


def test_importance_spread_per_feature():
    b = planted()
    from mia_pipeline.reports.features import fold_masks

    X = b.features[["f_signal", "f_noise"]]
    y = (b.labels["tb_label"] > 0).to_numpy(float)
    imp = importance(X, y, fold_masks(b.splits, X.index, "purged_kfold"), "purged_kfold", 3, 0)
    t = imp.table.set_index("feature")
    assert t.loc["f_signal", "importance"] > 0.2
    assert t.loc["f_signal", "min"] > 0 and t.loc["f_signal", "std"] >= 0 and t.loc["f_signal", "folds useful"] == 5
    assert abs(t.loc["f_noise", "importance"]) < 0.02 and bool(t.loc["f_noise", "never useful"])
    assert len(imp.folds) == 5 and (imp.folds["test AUC"] > 0.9).all()


def test_batched_permutation_scores_equal_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = ((np.nan_to_num(X[:, 0]) + rng.normal(0, 0.5, 300)) > 0).astype(int)
    model = HistGradientBoostingClassifier(random_state=0, max_iter=30).fit(X[:200], y[:200])
    ours = permutation_scores(model, X[200:], y[200:], 3, 7)
    ref = permutation_importance(model, X[200:], y[200:], scoring="roc_auc", n_repeats=3, random_state=7)
    np.testing.assert_allclose(ours, ref.importances, atol=1e-12)


def test_rank_corr_is_spearman_with_pairwise_rows():
    rng = np.random.default_rng(2)
    a = pd.DataFrame(rng.normal(size=(200, 3)), columns=list("abc"))
    b = pd.DataFrame({"y": a["a"] ** 3 + rng.normal(0, 0.3, 200), "z": rng.normal(size=200)})
    rho, n = rank_corr(a, b)
    ref = pd.concat([a, b], axis=1).corr(method="spearman").loc[list("abc"), ["y", "z"]]
    np.testing.assert_allclose(rho.to_numpy(), ref.to_numpy(), atol=1e-12)
    a.loc[:49, "b"] = np.nan
    rho, n = rank_corr(a, b)
    assert n.loc["b", "y"] == 150 and n.loc["a", "y"] == 200
    a["c"] = np.nan
    assert rank_corr(a, b)[0].loc["c"].isna().all()


def test_one_class_target_is_unverified_without_importance_plot():
    b = planted()
    b.labels["tb_label"] = -1.0
    rep = build_feature_report([b], PERIOD)
    assert rep.status == "unverified" and rep.exit_code == 1
    assert "one class" in rep.problems[0]
    html = html_of(rep)
    assert "UNVERIFIED" in html and "importance cannot be measured" in html
    assert "by permutation importance" not in html
    assert "|Spearman correlation| with tb_return" in html    # correlations are still shown
    assert rep.page.images == 1
    assert_self_contained(html)


def test_no_bundle_is_no_data():
    rep = build_feature_report([], PERIOD)
    assert rep.status == "no data" and rep.problems == [] and rep.page.images == 0
    assert "no ML dataset overlaps this period" in html_of(rep)


def test_too_few_rows_and_nan_only_features_are_unverified():
    rep = build_feature_report([planted(12)], PERIOD)
    assert rep.status == "unverified" and "only 12 row(s)" in rep.problems[0]
    b = planted()
    b.features[["f_signal", "f_noise", "f_copy"]] = np.nan
    rep = build_feature_report([b], PERIOD)
    assert rep.status == "unverified" and "NaN-only or constant" in rep.problems[0]
    assert re.search(r"NaN-only \(4\): f_signal, f_noise, f_copy, f_nan", html_of(rep))
    assert rep.page.images == 0


def test_several_bundles_recompute_splits_and_stay_self_contained():
    one = planted(300, seed=3, prefix="a")
    two = planted(300, start=START + pd.Timedelta("7D"), seed=4, prefix="b")
    rep = build_feature_report([one, two], PERIOD)
    assert rep.status == "ok" and rep.figures["bundles"] == 2 and rep.figures["rows"] == 600
    html = html_of(rep)
    assert "2 datasets" in html and "splits recomputed on the combined rows" in html
    assert rep.figures["top_feature"] == "f_signal"
    assert rep.page.images == 2
    assert_self_contained(html)


def test_auto_target_uses_trade_success_when_enough_and_explicit_target():
    rep = build_feature_report([planted(success_rows=400)], PERIOD)
    assert rep.figures["target"] == "success" and rep.figures["rows"] == 400
    assert "trade success: 400 executed decisions" in html_of(rep)
    rep = build_feature_report([planted(success_rows=60)], PERIOD)
    assert rep.figures["target"] == "tb_label" and "only 60 executed decision(s)" in html_of(rep)
    with pytest.raises(ReportError, match="unknown target"):
        build_feature_report([planted()], PERIOD, target="pnl")


def test_bundles_for_period_reads_overlapping_weeks_and_names_unreadable(tmp_path):
    layout = Layout(tmp_path / "data")
    b = planted(60)
    write_bundle(b, layout.ml_ready_dir / b.name)
    broken = layout.ml_ready_dir / "2025-06-29_2025-07-05"
    broken.mkdir(parents=True)
    (layout.ml_ready_dir / "exports").mkdir()
    bundles, problems = bundles_for_period(layout, PERIOD)
    assert [x.name for x in bundles] == [b.name] and len(bundles[0].features) == 60
    assert len(problems) == 1 and "2025-06-29_2025-07-05" in problems[0]
    assert bundles_for_period(layout, Period("2025-08-01", "2025-08-31")) == ([], [])
