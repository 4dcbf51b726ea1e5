"""Parquet export, atomic session directories, byte-identical reproducibility and OfflineFeed replay."""

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from synth_helpers import US_OPEN, session

from mia_pipeline.synthetic import (
    CHECK_NAMES,
    TABLES,
    InvariantViolation,
    MIA_IA_DataGenerator,
    OfflineFeed,
    generate_session_to_dir,
)
from mia_pipeline.synthetic import session_dir as session_dir_module


def _write(path, seed=5, scenario="normal", start=US_OPEN, minutes=5, **kw):
    return generate_session_to_dir(path, start=start, minutes=minutes, scenario=scenario, seed=seed, **kw)


def test_export_to_parquet_round_trips(tmp_path):
    data = session("confluence_breakout", minutes=10)
    paths = MIA_IA_DataGenerator.export_to_parquet(data, tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == sorted(f"{t}.parquet" for t in TABLES)
    back = pd.read_parquet(paths["l1"])
    pd.testing.assert_frame_equal(back, data["l1"], check_dtype=False)
    assert pd.read_parquet(paths["l2"])["bid_px"].iloc[0].tolist() == data["l2"]["bid_px"].iloc[0]


def test_session_dir_writes_tables_meta_and_summary(tmp_path):
    summary = _write(tmp_path / "s", scenario="gamma_pin")
    files = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert files == sorted([f"{t}.parquet" for t in TABLES] + ["meta.json"])
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["scenario"] == "gamma_pin" and meta["seed"] == 5 and meta["config"]["minutes"] == 5
    assert meta["rows"] == summary["rows"] and meta["rows"]["l1"] == 2 * 5 * 60 * 5
    assert set(meta["sha256"]) == set(TABLES) and {"numpy", "pandas", "pyarrow"} <= set(meta["versions"])
    assert [c["name"] for c in summary["checks"]] == list(CHECK_NAMES) and all(c["passed"] for c in summary["checks"])
    assert summary["duration_s"] > 0 and summary["path"] == str(tmp_path / "s")


def test_same_seed_gives_byte_identical_files_and_other_seeds_differ(tmp_path):
    a, b, c = (_write(tmp_path / name, seed=seed) for name, seed in (("a", 5), ("b", 5), ("c", 6)))
    for table in TABLES:
        assert (tmp_path / "a" / f"{table}.parquet").read_bytes() == (tmp_path / "b" / f"{table}.parquet").read_bytes()
    assert (tmp_path / "a" / "meta.json").read_bytes() == (tmp_path / "b" / "meta.json").read_bytes()
    assert a["files"] == b["files"]
    assert all(a["files"][t] != c["files"][t] for t in ("l1", "l2", "bars", "context"))


def test_rewrite_replaces_the_session_and_a_failed_write_keeps_the_old(tmp_path, monkeypatch):
    target = tmp_path / "day" / "normal"
    first = _write(target, seed=1)
    second = _write(target, seed=2)
    assert second["files"] != first["files"]
    assert json.loads((target / "meta.json").read_text())["seed"] == 2

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(session_dir_module, "write_table_file", boom)
    with pytest.raises(OSError, match="disk full"):
        _write(target, seed=3)
    assert json.loads((target / "meta.json").read_text())["seed"] == 2  # old session intact
    assert [p.name for p in target.parent.iterdir()] == ["normal"]  # no temporary directory left


def test_invariant_failure_writes_nothing(tmp_path, monkeypatch):
    from mia_pipeline.synthetic.invariants import InvariantResult

    bad = [InvariantResult("ask_above_bid", False, "1 L1 rows with ask <= bid", 1)]

    def failing(*args, **kwargs):
        raise InvariantViolation(bad)

    monkeypatch.setattr(session_dir_module, "assert_invariants", failing)
    with pytest.raises(InvariantViolation, match="ask_above_bid"):
        _write(tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.fixture
def backtest(tmp_path):
    root = tmp_path / "backtest"
    for d in range(2):
        start = US_OPEN + timedelta(days=d)
        _write(root / start.date().isoformat() / "normal", seed=10 + d, start=start, minutes=3)
    _write(root / US_OPEN.date().isoformat() / "trend_up", seed=20, minutes=3, scenario="trend_up")
    return root


def test_offline_feed_replays_one_time_ordered_stream(backtest):
    feed = OfflineFeed(backtest, ["ES", "NQ"], "2025-08-21", "2025-08-22", scenario="normal")
    assert len(feed.sessions) == 2
    events = list(feed)
    assert len(events) == len(feed) == sum(len(feed.table(t)) for t in feed.tables)
    ts = np.array([e.ts for e in events])
    assert np.all(np.diff(ts) >= 0)
    assert {e.table for e in events} == set(TABLES)
    first_bar = next(e for e in events if e.table == "bars")
    assert first_bar.ts == first_bar.row["ts"] + 1000  # a bar is released when it closes
    l1 = feed.table("l1")
    assert l1["ts"].is_monotonic_increasing and set(l1["symbol"]) == {"ES", "NQ"}
    assert pd.Timestamp(l1["ts"].iloc[-1], unit="ms").date().isoformat() == "2025-08-22"


def test_offline_feed_filters_symbols_and_dates(backtest):
    feed = OfflineFeed(backtest, ["NQ"], "2025-08-22", "2025-08-22", scenario="normal")
    assert len(feed.sessions) == 1
    assert set(feed["l1"]["symbol"]) == {"NQ"} and set(feed["bars"]["symbol"]) == {"NQ"}
    assert len(feed["context"]) > 0  # market-wide rows are kept
    days = pd.to_datetime(feed["l1"]["ts"], unit="ms").dt.date.astype(str)
    assert set(days) == {"2025-08-22"}
    only = list(feed.events(tables=["l1"]))
    assert {e.symbol for e in only} == {"NQ"} and len(only) == len(feed["l1"])


def test_offline_feed_refuses_overlapping_sessions(backtest):
    with pytest.raises(ValueError, match="overlap"):
        OfflineFeed(backtest, ["ES"], "2025-08-21", "2025-08-21")
    assert len(OfflineFeed(backtest, ["ES"], "2025-08-21", "2025-08-21", scenario="trend_up").sessions) == 1


def test_generate_session_to_dir_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match="valid: normal"):
        _write(tmp_path / "x", scenario="sideways")
    with pytest.raises(ValueError, match="timezone-aware"):
        _write(tmp_path / "x", start=datetime(2025, 8, 21, 13, 30))
    with pytest.raises(ValueError, match="strength"):
        _write(tmp_path / "x", strength=0.5)
    assert not (tmp_path / "x").exists()


def test_streamed_order_book_file_equals_a_one_shot_write(tmp_path):
    """Regression guard: generate_session_to_dir streams L2 row group by row group; the bytes must
    equal writing the whole table at once (export_to_parquet), or reproducibility breaks."""
    from mia_pipeline.synthetic import GenConfig
    from mia_pipeline.synthetic.parquet import ROW_GROUP_ROWS

    summary = _write(tmp_path / "streamed", seed=8, minutes=240, scenario="news_spike")
    assert summary["rows"]["l2"] > ROW_GROUP_ROWS  # at least two streamed chunks
    data = MIA_IA_DataGenerator(seed=8).generate_realistic_session(GenConfig(start=US_OPEN, minutes=240), "news_spike")
    paths = MIA_IA_DataGenerator.export_to_parquet(data, tmp_path / "oneshot")
    for table in TABLES:
        assert paths[table].read_bytes() == (tmp_path / "streamed" / f"{table}.parquet").read_bytes(), table
