"""Issue 25 (6): a bad Sierra record is quarantined, the rest lands.

Each record is judged on its own (time, order, prices, counts; tick or bar by the file's majority): one
NumTrades = 0xFFFFFFFF no longer turns a file of trades into bars, one DateTime 0 appended to a live file
no longer blocks the records after it, one infinite price no longer stops the bars. A file that shrinks
while it is read is an error message, never SIGBUS. Every case counts rows before and after.
"""

import math
import struct
from datetime import UTC, datetime

import pyarrow.compute as pc
import pytest
from conftest import T0, depth_batch
from sierra_writer import SCID_REC, append_scid, es_session, scid_header, write_depth, write_scid

from mia_pipeline.collection.quarantine import read_rejects
from mia_pipeline.sources.sierra import SierraFileError
from mia_pipeline.sources.sierra import ingest as sierra_ingest
from mia_pipeline.sources.sierra.files import SierraFiles, import_file
from mia_pipeline.sources.sierra.formats import SCID_RECORD, memmap_records, read_header
from mia_pipeline.sources.sierra.tail import SierraTail, growth

DAY = "2025-06-23"


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def patched(recs, i: int, **fields) -> bytes:
    """The records packed, record ``i`` with ``fields`` replaced (raw DateTime via ``sc_time``)."""
    out = []
    for k, r in enumerate(recs):
        packed = bytearray(r.pack())
        if k == i:
            values = list(SCID_REC.unpack(bytes(packed)))
            names = ["sc_time", "open", "high", "low", "close", "num_trades", "total_volume", "bid_volume",
                     "ask_volume"]
            for name, value in fields.items():
                values[names.index(name)] = value
            packed = bytearray(SCID_REC.pack(*values))
        out.append(bytes(packed))
    return b"".join(out)


def rejects(layout, day=DAY):
    table = read_rejects(layout, day)
    return list(zip(table.column("reason").to_pylist(), table.column("offset").to_pylist(), strict=True))


@pytest.mark.parametrize("fields, reason, day", [
    ({"num_trades": 0xFFFFFFFF}, "sierra_record_kind", DAY),
    ({"close": math.inf}, "non_finite_number", DAY),
    ({"high": math.nan}, "non_finite_number", DAY),
    ({"close": -5.0}, "sierra_bad_price", DAY),
    ({"close": 0.0}, "sierra_bad_price", DAY),
    ({"sc_time": 0}, "bad_timestamp", None),
    ({"sc_time": -1}, "bad_timestamp", None),
    ({"sc_time": 2**62}, "bad_timestamp", None),
    ({"open": 123.0}, "sierra_record_kind", DAY),
], ids=["numtrades-max", "inf-close", "nan-high", "negative-close", "zero-close", "time-0", "time-negative",
        "time-far", "open-not-a-flag"])
def test_one_bad_record_in_a_file_of_trades(layout, store, tmp_path, fields, reason, day):
    recs = es_session(T0, 200)
    path = tmp_path / "ES.scid"
    path.write_bytes(scid_header() + patched(recs, 120, **fields))
    import_file(layout, store, path, symbol="ES", now_us=T0 + 3_600_000_000)
    ticks = store.read(DAY, "market_ticks")
    assert ticks.num_rows == 199  # every other record landed as a tick
    assert 120 not in set(store.read(DAY, "raw_events").column("offset").to_pylist())
    bars = store.read(DAY, "market_bars")
    assert bars is not None and bars.num_rows > 0  # the bars land too (an infinite price no longer stops them)
    assert rejects(layout, day or today()) == [(reason, 120)]


def test_a_record_earlier_than_the_one_before_is_quarantined(layout, store, tmp_path):
    recs = es_session(T0, 100)
    path = tmp_path / "ES.scid"
    path.write_bytes(scid_header() + patched(recs, 50, sc_time=recs[0].time_us - 10_000_000 + 2_209_161_600_000_000))
    import_file(layout, store, path, symbol="ES", now_us=T0 + 3_600_000_000)
    assert store.read(DAY, "market_ticks").num_rows == 99
    assert rejects(layout) == [("out_of_order", 50)]


