"""Paths of the data tree: built in one place, from validated dates and ids only."""

from datetime import date

import pytest

from mia_pipeline.layout import Layout, LayoutError, check_id, init_tree, parse_day, parse_month


@pytest.mark.parametrize(
    "bad",
    ["2025-13-01", "../../etc", "2025-06-23/..", "2025-02-30", "2025-6-23", "20250623", "", " 2025-06-23",
     "2025-06-23\n", "2025-06-23/../../x"],
)
def test_bad_days_never_become_paths(tmp_path, bad):
    with pytest.raises(LayoutError, match="invalid date"):
        parse_day(bad)
    with pytest.raises(LayoutError):
        Layout(tmp_path).day_dir(bad)


def test_good_day_paths_stay_under_root(tmp_path):
    lay = Layout(tmp_path)
    assert parse_day("2025-06-23") == date(2025, 6, 23)
    p = lay.dataset_file("2025-06-23", "trades")
    assert p == tmp_path / "snapshots" / "daily" / "2025-06-23" / "trades.parquet"
    assert lay.backtest_session_dir("2025-08-21", "gamma_pin") == tmp_path / "backtest" / "2025-08-21" / "gamma_pin"


@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "a..b", "", "x" * 200, "é"])
def test_bad_ids_rejected(bad):
    with pytest.raises(LayoutError, match="invalid"):
        check_id(bad)


def test_unknown_dataset_and_month(tmp_path):
    lay = Layout(tmp_path)
    with pytest.raises(LayoutError, match="unknown dataset"):
        lay.dataset_file("2025-06-23", "../trades")
    with pytest.raises(LayoutError, match="month must be"):
        parse_month("2025-13")
    assert lay.archive_month_dir("2025-01").name == "2025-01"


def test_init_tree_is_idempotent_and_complete(tmp_path):
    lay = Layout(tmp_path / "data")
    first = init_tree(lay)
    assert first and all(p.is_dir() for p in lay.tree())
    for rel in ["live/streaming", "live/current_session", "snapshots/daily", "snapshots/archive/compressed",
                "snapshots/quarantine", "backtest", "processed/ml_ready", "backups/hourly", "backups/daily",
                "backups/weekly", "reports", ".dagster"]:
        assert (lay.root / rel).is_dir(), rel
    assert init_tree(lay) == []
