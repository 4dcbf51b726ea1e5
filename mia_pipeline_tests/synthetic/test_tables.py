"""Columns, types, sizes and the invariant checks (including that each check catches its violation)."""

import numpy as np
import pandas as pd
import pytest
from synth_helpers import session

from mia_pipeline.synthetic import CHECK_NAMES, SCENARIOS, SCHEMAS, TABLES, check_invariants
from mia_pipeline.synthetic.invariants import InvariantViolation, assert_invariants

SEED_COLUMNS = {
    "l1": ["ts", "symbol", "bid", "ask", "last_price", "bid_size", "ask_size", "last_size"],
    "l2": ["ts", "symbol", "levels", "bid_px", "bid_sz", "ask_px", "ask_sz", "mid", "spread"],
    "bars": ["ts", "symbol", "open", "high", "low", "close", "volume", "vwap", "vwap_sd1", "vwap_sd2"],
    "footprint": ["bar_start_ts", "symbol", "price_level", "bid_volume", "ask_volume", "delta"],
    "context": ["ts", "vix", "gamma_flip", "call_wall", "put_wall", "pin_strength", "put_call_ratio"],
    "leadership_features": ["ts", "symbol", "confluence_score", "delta_divergence", "volume_imbalance",
                            "sierra_pattern_strength", "leadership_strength", "volatility_regime",
                            "options_flow_bias", "gamma_proximity"],
    "ground_truth": ["ts", "symbol", "label", "confidence", "side"],
}


def test_exactly_the_seed_columns_and_types():
    data = session("normal", minutes=10)
    assert tuple(data) == TABLES
    for name, cols in SEED_COLUMNS.items():
        assert list(data[name].columns) == cols, name
        assert SCHEMAS[name].names == cols
        assert data[name]["ts" if name != "footprint" else "bar_start_ts"].dtype == np.int64
    l2 = data["l2"]
    row = l2.iloc[0]
    assert len(row["bid_px"]) == row["levels"] == 10
    assert data["l1"]["symbol"].isin(["ES", "NQ"]).all()


def test_rows_per_symbol_follow_the_intervals():
    data = session("normal", minutes=10)
    assert len(data["l1"]) == 2 * 10 * 60 * 5  # 200 ms, two symbols
    assert len(data["l2"]) == 2 * 10 * 60 * 10  # 100 ms
    assert len(data["leadership_features"]) == len(data["ground_truth"]) == 2 * 600
    assert len(data["context"]) == 600


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_passes_every_invariant(scenario):
    data = session(scenario, minutes=20, seed=11)
    results = check_invariants(data)
    assert [r.name for r in results] == list(CHECK_NAMES)
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def _corrupt(data, name, fn):
    out = {k: v.copy() for k, v in data.items()}
    out[name] = fn(out[name].copy())
    return out


def _set(df, col, pos, value):
    if isinstance(value, list):  # a list cell of an Arrow list column: rebuild the column
        cells = df[col].tolist()
        cells[pos] = value
        df[col] = pd.Series(cells, index=df.index, dtype=df[col].dtype)
    else:
        df.loc[df.index[pos], col] = value
    return df


CORRUPTIONS = {
    "ask_above_bid": ("l1", lambda df: _set(df, "ask", 5, df["bid"].iloc[5])),
    "prices_on_tick_grid": ("l1", lambda df: _set(df, "bid", 7, df["bid"].iloc[7] + 0.1)),
    "bars_recomputed_from_l1": ("bars", lambda df: _set(df, "vwap", 3, df["vwap"].iloc[3] + 1.0)),
    "bars_ohlc_consistent": ("bars", lambda df: _set(df, "high", 4, df[["open", "close"]].iloc[4].max() - 1.0)),
    "footprint_sums_to_bars": ("footprint", lambda df: _set(df, "bid_volume", 2, df["bid_volume"].iloc[2] + 1)),
    "l2_best_equals_l1": ("l2", lambda df: _set(df, "bid_sz", 9, [1] * 10)),
    "l2_levels_strictly_ordered": ("l2", lambda df: _set(df, "ask_px", 12, sorted(df["ask_px"].iloc[12], reverse=True))),
    "timestamps_sorted": ("context", lambda df: _set(df, "ts", 10, 0)),
    "labels_consistent_with_side": ("ground_truth", lambda df: _set(df, "side", 1, 1 - df["side"].iloc[1])),
    # 09:35 ET + 7 h 45 min = 17:20 ET, inside the daily halt
    "rows_within_globex_hours": ("leadership_features", lambda df: _set(df, "ts", len(df) - 1, df["ts"].iloc[-1] + 7 * 3_600_000 + 45 * 60_000)),
}


@pytest.mark.parametrize("check", CHECK_NAMES)
def test_each_check_catches_its_violation(check):
    data = session("normal", minutes=5)
    table, corrupt = CORRUPTIONS[check]
    results = {r.name: r for r in check_invariants(_corrupt(data, table, corrupt))}
    assert not results[check].passed and results[check].failing_rows >= 1, results[check]
    with pytest.raises(InvariantViolation, match=check):
        assert_invariants(_corrupt(data, table, corrupt))


def test_checks_accept_frames_read_back_from_parquet(tmp_path):
    from mia_pipeline.synthetic import MIA_IA_DataGenerator

    data = session("news_spike", minutes=10)
    MIA_IA_DataGenerator.export_to_parquet(data, tmp_path)
    back = {name: pd.read_parquet(tmp_path / f"{name}.parquet") for name in TABLES}
    assert all(r.passed for r in check_invariants(back))


@pytest.mark.parametrize("scenario", ["normal", "orderflow_accumulation", "news_spike"])
def test_feature_and_label_ranges(scenario):
    data = session(scenario, minutes=20, seed=11)
    lf = data["leadership_features"]
    assert not lf.isna().any().any()
    for col in ("confluence_score", "sierra_pattern_strength", "gamma_proximity"):
        assert lf[col].between(0, 1).all(), col
    for col in ("delta_divergence", "volume_imbalance", "leadership_strength", "options_flow_bias"):
        assert lf[col].between(-1, 1).all(), col
    assert set(lf["volatility_regime"]) <= {"low", "normal", "high"}
    gt = data["ground_truth"]
    assert gt["confidence"].between(0, 1).all() and set(gt["side"]) <= {-1, 0, 1}
    assert (lf["ts"].to_numpy() == gt["ts"].to_numpy()).all()


def test_absorption_shows_in_the_sierra_pattern_feature():
    lf = session("orderflow_accumulation", minutes=60, seed=7)["leadership_features"]
    normal = session("normal", minutes=60, seed=7)["leadership_features"]
    first_half = lf.iloc[: len(lf) // 2]
    assert first_half["sierra_pattern_strength"].mean() > normal["sierra_pattern_strength"].mean() + 0.1
    assert first_half["volume_imbalance"].mean() > 0.2
