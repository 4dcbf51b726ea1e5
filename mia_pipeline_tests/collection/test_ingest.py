"""Ingestion of the landing zone: typed partitions, dedup and conflicts, quarantine reasons, torn
lines, raw lines per day, offsets committed only after the data is durable, rebuild from raw lines."""

import json
import random

import numpy as np
import pyarrow.compute as pc
import pytest
from conftest import SYMBOLS, append, tick

from mia_pipeline.collection import landing
from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.collection.ingest import ingest_landing_zone
from mia_pipeline.collection.quarantine import read_rejects
from mia_pipeline.collection.rebuild import RebuildError, rebuild_day
from mia_pipeline.schemas import dataset_table_to_events
from mia_pipeline_tests.guide_examples import SIGNAL_EXAMPLE, TRADE_EXAMPLE, make_event, to_line

NOW_MS = 1_750_700_000_000  # 2025-06-23T17:33:20Z


def ingest(layout, store, **kw):
    return ingest_landing_zone(layout, store, known_symbols=SYMBOLS, now_ms=NOW_MS, **kw)


def test_guide_examples_round_trip_through_ingestion_and_export(layout, store):
    append(layout, "sys.jsonl", to_line(TRADE_EXAMPLE) + to_line(SIGNAL_EXAMPLE))
    report = ingest(layout, store)
    assert report.landed == {"trades": 1, "signals": 1}
    [trade] = dataset_table_to_events("trades", store.read("2025-06-23", "trades"))
    [signal] = dataset_table_to_events("signals", store.read("2025-06-23", "signals"))
    assert trade == TRADE_EXAMPLE
    assert signal == SIGNAL_EXAMPLE


def test_partial_last_line_waits_for_its_newline(layout, store):
    line = tick(1)
    append(layout, "a.jsonl", tick(0) + line[:25])
    assert ingest(layout, store).landed == {"market_ticks": 1}
    assert not layout.quarantine_days()  # a write in progress is not bad data
    append(layout, "a.jsonl", line[25:])
    assert ingest(layout, store).landed == {"market_ticks": 1}
    assert store.read("2025-06-23", "market_ticks").num_rows == 2


def test_duplicates_dropped_conflicts_quarantined_first_kept(layout, store):
    append(layout, "a.jsonl", tick(1) + tick(2))
    append(layout, "b.jsonl", tick(1) + tick(2, bid=6000.0, ask=6000.25))  # same id, other content
    report = ingest(layout, store)
    assert report.landed == {"market_ticks": 2}
    assert report.duplicates["market_ticks"] == 1
    assert report.quarantined == {"duplicate_conflict": 1}
    rows = store.read("2025-06-23", "market_ticks")
    assert rows.filter(pc.equal(rows.column("seq"), 2)).column("bid").to_pylist() == [6022.5]
    q = read_rejects(layout, "2025-06-23")
    assert q.column("reason").to_pylist() == ["duplicate_conflict"]
    assert json.loads(q.column("line")[0].as_py())["bid"] == 6000.0  # the original line is kept


def test_late_and_out_of_order_events_land_in_their_own_day(layout, store):
    append(layout, "a.jsonl", tick(1, ts="2025-06-23T10:00:00.000Z") + tick(2, ts="2025-06-22T23:59:59.999Z"))
    ingest(layout, store)
    append(layout, "a.jsonl", tick(3, ts="2025-06-22T08:00:00.000Z"))  # late, for a day already written
    report = ingest(layout, store)
    assert report.days["market_ticks"] == {"2025-06-22"}
    day = store.read("2025-06-22", "market_ticks")
    assert day.column("seq").to_pylist() == [3, 2]  # rebuilt, sorted by time
    assert store.read("2025-06-23", "market_ticks").num_rows == 1


def test_rerun_after_lost_offsets_is_idempotent(layout, store):
    append(layout, "a.jsonl", b"".join(tick(i) for i in range(50)) + b"not json\n")
    ingest(layout, store)
    layout.ingest_state_file.unlink()  # as if the crash came before the offset commit
    report = ingest(layout, store)
    assert report.landed == {} and report.duplicates["market_ticks"] == 50
    assert report.quarantined == {}  # already quarantined: not counted twice
    assert store.read("2025-06-23", "market_ticks").num_rows == 50
    assert store.read("2025-06-23", "raw_events").num_rows == 50
    assert sum(read_rejects(layout, d).num_rows for d in layout.quarantine_days()) == 1


