"""Sierra readers read back exactly what the suite's own writer wrote (every record kind, the Open-flag
sentinels, bid/ask in High/Low, equal timestamps, a trailing partial record, windows, checkpoints), and
refuse bad files with an error naming the file and the byte offset."""

import struct
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sierra_writer import (
    FIRST_SUB,
    LAST_SUB,
    DepthRecord,
    ScidRecord,
    append_scid,
    depth_header,
    es_session,
    f32,
    scid_header,
    unix_us,
    write_depth,
    write_scid,
)

from mia_pipeline.sources.sierra import (
    SierraFileError,
    read_depth,
    read_scid,
    scid_record_count,
    scid_ticks,
    tail_scid,
)
from mia_pipeline.sources.sierra.ticks import FIRST, INSIDE, LAST, SINGLE

T0 = unix_us(datetime(2025, 6, 23, 13, 30, tzinfo=UTC))


def _us(table):
    return table.column("ts").cast("int64").to_pylist()


def test_every_scid_field_reads_back_bit_exact_and_the_partial_record_is_ignored(tmp_path):
    recs = es_session(T0, 300) + [
        ScidRecord(T0 + 400_000_000, 6001.3, 6002.7, 5999.1, 6000.9, 17, 250, 120, 130),  # a bar record
        ScidRecord(T0 + 400_000_000, 1e-3, 3.4e38, 1.17549435e-38, 7.1, 2**32 - 1, 2**32 - 1, 0, 2**31),
    ]
    path = write_scid(tmp_path / "ESU25_FUT_CME.scid", recs, partial=b"\x07" * 39)
    table = read_scid(path)
    assert table.num_rows == len(recs) == scid_record_count(path)
    assert _us(table) == [r.time_us for r in recs]
    for col, attr in (("open", "open"), ("high", "high"), ("low", "low"), ("close", "close")):
        assert table.column(col).to_pylist() == [f32(getattr(r, attr)) for r in recs]
    for col in ("num_trades", "total_volume", "bid_volume", "ask_volume"):
        assert table.column(col).to_pylist() == [getattr(r, col) for r in recs]
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"


def test_equal_timestamps_are_all_kept_in_file_order(tmp_path):
    recs = [ScidRecord(T0, 0.0, 1.0 + i, 1.0, 1.0 + i, 1, 1, 0, 1) for i in range(50)]
    table = read_scid(write_scid(tmp_path / "same.scid", recs))
    assert _us(table) == [T0] * 50 and table.column("close").to_pylist() == [1.0 + i for i in range(50)]


def test_time_window_is_half_open_and_found_by_binary_search(tmp_path):
    recs = es_session(T0, 400)
    path = write_scid(tmp_path / "es.scid", recs)
    start = datetime.fromtimestamp(recs[100].time_us / 1e6, UTC)
    end = start + timedelta(seconds=20)
    got = read_scid(path, start, end)
    want = [r.time_us for r in recs if unix_us(start) <= r.time_us < unix_us(end)]
    assert _us(got) == want and want
    assert read_scid(path, start=np.datetime64(recs[-1].time_us + 1, "us")).num_rows == 0
    assert _us(read_scid(path, end="2025-06-23T13:30:01Z")) == [r.time_us for r in recs if r.time_us < T0 + 1_000_000]
    with pytest.raises(ValueError, match="no zone"):
        read_scid(path, start=datetime(2025, 6, 23))


def test_tail_resumes_from_a_record_count_checkpoint(tmp_path):
    recs = es_session(T0, 120)
    path = write_scid(tmp_path / "es.scid", recs[:70], partial=b"")
    first, cp = tail_scid(path, 0)
    assert first.num_rows == cp == 70
    with open(path, "ab") as f:  # Sierra appends 50 records and is halfway through the next one
        for r in recs[70:]:
            f.write(r.pack())
        f.write(recs[0].pack()[:13])
    more, cp2 = tail_scid(path, cp)
    assert cp2 == 120 and _us(more) == [r.time_us for r in recs[70:]]
    nothing, cp3 = tail_scid(path, cp2)
    assert nothing.num_rows == 0 and cp3 == 120
    with pytest.raises(SierraFileError, match="fewer than the checkpoint"):
        tail_scid(path, 500)


def test_single_trades_become_trades_with_quote_side_and_sub_trade_flags(tmp_path):
    recs = es_session(T0, 40)
    recs[20].open, recs[23].open = FIRST_SUB, LAST_SUB  # a second unbundled trade 20..23
    recs[30].high = recs[30].low = 0.0                   # no quote known
    ticks = scid_ticks(write_scid(tmp_path / "es.scid", recs, partial=b"\0" * 5))
    assert ticks.num_rows == 40
    assert ticks.column("price").to_pylist() == [f32(r.close) for r in recs]
    assert ticks.column("size").to_pylist() == [r.total_volume for r in recs]
    asks = [f32(r.high) if r.high > 0 else None for r in recs]
    bids = [f32(r.low) if r.low > 0 else None for r in recs]
    assert ticks.column("ask").to_pylist() == asks and ticks.column("bid").to_pylist() == bids
    assert ticks.column("side").to_pylist() == [1 if r.ask_volume else -1 for r in recs]
    sub = ticks.column("sub_trade").to_pylist()
    assert sub[10:14] == [FIRST, INSIDE, INSIDE, LAST] and sub[20:24] == [FIRST, INSIDE, INSIDE, LAST]
    assert [s for i, s in enumerate(sub) if not (10 <= i < 14 or 20 <= i < 24)] == [SINGLE] * 32


