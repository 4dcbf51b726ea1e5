"""Sierra Chart: read a .scid file, and turn a day of ES trades into order-flow bars and a volume profile.

1. ``read_scid`` on a ~2 M-record (~80 MB) single-trade file, warm page cache (best of 5) ->
   throughput in MB/s. Baseline, same run: the obvious pure-Python reader (``struct.unpack`` loop over
   the same bytes to the same Arrow table, on a 200k-record slice, scaled). Goals: >= 500 MB/s and >= 50x the baseline.
2. A day of ES single-trade records (2 M) -> ``scid_ticks`` -> 1/5/15-min order-flow bars + the day's
   volume profile (POC, value area), read included. Goal: <= 1 s (best of 3).

The file is written here with a numpy structured array (its own writer; the test suite has another).
"""

import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mia_pipeline.sources.sierra import (  # noqa: E402
    order_flow_bars,
    read_scid,
    scid_ticks,
    volume_profile,
)
from mia_pipeline.sources.sierra.scid import SCID_SCHEMA  # noqa: E402

N = 2_000_000
SC_OFFSET_US = 2_209_161_600_000_000
DAY_START_US = 1_750_636_800_000_000  # 2025-06-23 00:00 UTC


def write_day(path: Path, n: int = N, day_start_us: int = DAY_START_US, seed: int = 7, base: float = 6000.0) -> None:
    """n single-trade records in [day start, +23 h) UTC, several per millisecond at times."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype([("dt", "<i8"), ("o", "<f4"), ("h", "<f4"), ("l", "<f4"), ("c", "<f4"),
                      ("nt", "<u4"), ("tv", "<u4"), ("bv", "<u4"), ("av", "<u4")])
    rec = np.zeros(n, dtype=dtype)
    # 23 h of trading, several trades per millisecond at times (equal timestamps)
    t = np.sort(rng.integers(0, 23 * 3600 * 1_000_000, n)) // 1000 * 1000 + day_start_us
    price = base + 0.25 * np.cumsum(rng.choice([-1, 0, 0, 1], n))
    buyer = rng.random(n) < 0.5
    size = rng.integers(1, 20, n).astype(np.uint32)
    rec["dt"] = t + SC_OFFSET_US
    rec["c"] = price
    rec["h"] = np.where(buyer, price, price + 0.25)
    rec["l"] = np.where(buyer, price - 0.25, price)
    rec["nt"] = 1
    rec["tv"] = size
    rec["av"] = np.where(buyer, size, 0)
    rec["bv"] = np.where(buyer, 0, size)
    first = rng.random(n) < 0.01
    rec["o"][first] = np.float32(-1.99900095e37)
    rec["o"][np.flatnonzero(first)[:-1] + 1] = np.float32(-1.99900197e37)
    header = struct.pack("<4sIIHHI36s", b"SCID", 56, 40, 1, 0, 0, b"\0" * 36)
    path.write_bytes(header + rec.tobytes())


def baseline_struct(path: Path, limit: int) -> float:
    """Records per second of the usual pure-Python reader, to the same result: read 40 bytes,
    ``struct.unpack``, convert the time, append each field to its column list (what community .scid
    readers do), then the same Arrow table as ``read_scid`` from those lists."""
    rec = struct.Struct("<q4f4I")
    cols = [[] for _ in range(9)]
    t = time.perf_counter()
    with open(path, "rb") as f:
        f.seek(56)
        for _ in range(limit):
            raw = f.read(40)
            if len(raw) < 40:
                break
            values = rec.unpack(raw)
            cols[0].append(values[0] - SC_OFFSET_US)
            for i in range(1, 9):
                cols[i].append(values[i])
    table = pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(cols, SCID_SCHEMA, strict=True)],
                                 schema=SCID_SCHEMA)
    return table.num_rows / (time.perf_counter() - t)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ESU25_FUT_CME.scid"
        write_day(path)
        size_mb = path.stat().st_size / 1e6
        read_scid(path)  # warm the page cache
        read_s = best(lambda: read_scid(path), 5)
        mb_s = size_mb / read_s
        base_rps = baseline_struct(path, 200_000)
        ratio = (N / read_s) / base_rps
        print(f"read_scid: {N:,} records ({size_mb:.0f} MB) in {read_s * 1000:.0f} ms = {mb_s:,.0f} MB/s; "
              f"struct.unpack loop baseline {base_rps * 40 / 1e6:,.1f} MB/s -> {ratio:,.0f}x "
              "(goals >= 500 MB/s, >= 50x)")

        def order_flow():
            ticks = scid_ticks(path)
            bars = [order_flow_bars(ticks, m) for m in (1, 5, 15)]
            vp = volume_profile(ticks)
            return bars, vp

        (bars, vp) = order_flow()
        flow_s = best(order_flow, 3)
        print(f"order flow: {N:,} ES trades -> {', '.join(str(b.num_rows) for b in bars)} bars (1/5/15 min) + "
              f"volume profile ({vp.levels.num_rows} levels, POC {vp.poc}, VA {vp.value_area_low}-"
              f"{vp.value_area_high}) in {flow_s * 1000:.0f} ms (goal <= 1000 ms)")
    ok = mb_s >= 500 and ratio >= 50 and flow_s <= 1.0
    print("goals met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
