"""The streamed tick path (issue 23) keeps every guarantee of the whole-table path: small pieces force a
day through many windows; ES and NQ of one day land in one commit exactly as one at a time; a day split
over two files, a file still growing, a re-run and a crash in the middle all give each record once."""

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import T0
from hypothesis import given, settings
from hypothesis import strategies as st
from sierra_writer import append_scid, es_session, trade, unix_us, write_scid

from mia_pipeline.collection import typed_day
from mia_pipeline.collection.rebuild import rebuild_day
from mia_pipeline.layout import RAW_EVENTS
from mia_pipeline.schemas import DATASET_KEYS
from mia_pipeline.sources.sierra import ingest
from mia_pipeline.sources.sierra.files import record_sources
from mia_pipeline.sources.sierra.ingest import land_files, land_scid
from mia_pipeline.storage import PartitionStore

DAY = "2025-06-23"
LATER = T0 + 10**12
KNOWN = frozenset({"ES", "NQ"})
KEY = ["source", "symbol", "ts", "seq"]


@pytest.fixture
def small_pieces(monkeypatch, sierra_dir):
    """Pieces of 64 records, and ESU25_FUT_CME.scid rewritten as 600 trades over 3 h 20 min (pieces are cut
    at 15-minute slots): the file crosses ~10 pieces and windows."""
    monkeypatch.setattr(typed_day, "PIECE_ROWS", 64)
    monkeypatch.setattr(ingest, "PIECE_ROWS", 64)
    write_scid(sierra_dir / "ESU25_FUT_CME.scid", es_session(T0, 600, step_us=20_000_000))


def _nq(start_us: int, n: int) -> list:
    return [trade(start_us + 17_000_000 * i + 3, 21000.0 + 0.25 * (i % 9), 1 + i % 4, bid=21000.0, ask=21000.25,
                  buyer=i % 2 == 0) for i in range(n)]


def _rows(store, dataset="market_ticks"):
    t = store.read(DAY, dataset)
    return sorted(zip(*(t.column(c).to_pylist() for c in (*DATASET_KEYS[dataset], "content_hash")), strict=True))


def test_windows_merge_like_a_stable_sort():
    a = pa.table({"ts": pa.array([1, 2, 2, 5, 9], pa.int64()), "src": ["a"] * 5})
    b = pa.table({"ts": pa.array([2, 2, 3, 9, 9, 10], pa.int64()), "src": ["b"] * 6})
    pieces_a = [a.slice(0, 2), a.slice(2, 2), a.slice(4)]
    pieces_b = [b.slice(0, 1), b.slice(1, 3), b.slice(4)]
    out = []
    for parts in typed_day.windows([pieces_a, pieces_b]):
        window = pa.concat_tables([p for p in parts if p is not None])
        # equal ts never straddle two windows
        assert not set(window.column("ts").to_pylist()) & {r[0] for r in out}
        out += sorted(zip(window.column("ts").to_pylist(), window.column("src").to_pylist(), strict=True),
                      key=lambda r: r[0])
    both = pa.concat_tables([a, b])
    want = both.take(pc.sort_indices(both, [("ts", "ascending")]))
    assert out == list(zip(want.column("ts").to_pylist(), want.column("src").to_pylist(), strict=True))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), max_size=25), min_size=1, max_size=4), st.integers(1, 5))
def test_windows_property(sources, cut):
    tables = [pa.table({"ts": pa.array(sorted(s), pa.int64()), "src": [i] * len(s)}) for i, s in enumerate(sources)]
    pieced = [[t.slice(k, cut) for k in range(0, t.num_rows, cut)] for t in tables]
    seen_ts: set[int] = set()
    got = []
    for parts in typed_day.windows(pieced):
        window = [p for p in parts if p is not None and p.num_rows]
        ts = {x for p in window for x in p.column("ts").to_pylist()}
        assert not ts & seen_ts
        seen_ts |= ts
        rows = [(x, p.column("src")[0].as_py()) for p in window for x in p.column("ts").to_pylist()]
        got += sorted(rows, key=lambda r: r[0])  # stable: source order within equal ts
    want = sorted(((x, i) for i, s in enumerate(sources) for x in sorted(s)), key=lambda r: r[0])
    assert got == want


