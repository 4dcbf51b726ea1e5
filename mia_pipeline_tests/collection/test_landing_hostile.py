"""Hostile entries in the landing zone are skipped with a warning, never followed, opened or read.

Protects: a symlink to a file outside the data root (its lines must never reach quarantine), a FIFO
(opening one blocks the collector forever), a directory named like a landing file, and a file name
that is not valid UTF-8 (used to raise UnicodeEncodeError on every pass) — through the library
(``ingest_landing_zone``) and through ``mia collect status``; the good files beside them are
ingested. Also: quarantine files are created 0600 and atomic writes honour ``mode``; a UTF-8 BOM at
the start of a file is dropped the same way by the landing zone and by ``mia import``.
"""

import json
import logging
import os
import signal
import stat

import pytest
from click.testing import CliRunner
from conftest import append, tick

from mia_pipeline.cli.main import cli
from mia_pipeline.collection import landing
from mia_pipeline.collection.ingest import ingest_landing_zone
from mia_pipeline.collection.quarantine import read_rejects
from mia_pipeline.storage.atomic import atomic_write_bytes, atomic_write_json

DAY = "2025-06-23"


@pytest.fixture
def alarm():
    """Fail (instead of hanging the suite) if something opens the FIFO."""
    def boom(*_):
        raise TimeoutError("blocked: something opened the FIFO")

    previous = signal.signal(signal.SIGALRM, boom)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def hostile(layout, tmp_path):
    """good.jsonl (2 ticks) beside a symlink to an outside file, a FIFO, a directory and a non-UTF-8 name."""
    append(layout, "good.jsonl", tick(1) + tick(2))
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" + tick(99))
    outside.chmod(0o600)
    d = layout.streaming_dir
    os.symlink(outside, d / "link.jsonl")
    os.mkfifo(d / "pipe.jsonl")
    (d / "x.jsonl").mkdir()
    (d / "x.jsonl" / "inner.jsonl").write_bytes(tick(98))
    fd = os.open(os.fsencode(d) + b"/bad\xff.jsonl", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, tick(97))
    os.close(fd)
    return layout


EXPECTED_SKIPS = {
    "bad\\xff.jsonl": "file name is not valid UTF-8",
    "link.jsonl": "a symbolic link (never followed)",
    "pipe.jsonl": "a FIFO (named pipe; never opened)",
    "x.jsonl": "a directory",
}


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_ingestion_reads_only_regular_files_and_warns(hostile, store, alarm):
    landing._warned.clear()
    handler = Collect()
    landing.log.addHandler(handler)
    try:
        report = ingest_landing_zone(hostile, store)
    finally:
        landing.log.removeHandler(handler)
    assert report.files == 1 and report.lines == 2
    assert dict(report.landed) == {"market_ticks": 2} and not report.quarantined
    assert store.read(DAY, "market_ticks").num_rows == 2
    assert hostile.quarantine_days() == []  # nothing of the outside file was read
    assert set(landing.load_state(hostile)["files"]) == {"good.jsonl"}
    warned = " ".join(handler.messages)
    for name, reason in EXPECTED_SKIPS.items():
        assert f"skipping {name}: {reason}" in warned
    assert {(s.name, s.reason) for s in landing.skipped_files(hostile)} == set(EXPECTED_SKIPS.items())
    assert ingest_landing_zone(hostile, store).lines == 0  # a second pass: still nothing else


def test_collect_status_and_start_skip_them_too(hostile, alarm):
    base = ["--data-dir", str(hostile.root), "collect"]
    res = CliRunner().invoke(cli, [*base, "status", "--json"])
    assert res.exit_code == 0, res.output
    st = json.loads(res.output)
    assert st["landing_files"] == 1 and st["lag"]["pending_lines"] == 2 and set(st["lag"]["files"]) == {"good.jsonl"}
    assert {(s["name"], s["reason"]) for s in st["skipped_files"]} == set(EXPECTED_SKIPS.items())
    res = CliRunner().invoke(cli, [*base, "start", "--once"])
    assert res.exit_code == 0, res.output
    assert "ingested 2 line(s) from 1 file(s)" in res.output and "quarantined: none" in res.output
    res = CliRunner().invoke(cli, [*base, "status"])
    assert res.exit_code == 0, res.output
    assert "skipped       : link.jsonl: a symbolic link (never followed)" in res.output
    assert "skipped       : bad\\xff.jsonl: file name is not valid UTF-8" in res.output
    assert "quarantine    : 0 line(s)" in res.output