BAD_LINES = {
    "malformed_json": b'{"kind": "market_tick", "bid": \n',
    "unknown_kind": to_line({**make_event("market_tick", event_id="x1"), "kind": "order_book"}),
    "missing_field": to_line(make_event("market_tick", seq=None, event_id="x2")),
    "wrong_type": to_line(make_event("market_tick", bid="6022.5", event_id="x3")),
    "non_finite_number": b'{"kind":"market_tick","schema_version":1,"event_id":"x4","source":"ibkr","timestamp":'
                  b'"2025-06-23T14:30:15.125Z","symbol":"ES","seq":9,"bid":NaN,"ask":6022.75,"last":6022.75,'
                  b'"bid_size":1,"ask_size":1,"last_size":1}\n',
    "invalid_quantity": to_line(make_event("market_tick", bid_size=-3.0, event_id="x5")),
    "invalid_price": to_line(make_event("market_tick", last=-1.0, event_id="x5b")),
    "crossed_quote": to_line(make_event("market_tick", bid=6023.0, ask=6022.0, event_id="x6")),
    "unknown_symbol": to_line(make_event("market_tick", symbol="ZZZ", event_id="x7")),
    "timestamp_no_zone": to_line(make_event("market_tick", timestamp="2025-06-23T14:30:15.125", event_id="x8")),
    "timestamp_in_future": to_line(make_event("market_tick", timestamp="2031-01-01T00:00:00.000Z", event_id="x9")),
    "oversize_line": to_line(make_event("market_tick", event_id="x10", note="x" * 1_100_000)),
    "non_utf8": b'{"kind":"market_tick","event_id":"\xff\xfe"}\n',
}


def test_each_bad_input_is_quarantined_with_a_distinct_counted_reason(layout, store):
    append(layout, "a.jsonl", tick(1) + b"".join(BAD_LINES.values()) + tick(2))
    report = ingest(layout, store)
    assert report.landed == {"market_ticks": 2}
    assert report.quarantined == {reason: 1 for reason in BAD_LINES}  # one distinct reason each, counted
    quarantined = sum(read_rejects(layout, d).num_rows for d in layout.quarantine_days())
    assert quarantined == len(BAD_LINES)


def test_raw_lines_kept_and_rebuild_recreates_the_day(layout, store):
    append(layout, "a.jsonl", b"".join(tick(i) for i in range(20)) + to_line(TRADE_EXAMPLE))
    ingest(layout, store)
    before = store.read("2025-06-23", "market_ticks")
    layout.dataset_file("2025-06-23", "market_ticks").write_bytes(b"damaged")
    counts = rebuild_day(store, "2025-06-23", SYMBOLS)
    assert counts == {"market_ticks": 20, "trades": 1}
    assert store.read("2025-06-23", "market_ticks").equals(before)
    assert store.verify("2025-06-23") == []
    with pytest.raises(RebuildError, match="no raw events stored for 2025-01-01"):
        rebuild_day(store, "2025-01-01")


def test_live_views_written_after_ingestion(layout, store):
    exit_ = make_event("trade_exit")
    other = dict(TRADE_EXAMPLE, trade_id="TRADE_OPEN", event_id="evt-open")
    append(layout, "a.jsonl", to_line(TRADE_EXAMPLE) + to_line(other) + to_line(exit_) + to_line(SIGNAL_EXAMPLE)
           + to_line(make_event("system_status")))
    ingest_once(layout, store, SYMBOLS)
    signals = json.loads(layout.live_view("live_signals.json").read_text())
    positions = json.loads(layout.live_view("open_positions.json").read_text())
    status = json.loads(layout.live_view("system_status.json").read_text())
    assert [s["signal_id"] for s in signals] == [SIGNAL_EXAMPLE["signal_id"]]
    assert [p["trade_id"] for p in positions] == ["TRADE_OPEN"]
    assert status["components"]["ibkr_recorder"]["status"] == "running"
    assert status["last_event_time"].startswith("2025-06-23T15:02:10")