def test_many_pieces_land_as_one_read(layout, store, sierra_dir, small_pieces, tmp_path):
    """The same file landed in 64-record pieces and whole (another root) stores the same rows and bars."""
    from mia_pipeline.layout import Layout

    path = sierra_dir / "ESU25_FUT_CME.scid"
    pieced = land_scid(layout, store, path, "ES", known_symbols=KNOWN, now_us=LATER)
    whole_layout = Layout(tmp_path / "whole")
    whole_store = PartitionStore(whole_layout)
    typed_day.PIECE_ROWS = ingest.PIECE_ROWS = 10**9
    whole = land_scid(whole_layout, whole_store, path, "ES", known_symbols=KNOWN, now_us=LATER)
    assert pieced.report.landed == whole.report.landed and pieced.report.landed["market_ticks"] == 600
    assert _rows(store) == _rows(whole_store)
    assert _rows(store, "market_bars") == _rows(whole_store, "market_bars")
    assert pieced.figures == whole.figures
    ts = store.read(DAY, "market_ticks").column("ts").cast(pa.int64()).to_numpy()
    assert (np.diff(ts) >= 0).all()  # stored in time order
    raw = store.read(DAY, RAW_EVENTS)
    assert raw.num_rows == 600 + store.read(DAY, "market_bars").num_rows
    assert rebuild_day(store, DAY)["market_ticks"] == 600 and _rows(store) == _rows(whole_store)


def test_two_symbols_one_commit_equal_one_at_a_time(layout, store, sierra_dir, small_pieces, tmp_path):
    from mia_pipeline.layout import Layout

    es, nq = sierra_dir / "ESU25_FUT_CME.scid", sierra_dir / "NQU25_FUT_CME.scid"
    write_scid(nq, _nq(T0, 500))
    together = land_files(layout, store, record_sources([es, nq], now_us=LATER), known_symbols=KNOWN)
    assert together[0].report.landed["market_ticks"] == 1100
    apart_layout = Layout(tmp_path / "apart")
    apart = PartitionStore(apart_layout)
    for path in (es, nq):
        land_files(apart_layout, apart, record_sources([path], now_us=LATER), known_symbols=KNOWN)
    assert _rows(store) == _rows(apart) and _rows(store, "market_bars") == _rows(apart, "market_bars")
    ts = store.read(DAY, "market_ticks").column("ts").cast(pa.int64()).to_numpy()
    assert (np.diff(ts) >= 0).all()
    # NQ landed into a day already holding ES: the stored lines first, the new ones appended, once each
    assert store.read(DAY, RAW_EVENTS).num_rows == apart.read(DAY, RAW_EVENTS).num_rows
    again = land_files(layout, store, record_sources([es, nq], now_us=LATER), known_symbols=KNOWN)
    assert not again[0].report.landed and again[0].report.duplicates["market_ticks"] == 1100
    assert not again[0].report.days.get(RAW_EVENTS)  # nothing rewritten


def test_a_day_split_over_two_files_and_a_growing_file_land_each_record_once(layout, store, tmp_path, small_pieces):
    recs = es_session(T0, 400, step_us=20_000_000)
    first, second = tmp_path / "ESU25_FUT_CME.a.scid", tmp_path / "ESU25_FUT_CME.b.scid"
    write_scid(first, recs[:250])
    write_scid(second, recs[250:])
    landed = land_files(layout, store, record_sources([first, second], now_us=LATER), known_symbols=KNOWN)
    assert landed[0].report.landed["market_ticks"] == 400
    # a file Sierra is still writing: what is there now lands; the records appended later land once
    live = tmp_path / "ESU25_FUT_CME.live.scid"
    more = es_session(T0 + 10_000_000_000, 300, step_us=20_000_000)
    write_scid(live, more[:120], partial=b"\x02" * 17)  # a record half written
    step1 = land_scid(layout, store, live, "ES", known_symbols=KNOWN, now_us=LATER)
    assert step1.report.landed["market_ticks"] == 120 and step1.next_record == 120
    live.write_bytes(live.read_bytes()[:-17])
    append_scid(live, more[120:])
    step2 = land_scid(layout, store, live, "ES", from_record=step1.next_record, known_symbols=KNOWN, now_us=LATER)
    assert step2.report.landed["market_ticks"] == 180
    whole = land_scid(layout, store, live, "ES", known_symbols=KNOWN, now_us=LATER)
    assert not whole.report.landed.get("market_ticks") and whole.report.duplicates["market_ticks"] == 300
    assert store.read(DAY, "market_ticks").num_rows == 700