def test_a_file_swapped_for_a_symlink_after_listing_is_not_read(layout, tmp_path):
    append(layout, "a.jsonl", tick(1))
    (p,) = landing.pending(layout)
    outside = tmp_path / "o.jsonl"
    outside.write_bytes(tick(2))
    (layout.streaming_dir / "a.jsonl").unlink()
    os.symlink(outside, layout.streaming_dir / "a.jsonl")
    with pytest.raises(OSError):
        landing.read_pieces([p])


def test_quarantine_files_are_created_0600(layout, store):
    os.umask(0o022)
    append(layout, "a.jsonl", tick(1) + b"garbage\n")
    report = ingest_landing_zone(layout, store)
    assert sum(report.quarantined.values()) == 1
    (day,) = layout.quarantine_days()
    assert stat.S_IMODE(layout.quarantine_file(day).stat().st_mode) == 0o600
    assert read_rejects(layout, day).num_rows == 1


@pytest.mark.parametrize("mode", [0o600, 0o640, None])
def test_atomic_write_mode(tmp_path, mode):
    os.umask(0o022)
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"x", mode=mode)
    assert stat.S_IMODE(target.stat().st_mode) == (0o644 if mode is None else mode)
    atomic_write_json(target, {"a": 1}, mode=mode)  # a rewrite gets the mode too
    assert stat.S_IMODE(target.stat().st_mode) == (0o644 if mode is None else mode)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_bom_is_dropped_alike_by_landing_zone_and_import(layout, store, tmp_path):
    bom = b"\xef\xbb\xbf"
    append(layout, "bom.jsonl", bom + tick(1) + tick(2))
    report = ingest_landing_zone(layout, store)
    assert dict(report.landed) == {"market_ticks": 2} and not report.quarantined
    src = tmp_path / "imported.jsonl"
    src.write_bytes(bom + tick(3) + tick(4))
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "import", str(src)])
    assert res.exit_code == 0, res.output
    assert "market_ticks 2" in res.output and "quarantined: none" in res.output
    assert store.read(DAY, "market_ticks").num_rows == 4
    arr = tmp_path / "trades.json"  # a JSON array with a BOM, too
    arr.write_bytes(bom + b"[]")
    assert CliRunner().invoke(cli, ["--data-dir", str(layout.root), "import", "--no-ingest", str(arr)]).exit_code == 0


def test_raw_line_files_are_created_0600(layout, store):
    os.umask(0o022)
    append(layout, "a.jsonl", tick(1))
    ingest_landing_zone(layout, store)
    assert layout.dataset_file("2025-06-23", "raw_events").stat().st_mode & 0o777 == 0o600
    assert layout.dataset_file("2025-06-23", "market_ticks").stat().st_mode & 0o777 == 0o644  # datasets: shared


def test_a_line_longer_than_a_batch_is_quarantined_from_a_prefix_never_read_whole(layout, store, monkeypatch):
    """A hostile writer's multi-gigabyte line must not get the collector killed for lack of memory
    on every restart: it is quarantined from its first 64 KiB and its offset moves on."""
    from mia_pipeline.collection import landing as landing_mod
    from mia_pipeline.collection.quarantine import read_rejects

    huge = b'{"kind":"market_tick","timestamp":"2025-06-23T10:00:00.000Z","junk":"' + b"a" * 300_000 + b'"}\n'
    append(layout, "a.jsonl", tick(1) + huge + tick(2))
    reads = []
    original = landing_mod.read_pieces
    monkeypatch.setattr(landing_mod, "read_pieces", lambda ranges: reads.append(sum(p.size for p in ranges))
                        or original(ranges))
    report = ingest_landing_zone(layout, store, batch_bytes=100_000)
    assert store.read("2025-06-23", "market_ticks").num_rows == 2
    assert report.quarantined == {"oversize_line": 1}
    assert max(reads) < 200_000  # the 300 KB line was never read whole
    (qday,) = layout.quarantine_days()
    reject = read_rejects(layout, qday).to_pylist()[0]
    assert reject["reason"] == "oversize_line" and len(reject["line"]) == landing_mod.OVERSIZE_PREFIX
    assert "300,0" in reject["detail"]
    assert ingest_landing_zone(layout, store, batch_bytes=100_000).lines == 0  # committed: nothing left
