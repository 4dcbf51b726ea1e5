import numpy as np
import pandas as pd
import pytest

from mia_pipeline.ml import DatasetError, MLDatasetBuilder, feature_columns
from mia_pipeline.ml.leakage import all_problems, asof_problems, label_time_problems
from mia_pipeline.ml.snapshots import RAW

START, END = "2025-06-23", "2025-06-25"


def test_guide_api(sim_store):
    b = MLDatasetBuilder(sim_store)
    assert b.features_count == 8
    assert b.lookback_periods == [5, 10, 15, 30]
    for name in ("build_features_dataset", "load_snapshots", "extract_features", "create_labels",
                 "feature_engineering"):
        assert callable(getattr(b, name))


def test_dataset_shape_and_alignment(built):
    _, snaps, X, y = built
    assert len(X) == len(y) > 1000
    assert (X.index == y.index).all() and X.index.name == "signal_id" and X.index.is_unique
    assert (X["t0"] == y["t0"]).all()
    assert X["t0"].is_monotonic_increasing
    assert set(X.index) <= set(snaps.signals["signal_id"])
    cols = feature_columns(X)
    assert len(cols) > 150
    # the guide's feature families are all there
    for c in ("feature_1", "feature_8", "feature_3_mean_5", "feature_3_std_20", "feature_2_mom_14",
              "feature_4_roc_10", "bar_ret_std_20", "bar_close_mom_7", "bar_close_roc_5", "pattern_freq_30",
              "confluence_mean_15", "pattern_success_rate", "regime_stability_10", "corr_f1_f2_20",
              "top_importance_ratio", "importance_weighted_score"):
        assert c in cols, c
    values = X[cols].to_numpy(dtype=float)
    assert np.isfinite(values[~np.isnan(values)]).all()
    assert np.isnan(values).mean() < 0.01


def test_clean_dataset_passes_every_leakage_check(built):
    _, _, X, y = built
    assert all_problems(X, y) == []


def test_every_input_is_as_of_t0(built):
    _, snaps, X, _ = built
    assert asof_problems(X) == []
    assert (X["features_asof"] <= X["t0"]).all()
    assert (X["bar_asof"] <= X["t0"]).all()
    has = X["success_asof"].notna()
    assert has.any() and (X.loc[has, "success_asof"] < X.loc[has, "t0"]).all()


def test_bar_used_is_the_last_one_closed_at_t0(built):
    """A bar stamped at its open is known at open + 1 min: the bar still open at t0 is never used."""
    _, snaps, X, _ = built
    bars = snaps.market_bars
    close_time = bars["ts"] + pd.Timedelta("1min")
    for sid, row in X.sample(200, random_state=1).iterrows():
        mine = close_time[bars["symbol"] == row["symbol"]]
        known = mine[mine <= row["t0"]]
        assert row["bar_asof"] == known.max(), sid
        # the bar open at t0 (stamped before t0, closing after it) is not the one used
        assert not ((mine > row["t0"]) & (mine - pd.Timedelta("1min") <= row["t0"]) & (mine == row["bar_asof"])).any()
        used = bars[(bars["symbol"] == row["symbol"]) & (close_time == row["bar_asof"])]
        assert used["close"].iloc[0] == row["bar_close"]


def test_success_rate_counts_only_trades_closed_before_t0(built):
    _, snaps, X, _ = built
    closed = snaps.trade_exits.merge(snaps.trades[["trade_id", "pattern"]], on="trade_id")
    for _, row in X.sample(300, random_state=2).iterrows():
        before = closed[closed["exit_ts"] < row["t0"]]
        same = before[before["pattern"] == row["primary_pattern"]]
        assert row["pattern_success_n"] == len(same)
        assert row["pattern_success_rate"] == pytest.approx(((same["pnl"] > 0).sum() + 1) / (len(same) + 2))
        assert row["overall_success_n"] == len(before)


def test_rolling_features_match_pandas_per_symbol(built):
    """Windows run over every signal known at t0, including those later left out of X for want of
    a known outcome (a signal near the end of the data), so pandas rolls over all of them too."""
    builder, snaps, X, _ = built
    every = builder.extract_features(snaps).set_index("signal_id")
    df = every.sort_values(["symbol", "t0"], kind="stable")
    g = df.groupby("symbol")["feature_3"]
    got = X.loc[df.index.intersection(X.index, sort=False)]
    expected = {"feature_3_mean_10": g.transform(lambda s: s.rolling(10, 1).mean()),
                "feature_3_std_5": g.transform(lambda s: s.rolling(5, 2).std()), "feature_3_mom_7": g.diff(7)}
    for name, want in expected.items():
        pd.testing.assert_series_equal(got[name], want.loc[got.index], check_names=False)


def test_point_in_time_recomputation_is_stable(built):
    """Removing everything after a cutoff changes no feature of the rows decided by then."""
    from mia_pipeline.ml.leakage import point_in_time_problems

    builder, snaps, X, _ = built
    cuts = [X["t0"].iloc[len(X) // 4], X["t0"].iloc[len(X) // 2] + pd.Timedelta("1s"), X["t0"].iloc[-50]]
    assert point_in_time_problems(lambda cut: builder.features_at(snaps, cut), cuts) == []


def test_labels_have_horizons(built):
    _, _, X, y = built
    assert label_time_problems(y, X) == []
    assert (y["t1"] > y["t0"]).all()
    assert (y["t1"] >= y["tb_t1"].fillna(y["t1"])).all()
    assert (y["t1"] >= y["trade_t1"].fillna(y["t1"])).all()


def test_empty_window_is_a_clear_error(sim_store):
    with pytest.raises(DatasetError, match="no signals between 2024-01-01 and 2024-01-31"):
        MLDatasetBuilder(sim_store).build_features_dataset("2024-01-01", "2024-01-31")
    with pytest.raises(DatasetError, match="before start"):
        MLDatasetBuilder(sim_store).build_features_dataset(END, START)


def test_trades_without_exits_is_a_clear_error(layout):
    from datetime import date

    from mia_pipeline.collection.collector import ingest_once
    from mia_pipeline.sources.paper_trading import simulate
    from mia_pipeline.storage.partitions import PartitionStore

    simulate(layout.streaming_dir, start=date(2025, 6, 23), days=1, seed=7)
    store = PartitionStore(layout)
    ingest_once(layout, store, None)
    assert store.delete("2025-06-23", "trade_exits")
    with pytest.raises(DatasetError, match=r"trade\(s\) but no trade_exits"):
        MLDatasetBuilder(store).build_features_dataset("2025-06-23", "2025-06-23")


def test_unknown_config_key_is_a_clear_error(sim_store):
    with pytest.raises(DatasetError, match="unknown ML config key.*bogus"):
        MLDatasetBuilder(sim_store, {"bogus": 1})
    b = MLDatasetBuilder(sim_store, {"lookback_periods": [5, 10], "tb_horizon": "15min"})
    assert b.lookback_periods == [5, 10]


def test_methods_in_guide_order(sim_store):
    b = MLDatasetBuilder(sim_store)
    snaps = b.load_snapshots(START, START)
    matrix = b.extract_features()
    assert list(matrix[RAW].columns) == RAW and len(matrix) == len(snaps.signals)
    labels = b.create_labels()
    enhanced = b.feature_engineering(matrix)
    assert set(labels.index) <= set(enhanced.index)
