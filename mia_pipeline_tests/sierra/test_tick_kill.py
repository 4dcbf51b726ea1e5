"""Exactly once under SIGKILL on the streamed tick path: `mia import` of three days of ES and NQ trades
killed at random points, again and again; every day is left whole (the old version or the new one,
`check-integrity` clean), and the import that finally completes stores every record once."""

import os
import random
import signal
import struct
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from mia_pipeline.layout import Layout
from mia_pipeline.storage import PartitionStore

pytestmark = pytest.mark.slow

SC_OFFSET_US = 2_209_161_600_000_000  # SCDateTimeMS of 1970-01-01
DAYS = ("2025-06-23", "2025-06-24", "2025-06-25")
PER_DAY = 60_000
ITERATIONS = 8


def write_scid(path: Path, day_starts_us: list[int], n: int, seed: int, base: float) -> None:
    """``n`` single trades per day (several per millisecond at times), as Sierra writes them."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype([("dt", "<i8"), ("o", "<f4"), ("h", "<f4"), ("l", "<f4"), ("c", "<f4"),
                      ("nt", "<u4"), ("tv", "<u4"), ("bv", "<u4"), ("av", "<u4")])
    parts = []
    for start in day_starts_us:
        rec = np.zeros(n, dtype=dtype)
        rec["dt"] = np.sort(rng.integers(0, 20 * 3600 * 1000, n)) * 1000 + start + SC_OFFSET_US
        price = base + 0.25 * np.cumsum(rng.choice([-1, 0, 1], n))
        buyer = rng.random(n) < 0.5
        size = rng.integers(1, 9, n).astype(np.uint32)
        rec["c"], rec["h"], rec["l"] = price, np.where(buyer, price, price + 0.25), np.where(buyer, price - 0.25, price)
        rec["nt"], rec["tv"] = 1, size
        rec["av"], rec["bv"] = np.where(buyer, size, 0), np.where(buyer, 0, size)
        parts.append(rec)
    header = struct.pack("<4sIIHHI36s", b"SCID", 56, 40, 1, 0, 0, b"\0" * 36)
    path.write_bytes(header + np.concatenate(parts).tobytes())


def test_import_killed_anywhere_lands_each_record_once(tmp_path):
    starts = [int(datetime.fromisoformat(d).replace(tzinfo=UTC).timestamp()) * 1_000_000 for d in DAYS]
    files = [tmp_path / "ESU25_FUT_CME.scid", tmp_path / "NQU25_FUT_CME.scid"]
    write_scid(files[0], starts, PER_DAY, 1, 6000.0)
    write_scid(files[1], starts, PER_DAY, 2, 21000.0)
    root = tmp_path / "data"
    mia = [sys.executable, "-m", "mia_pipeline.cli.main", "--data-dir", str(root)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    assert subprocess.run([*mia, "init"], env=env, capture_output=True).returncode == 0
    rng = random.Random(23)
    store = PartitionStore(Layout(root))
    killed = 0
    for _ in range(ITERATIONS):
        proc = subprocess.Popen([*mia, "import", *map(str, files)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.5, 4.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait()
        for day in DAYS:  # whatever the moment, each day is a committed version
            assert store.verify(day) == [], day
    assert killed >= ITERATIONS // 2  # most runs were cut short
    done = subprocess.run([*mia, "import", *map(str, files)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for day in DAYS:
        ticks = store.read(day, "market_ticks")
        assert ticks.num_rows == 2 * PER_DAY
        assert ticks.group_by(["source", "symbol", "ts", "seq"]).aggregate([]).num_rows == 2 * PER_DAY
        raw = store.read(day, "raw_events", columns=["file", "offset"])
        assert raw.group_by(["file", "offset"]).aggregate([]).num_rows == raw.num_rows
        assert store.verify(day) == []
    check = subprocess.run([*mia, "check-integrity"], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