def test_reimporting_a_file_with_a_bad_record_adds_nothing(layout, store, tmp_path):
    recs = es_session(T0, 100)
    path = tmp_path / "ES.scid"
    path.write_bytes(scid_header() + patched(recs, 10, num_trades=0xFFFFFFFF))
    for _ in range(2):
        import_file(layout, store, path, symbol="ES", now_us=T0 + 3_600_000_000)
    assert store.read(DAY, "market_ticks").num_rows == 99 and rejects(layout) == [("sierra_record_kind", 10)]


def test_a_file_of_mostly_damage_is_refused_whole(layout, store, tmp_path, monkeypatch):
    monkeypatch.setattr(sierra_ingest, "MAX_BAD_RECORDS", 5)
    recs = es_session(T0, 50)
    data = scid_header() + b"".join(r.pack() for r in recs[:40]) + struct.pack("<q", 0) * 5 * 10
    path = tmp_path / "ES.scid"
    path.write_bytes(data)  # 10 zeroed records
    with pytest.raises(SierraFileError, match="more than 5 damaged records .* nothing was imported"):
        import_file(layout, store, path, symbol="ES")
    assert not layout.daily_dir.exists() or not any(layout.daily_dir.iterdir())


def test_a_bad_record_in_a_live_file_never_blocks_the_records_after_it(layout, store, tmp_path):
    recs = es_session(T0, 300)
    path = write_scid(tmp_path / "ESU25_FUT_CME.scid", recs[:100])
    files = [SierraFiles("ES", path, [])]
    tail = SierraTail(layout, store, files)
    assert tail.poll(now_us=T0 + 3_600_000_000).errors == {}
    with open(path, "ab") as f:  # a DateTime 0 record appended, then Sierra goes on writing
        f.write(SCID_REC.pack(0, 0.0, 6001.0, 6000.0, 6000.5, 1, 1, 0, 1))
    append_scid(path, recs[100:200])
    done = tail.poll(now_us=T0 + 3_600_000_000)
    assert done.errors == {}
    append_scid(path, recs[200:])
    assert tail.poll(now_us=T0 + 3_600_000_000).errors == {}
    assert store.read(DAY, "market_ticks").num_rows == 300
    assert rejects(layout, today()) == [("bad_timestamp", 100)]
    _, days = growth([path], {})
    assert days == {str(path): [DAY]}


def test_a_bad_depth_record_is_quarantined(layout, store, tmp_path):
    batch = depth_batch(T0)
    batch[3].command = 42
    path = write_depth(tmp_path / "ESU25_FUT_CME.2025-06-23.depth", batch + depth_batch(T0 + 5000))
    import_file(layout, store, path, symbol="ES")
    assert store.read(DAY, "market_depth").num_rows == 2 * len(batch) - 1
    assert rejects(layout) == [("sierra_bad_command", 3)]


def test_a_file_that_shrinks_while_it_is_read_is_an_error_not_sigbus(tmp_path):
    path = write_scid(tmp_path / "ES.scid", es_session(T0, 1000))
    header = read_header(path, "scid")
    with open(path, "r+b") as f:
        f.truncate(56 + 40 * 10)  # Sierra rewrites the file between the header and the records
    with pytest.raises(SierraFileError, match="shrank while it was read"):
        memmap_records(header, SCID_RECORD, 0, 1000)


def _scid(tmp_path, data: bytes):
    path = tmp_path / "ESU25_FUT_CME.scid"
    path.write_bytes(data)
    return path


GOOD = b"".join(r.pack() for r in es_session(T0, 20))