def test_replaced_file_is_read_again_without_duplicates(layout, store):
    append(layout, "a.jsonl", tick(1) + tick(2))
    ingest(layout, store)
    (layout.streaming_dir / "a.jsonl").unlink()
    append(layout, "a.jsonl", tick(2) + tick(1) + tick(3))  # rotated: same name, other content
    report = ingest(layout, store)
    assert report.landed == {"market_ticks": 1} and report.duplicates["market_ticks"] == 2
    assert landing.landing_lag(layout) == {"a.jsonl": 0}


def test_batch_read_puts_every_range_in_place_and_refuses_a_shrunk_file(tmp_path, monkeypatch):
    """The batch buffer is read in bounded ``readinto`` steps: bytes land exactly where they belong;
    a file cut short or replaced between listing and reading raises (nothing is committed)."""
    monkeypatch.setattr(landing, "_SPLIT_READ", 64)  # small files still read in several steps
    rng = random.Random(5)
    pieces, expected = [], b""
    for i in range(5):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        path = tmp_path / f"f{i}.jsonl"
        path.write_bytes(b"head" * i + body + b"tail")
        pieces.append(landing.Pending(path.name, path, 4 * i, 4 * i + len(body), path.stat().st_ino))
        expected += body
    assert bytes(landing.read_pieces(pieces)) == expected
    path = pieces[2].path
    path.write_bytes(path.read_bytes()[: pieces[2].start + 10])
    with pytest.raises(OSError, match="shrank while being read"):
        landing.read_pieces(pieces)
    replacement = path.with_suffix(".new")
    replacement.write_bytes(b"x" * 1000)
    replacement.replace(path)  # same name, another file (another inode)
    with pytest.raises(OSError, match="was replaced since it was listed"):
        landing.read_pieces(pieces)


def test_split_by_day_cuts_at_utc_midnight_and_keeps_row_order():
    import pyarrow as pa

    from mia_pipeline.collection.merge import split_by_day

    stamps = ["2024-02-29T23:59:59.999", "1969-12-31T23:59:59.999", "2024-03-01T00:00:00.000",
              "1970-01-01T00:00:00.000", "2024-02-29T00:00:00.000"]
    ts = pa.array([np.datetime64(s, "ms") for s in stamps], pa.timestamp("ms")).cast(
        pa.timestamp("ms", tz="UTC"))
    table = pa.table({"ts": ts, "row": list(range(5))})
    got = [(day, rows.column("row").to_pylist()) for day, rows in split_by_day(table)]
    assert got == [("1969-12-31", [1]), ("1970-01-01", [3]), ("2024-02-29", [0, 4]), ("2024-03-01", [2])]
    with pytest.raises(ValueError, match="without ts"):
        split_by_day(pa.table({"ts": pa.array([None], pa.timestamp("ms", tz="UTC"))}))


def test_events_of_a_source_turned_off_are_quarantined_naming_the_setting(layout, store):
    """data_collection.sources.battle_navale_signals / performance_data / system_metrics: off gates
    ingestion of signal / performance / system_status events (kept verbatim in quarantine, not landed)."""
    from mia_pipeline.settings import load_settings

    refused = load_settings(env={"MIA_SOURCES": "battle_navale_signals=off,performance_data=off,system_metrics=off",
                                 "MIA_CONFIG": ""}).refused_kinds()
    assert refused == {"signal": "data_collection.sources.battle_navale_signals is off",
                       "performance": "data_collection.sources.performance_data is off",
                       "system_status": "data_collection.sources.system_metrics is off"}
    lines = [to_line(TRADE_EXAMPLE), to_line(SIGNAL_EXAMPLE), to_line(make_event("performance")),
             to_line(make_event("system_status"))]
    append(layout, "sys.jsonl", b"".join(lines))
    report = ingest(layout, store, refused_kinds=refused)
    assert report.landed == {"trades": 1}
    assert report.quarantined == {"source_disabled": 3}
    q = read_rejects(layout, "2025-06-23")
    assert sorted(q.column("detail").to_pylist()) == sorted(refused.values())
    assert sorted(q.column("line").to_pylist()) == sorted(line.rstrip(b"\n") for line in lines[1:])
    assert store.entry("2025-06-23", "signals") is None and store.entry("2025-06-23", "performance") is None