def test_scid_ticks_refuses_a_bar_file_naming_the_record(tmp_path):
    recs = es_session(T0, 5) + [ScidRecord(T0 + 9_000_000, 6000.0, 6001.0, 5999.0, 6000.5, 12, 40, 20, 20)]
    with pytest.raises(SierraFileError, match=r"at byte 256: record 5 is a bar"):
        scid_ticks(write_scid(tmp_path / "bars.scid", recs))


def test_depth_records_read_back_with_commands_and_end_of_batch(tmp_path):
    recs = [DepthRecord(T0, 1, 0, 0, 0.0, 0)]
    recs += [DepthRecord(T0 + i, 2 + i % 6, 1 if i % 4 == 3 else 0, i, 6000.0 + 0.25 * i, 10 * i) for i in range(1, 25)]
    recs.append(DepthRecord(T0 + 30, 0, 0, 0, 0.0, 0))
    path = write_depth(tmp_path / "ES.2025-06-23.depth", recs, partial=b"\x01" * 23)
    table = read_depth(path)
    assert table.num_rows == len(recs) and _us(table) == [r.time_us for r in recs]
    assert table.column("command").to_pylist() == [r.command for r in recs]
    assert table.column("quantity").to_pylist() == [r.quantity for r in recs]
    assert table.column("num_orders").to_pylist() == [r.num_orders for r in recs]
    assert table.column("end_of_batch").to_pylist() == [bool(r.flags & 1) for r in recs]
    assert table.column("price").to_pylist() == [f32(r.price) if r.command >= 2 else None for r in recs]
    actions = {1: "clear", 2: "add", 3: "add", 4: "modify", 5: "modify", 6: "delete", 7: "delete", 0: "none"}
    assert table.column("action").to_pylist() == [actions[r.command] for r in recs]
    sides = {2: "bid", 4: "bid", 6: "bid", 3: "ask", 5: "ask", 7: "ask"}
    assert table.column("side").to_pylist() == [sides.get(r.command) for r in recs]
    assert read_depth(path, from_record=20).num_rows == len(recs) - 20


def _bad_scid(tmp_path, data: bytes):
    path = tmp_path / "bad.scid"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data, match", [
    (b"SCDD" + bytes(52), r"bad\.scid: at byte 0: wrong magic b'SCDD'"),
    (b"", r"at byte 0: wrong magic b''"),
    (scid_header()[:30], r"at byte 30: truncated header: 30 of 56 bytes"),
    (scid_header(header_size=64), r"at byte 4: header size 64, expected 56"),
    (scid_header(record_size=32), r"at byte 8: record size 32, expected 40"),
])
def test_bad_scid_headers_are_refused_naming_file_and_offset(tmp_path, data, match):
    path = _bad_scid(tmp_path, data)
    with pytest.raises(SierraFileError, match=match) as err:
        read_scid(path)
    assert err.value.path == path


def test_old_double_days_timestamps_are_refused_with_their_offset(tmp_path):
    recs = es_session(T0, 3)
    old = struct.pack("<d4f4I", 45831.5625, 0.0, 6000.0, 5999.75, 6000.0, 1, 1, 0, 1)  # 2025-06-23 as days
    path = _bad_scid(tmp_path, scid_header() + b"".join(r.pack() for r in recs) + old)
    with pytest.raises(SierraFileError, match=r"at byte 176: record 3: DateTime \d+ is outside 1970\.\.2100 "
                                              r"\(it reads as the double 45831\.6: the old days-since-1899"):
        read_scid(path)
    assert read_scid(path, end=datetime(2030, 1, 1, tzinfo=UTC), start=None, to_record=3).num_rows == 3


def test_bad_depth_files_are_refused(tmp_path):
    path = tmp_path / "x.depth"
    path.write_bytes(depth_header(record_size=20))
    with pytest.raises(SierraFileError, match=r"x\.depth: at byte 8: record size 20, expected 24"):
        read_depth(path)
    write_depth(path, [DepthRecord(T0, 2, 0, 1, 1.0, 1), DepthRecord(T0, 9, 0, 1, 1.0, 1)])
    with pytest.raises(SierraFileError, match=r"at byte 96: record 1: command 9 is not a depth command"):
        read_depth(path)
    path.write_bytes(b"SCID" + bytes(60))
    with pytest.raises(SierraFileError, match="wrong magic b'SCID', expected b'SCDD'"):
        read_depth(path)


def test_a_file_appended_while_open_is_read_to_its_last_whole_record(tmp_path):
    recs = es_session(T0, 10)
    path = write_scid(tmp_path / "es.scid", recs[:4], partial=recs[4].pack()[:20])
    assert read_scid(path).num_rows == 4
    with open(path, "r+b") as f:  # Sierra finishes record 4 and writes the rest
        f.seek(56 + 4 * 40)
        f.write(recs[4].pack())
    append_scid(path, recs[5:])
    assert _us(read_scid(path)) == [r.time_us for r in recs]