def test_a_crash_in_the_middle_leaves_the_previous_day(layout, store, sierra_dir, small_pieces, monkeypatch):
    es = sierra_dir / "ESU25_FUT_CME.scid"
    nq = sierra_dir / "NQU25_FUT_CME.scid"
    write_scid(nq, _nq(T0, 500))
    land_scid(layout, store, es, "ES", known_symbols=KNOWN, now_us=LATER)
    before = {ds: store.entry(DAY, ds).sha256 for ds in ("market_ticks", "market_bars", RAW_EVENTS)}
    calls = {"n": 0}
    real = ingest.tick_rows

    def dies_at_the_fourth_piece(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise MemoryError("killed mid-day")
        return real(*a, **k)

    monkeypatch.setattr(ingest, "tick_rows", dies_at_the_fourth_piece)
    with pytest.raises(MemoryError):
        land_scid(layout, store, nq, "NQ", known_symbols=KNOWN, now_us=LATER)
    assert {ds: store.entry(DAY, ds).sha256 for ds in before} == before
    assert not list(layout.day_dir(DAY).glob(".*.tmp"))  # no temp file left behind
    assert store.verify(DAY) == []
    monkeypatch.setattr(ingest, "tick_rows", real)
    done = land_scid(layout, store, nq, "NQ", known_symbols=KNOWN, now_us=LATER)
    assert done.report.landed["market_ticks"] == 500 and store.read(DAY, "market_ticks").num_rows == 1100


def test_a_conflict_in_a_later_window_is_quarantined(layout, store, tmp_path, small_pieces):
    recs = es_session(T0, 300, step_us=20_000_000)
    path = tmp_path / "ESU25_FUT_CME.scid"
    write_scid(path, recs)
    land_scid(layout, store, path, "ES", known_symbols=KNOWN, now_us=LATER)
    changed = list(recs)
    changed[250] = trade(recs[250].time_us, 7000.0, 3, bid=6999.75, ask=7000.0, buyer=True)
    other = tmp_path / "ESU25_FUT_CME.fix.scid"
    write_scid(other, changed)
    again = land_scid(layout, store, other, "ES", known_symbols=KNOWN, now_us=LATER)
    assert again.report.quarantined["duplicate_conflict"] == 4  # the trade, and its 1, 5 and 15-min bars
    assert again.report.duplicates["market_ticks"] == 299 and not again.report.landed.get("market_ticks")
    kept = store.read(DAY, "market_ticks")
    assert 7000.0 not in kept.column("last").to_pylist()  # first version kept


def test_an_unsorted_stored_file_falls_back_and_stays_exact(layout, store, sierra_dir, small_pieces):
    es = sierra_dir / "ESU25_FUT_CME.scid"
    land_scid(layout, store, es, "ES", known_symbols=KNOWN, now_us=LATER)
    t = store.read(DAY, "market_ticks")
    store.write(DAY, "market_ticks", t.take(pc.sort_indices(t, [("seq", "descending"), ("ts", "ascending")])))
    nq = sierra_dir / "NQU25_FUT_CME.scid"
    write_scid(nq, _nq(T0, 200))
    landed = land_scid(layout, store, nq, "NQ", known_symbols=KNOWN, now_us=LATER)
    assert landed.report.landed["market_ticks"] == 200
    stored = store.read(DAY, "market_ticks")
    assert stored.num_rows == 800 and stored.group_by(KEY).aggregate([]).num_rows == 800


def test_a_bad_record_late_in_a_multi_day_file_is_quarantined_alone(layout, store, tmp_path):
    from mia_pipeline.collection.quarantine import read_rejects

    day1 = es_session(T0, 100)
    day2 = es_session(unix_us(datetime(2025, 6, 24, 13, 30, tzinfo=UTC)), 100)
    day2[60].open = 1234.0  # a bar in a file of single trades, on the second day
    path = tmp_path / "ESU25_FUT_CME.scid"
    write_scid(path, day1 + day2)
    land_files(layout, store, record_sources([path], now_us=LATER), known_symbols=KNOWN)
    assert store.read(DAY, "market_ticks").num_rows == 100 and store.read("2025-06-24", "market_ticks").num_rows == 99
    bad = read_rejects(layout, "2025-06-24")
    assert bad.column("reason").to_pylist() == ["sierra_record_kind"] and bad.column("offset").to_pylist() == [160]


def _tick_lines(start_ms: int, n: int, *, price: float = 6000.0, symbol: str = "ES") -> bytes:
    lines = []
    for i in range(n):
        ms = start_ms + 37 * (i // 3)  # three ticks per millisecond at times
        stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines.append(f'{{"kind":"market_tick","schema_version":1,"event_id":"ibkr:{symbol}:{ms}:{i % 3}",'
                     f'"source":"ibkr","timestamp":"{stamp}","symbol":"{symbol}","seq":{i % 3},'
                     f'"bid":{price + 0.25 * (i % 7)},"ask":{price + 0.25 * (i % 7) + 0.25}}}\n')
    return "".join(lines).encode()


def test_landing_zone_ticks_merge_streamed_across_batches(layout, store, small_pieces, tmp_path):
    """IBKR ticks (JSON lines of the landing zone) take the same streamed merge: small batches over two
    passes store what one pass stores, a re-delivered line with other content is a conflict."""
    from mia_pipeline.collection.ingest import ingest_landing_zone
    from mia_pipeline.layout import Layout

    start = T0 // 1000
    first, second = _tick_lines(start, 900), _tick_lines(start + 20_000, 900, symbol="NQ", price=21000.0)
    zone = layout.streaming_dir
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "ibkr_a.jsonl").write_bytes(first)
    one = ingest_landing_zone(layout, store, known_symbols=KNOWN, batch_bytes=40_000)  # several batches
    (zone / "ibkr_b.jsonl").write_bytes(second)
    two = ingest_landing_zone(layout, store, known_symbols=KNOWN, batch_bytes=40_000)
    assert one.landed["market_ticks"] == 900 and two.landed["market_ticks"] == 900
    whole_layout = Layout(tmp_path / "whole")
    whole = PartitionStore(whole_layout)
    whole_layout.streaming_dir.mkdir(parents=True)
    (whole_layout.streaming_dir / "ibkr_a.jsonl").write_bytes(first)
    (whole_layout.streaming_dir / "ibkr_b.jsonl").write_bytes(second)
    ingest_landing_zone(whole_layout, whole, known_symbols=KNOWN)
    assert _rows(store) == _rows(whole)
    ts = store.read(DAY, "market_ticks").column("ts").cast(pa.int64()).to_numpy()
    assert (np.diff(ts) >= 0).all()
    assert store.read(DAY, RAW_EVENTS).num_rows == 1800
    # the same key again with another ask: quarantined, first version kept; an exact copy: a duplicate
    changed = first.split(b"\n")[5].replace(b'"ask":', b'"ask":1', 1) + b"\n"
    (zone / "ibkr_c.jsonl").write_bytes(changed + first.split(b"\n")[6] + b"\n")
    three = ingest_landing_zone(layout, store, known_symbols=KNOWN)
    assert three.quarantined["duplicate_conflict"] == 1 and three.duplicates["market_ticks"] == 1
    assert store.read(DAY, "market_ticks").num_rows == 1800
    assert store.read(DAY, RAW_EVENTS).num_rows == 1802  # both lines kept as received
    assert rebuild_day(store, DAY)["market_ticks"] == 1800 and _rows(store) == _rows(whole)


def test_a_record_going_back_in_time_is_quarantined(layout, store, tmp_path):
    from mia_pipeline.collection.quarantine import read_rejects

    recs = es_session(T0, 200, step_us=20_000_000)
    recs[150].time_us = recs[10].time_us  # an edited file: one record out of order
    path = tmp_path / "ESU25_FUT_CME.scid"
    write_scid(path, recs)
    land_files(layout, store, record_sources([path], now_us=LATER), known_symbols=KNOWN)
    assert store.read(DAY, "market_ticks").num_rows == 199
    bad = read_rejects(layout, DAY)
    assert bad.column("reason").to_pylist() == ["out_of_order"] and bad.column("offset").to_pylist() == [150]


def test_one_file_named_twice_lands_once_two_files_of_one_name_are_refused(layout, store, sierra_dir, tmp_path):
    es = sierra_dir / "ESU25_FUT_CME.scid"
    landed = land_files(layout, store, record_sources([es, es, sierra_dir / ".." / "Data" / es.name], now_us=LATER),
                        known_symbols=KNOWN)
    assert landed[0].report.landed["market_ticks"] == 600
    raw = store.read(DAY, RAW_EVENTS, columns=["file", "offset"])
    assert raw.group_by(["file", "offset"]).aggregate([]).num_rows == raw.num_rows
    other = tmp_path / "elsewhere"
    other.mkdir()
    write_scid(other / es.name, es_session(T0, 10))
    with pytest.raises(ValueError, match="have the same name"):
        record_sources([es, other / es.name])