@pytest.mark.parametrize("data, says", [
    (b"", "wrong magic"),
    (b"SCI", "wrong magic"),
    (b"XXXX" + b"\0" * 52 + GOOD, "wrong magic"),
    (scid_header()[:30], "truncated header"),
    (scid_header(header_size=64) + GOOD, "header size 64"),
    (scid_header(record_size=48) + GOOD, "record size 48"),
    (b"SCDD" + b"\0" * 60, "wrong magic"),
    (scid_header() + b"\xff" * 40 * 20000, "more than 10,000 damaged records"),
], ids=["empty", "short-magic", "bad-magic", "short-header", "header-size", "record-size", "depth-magic",
        "all-ones"])
def test_a_damaged_file_is_refused_whole_naming_file_and_offset(layout, store, tmp_path, data, says):
    path = _scid(tmp_path, data)
    with pytest.raises(SierraFileError, match=says) as err:
        import_file(layout, store, path, symbol="ES")
    assert str(path) in str(err.value) and "at byte" in str(err.value)
    assert not layout.daily_dir.exists() or not any(layout.daily_dir.iterdir())


def test_a_sparse_2gb_file_is_refused_in_bounded_memory(layout, store, tmp_path):
    """Issue 25 (8): a 2 GB sparse .scid took 4.5 GB before being refused; records are judged piece by
    piece, so the refusal comes after the first piece, in a few tens of MB."""
    import subprocess
    import sys

    path = tmp_path / "ESU25_FUT_CME.scid"
    with open(path, "wb") as fh:
        fh.write(scid_header() + GOOD)
        fh.truncate(2 * 1024**3)
    code = ("import sys; from pathlib import Path; from mia_pipeline.layout import Layout; "
            "from mia_pipeline.storage import PartitionStore; from mia_pipeline.sources.sierra.files import import_file;"
            "from mia_pipeline.sources.sierra import SierraFileError\n"
            f"lay = Layout(Path({str(layout.root)!r}))\n"
            "try:\n"
            f"    import_file(lay, PartitionStore(lay), Path({str(path)!r}), symbol='ES')\n"
            "except SierraFileError as exc:\n"
            "    print('REFUSED', exc)\n"
            # VmHWM: this process's own peak (ru_maxrss would carry the forking test runner's over exec)
            "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]\n"
            "print('RSS_MB', int(hwm) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300).stdout
    assert "REFUSED" in out and "damaged records" in out, out
    assert int(out.split("RSS_MB")[1]) < 700, out


def test_a_bad_bar_in_a_file_of_bars_is_quarantined_and_the_other_bars_land(layout, store, tmp_path):
    from sierra_writer import ScidRecord

    bars = [ScidRecord(T0 + i * 60_000_000, 6000.0 + i, 6001.0 + i, 5999.0 + i, 6000.5 + i, 12, 40, 20, 20)
            for i in range(60)]
    bars[30] = ScidRecord(bars[30].time_us, 6000.0, 5990.0, 6010.0, 6000.0, 12, 40, 20, 20)  # High < Low
    path = write_scid(tmp_path / "ESU25_FUT_CME.scid", bars)
    import_file(layout, store, path, symbol="ES", now_us=T0 + 7_200_000_000)
    stored = store.read(DAY, "market_bars")
    assert stored.filter(pc.equal(stored.column("timeframe"), "1min")).num_rows == 59
    assert rejects(layout) == [("sierra_bad_bar", 30)]


def test_a_binary_dly_is_one_printable_line_and_imports_nothing(layout, tmp_path):
    """Issue 25 (11): a binary `.dly` was refused with the parser's quote of its bytes (raw binary on the
    terminal); now one line of printable text, exit 2, nothing stored."""
    import random

    from click.testing import CliRunner

    from mia_pipeline.cli.main import cli

    path = tmp_path / "ESU25_FUT_CME.dly"
    path.write_bytes(random.Random(7).randbytes(4096))
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "import", str(path)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    [line] = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert "not a readable Sierra .dly daily file" in line and all(" " <= c <= "~" or c == "…" for c in line)
    assert layout.days_present() == []
