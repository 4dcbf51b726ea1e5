"""Leak injection: each way of seeing the future is caught by a check in mia_pipeline.ml.leakage."""

import numpy as np
import pandas as pd

from mia_pipeline.ml import features as F
from mia_pipeline.ml.leakage import (
    asof_problems,
    label_time_problems,
    point_in_time_problems,
    predictive_problems,
    univariate_auc,
)


def _shift_future(X: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Each row gets the next row's values (same symbol): one step into the future."""
    bad = X.copy()
    bad[cols] = X.groupby("symbol")[cols].shift(-1)
    return bad


def test_feature_shifted_with_its_asof_time_is_caught(built):
    _, _, X, _ = built
    bad = _shift_future(X, ["bar_close", "bar_asof"])
    problems = asof_problems(bad)
    assert len(problems) == 1 and problems[0].startswith("bar_asof:") and "after t0" in problems[0]


def test_signal_feature_shifted_with_its_asof_time_is_caught(built):
    _, _, X, _ = built
    problems = asof_problems(_shift_future(X, ["feature_1", "features_asof"]))
    assert any(p.startswith("features_asof:") for p in problems)


def test_success_rate_including_the_exit_at_t0_is_caught(built):
    _, _, X, _ = built
    bad = X.copy()
    i = bad.index[bad["success_asof"].notna()][0]
    bad.loc[i, "success_asof"] = bad.loc[i, "t0"]  # known "at" t0 is not "closed before" t0
    assert any(p.startswith("success_asof:") for p in asof_problems(bad))


def test_feature_shifted_without_its_asof_time_is_caught_by_recomputation(built, monkeypatch):
    builder, snaps, X, _ = built
    real = F.signal_temporal_features

    def leaky(base, *args):
        out = real(base, *args)
        out["feature_3_mean_5"] = out.groupby(base["symbol"])["feature_3_mean_5"].shift(-1)
        return out

    monkeypatch.setattr(F, "signal_temporal_features", leaky)
    cuts = [X["t0"].iloc[len(X) // 3], X["t0"].iloc[2 * len(X) // 3]]
    problems = point_in_time_problems(lambda cut: builder.features_at(snaps, cut), cuts)
    assert problems and all(p.startswith("feature_3_mean_5:") for p in problems)


def test_bar_known_at_its_open_time_is_caught(built, monkeypatch):
    """Treating a bar as known at its open stamp (before it closed) is the classic off-by-one-bar leak.

    Its as-of column honestly says "open time <= t0", so the as-of check cannot see it; recomputing
    from only the bars *closed* at a cutoff does.
    """
    builder, snaps, X, _ = built
    real = F.bar_features
    monkeypatch.setattr(F, "bar_features", lambda bars, period, *a: real(bars, pd.Timedelta(0), *a))
    cuts = list(X["t0"].iloc[[100, 500, 900, 1300]])
    problems = point_in_time_problems(lambda cut: builder.features_at(snaps, cut), cuts)
    assert problems and all(p.startswith("bar_") for p in problems)


def test_forward_asof_join_is_caught(built, monkeypatch):
    builder, snaps, _, _ = built

    def forward(base, bar_feats):
        left = base[["t0", "symbol"]].reset_index().sort_values("t0")
        right = bar_feats.sort_values("bar_asof")
        right = right.assign(bar_asof=right["bar_asof"].astype(left["t0"].dtype))
        j = pd.merge_asof(left, right, left_on="t0", right_on="bar_asof", by="symbol", direction="forward")
        return j.set_index("index").sort_index().drop(columns=["t0", "symbol"])

    monkeypatch.setattr(F, "asof_join_bars", forward)
    assert any(p.startswith("bar_asof:") for p in asof_problems(builder.features_at(snaps, None)))


def test_label_plus_tiny_noise_is_flagged(built):
    _, _, X, y = built
    rng = np.random.default_rng(0)
    bad = X.copy()
    bad["leak_tb"] = y["tb_label"].to_numpy() + rng.normal(0, 0.01, len(y))
    bad["leak_ret"] = y["tb_return"].to_numpy() + rng.normal(0, 1e-5, len(y))
    problems = predictive_problems(bad, y)
    assert any(p.startswith("leak_tb predicts tb_label") for p in problems)
    assert any(p.startswith("leak_ret predicts tb_return") for p in problems)
    assert not [p for p in problems if not p.startswith("leak_")]


def test_binary_label_leak_is_flagged_by_auc():
    rng = np.random.default_rng(1)
    y = pd.DataFrame({"success": rng.integers(0, 2, 200).astype(float)})
    X = pd.DataFrame({"t0": pd.date_range("2025-06-23", periods=200, freq="min", tz="UTC"),
                      "honest": rng.normal(size=200), "leak": y["success"] + rng.normal(0, 0.05, 200)})
    problems = predictive_problems(X, y)
    assert len(problems) == 1 and problems[0].startswith("leak predicts success almost perfectly (AUC")


def test_univariate_auc():
    assert univariate_auc(np.array([1.0, 2, 3, 4]), np.array([0.0, 0, 1, 1])) == 1.0
    assert univariate_auc(np.array([4.0, 3, 2, 1]), np.array([0.0, 0, 1, 1])) == 0.0
    assert univariate_auc(np.array([1.0, 1, 1, 1]), np.array([0.0, 1, 0, 1])) == 0.5
    assert np.isnan(univariate_auc(np.array([1.0, 2]), np.array([1.0, 1])))


def test_label_known_before_decision_is_caught(built):
    _, _, X, y = built
    bad = y.copy()
    bad.iloc[5, bad.columns.get_loc("t1")] = bad["t0"].iloc[5] - pd.Timedelta("1s")
    assert any("t1 <= t0" in p for p in label_time_problems(bad, X))
    assert any("not aligned" in p for p in label_time_problems(y.iloc[1:], X))


def test_missing_asof_columns_are_reported():
    df = pd.DataFrame({"t0": pd.date_range("2025-06-23", periods=3, tz="UTC"), "x": [1.0, 2, 3]})
    assert asof_problems(df) == ["no *_asof column: the time of the inputs is not recorded"]
