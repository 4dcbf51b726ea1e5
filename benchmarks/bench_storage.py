"""Partition write/read throughput vs plain ``DataFrame.to_parquet`` / ``pandas.read_parquet``.

Project: ``PartitionStore.write`` (temp file, fsync, rename, sha256, manifest) from an Arrow table,
and ``read_window`` over the same days. Baseline: pandas to_parquet/read_parquet of the same rows
in the same run (no fsync, no manifest). Figures are MB/s of in-memory Arrow data and rows/s.
Goal: the safety of atomic writes costs at most 2x the plain baseline (ratio >= 0.5).
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mia_pipeline.layout import Layout  # noqa: E402
from mia_pipeline.storage import PartitionStore  # noqa: E402

DAYS = 10
ROWS_PER_DAY = 300_000


def day_table(rng, day_index: int) -> pa.Table:
    n = ROWS_PER_DAY
    ts = np.sort(rng.integers(0, 86_400_000, n)) + 1_750_636_800_000 + day_index * 86_400_000
    return pa.table({
        "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
        "symbol": pa.array(rng.choice(["ES", "NQ", "EURUSD"], n)).dictionary_encode(),
        "price": 5000 + np.round(rng.normal(0, 5, n) / 0.25) * 0.25,
        "size": rng.integers(1, 50, n),
        "bid": 4999.75 + np.zeros(n),
        "ask": 5000.0 + np.zeros(n),
        "trade_id": pa.array([f"T{day_index:03d}_{i:07d}" for i in range(n)]),
    })


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    rng = np.random.default_rng(7)
    tables = [day_table(rng, i) for i in range(DAYS)]
    frames = [t.to_pandas() for t in tables]
    nbytes = sum(t.nbytes for t in tables)
    rows = sum(t.num_rows for t in tables)
    with tempfile.TemporaryDirectory() as tmp:
        store = PartitionStore(Layout(Path(tmp) / "data"))
        days = [f"2025-06-{10 + i:02d}" for i in range(DAYS)]
        plain = Path(tmp) / "plain"
        plain.mkdir()

        def project_write():
            for d, t in zip(days, tables, strict=True):
                store.write(d, "market_ticks", t)

        def baseline_write():
            for d, f in zip(days, frames, strict=True):
                f.to_parquet(plain / f"{d}.parquet", compression="zstd")

        def project_read():
            store.read_window("market_ticks", days[0], days[-1])

        def baseline_read():
            pd.concat([pd.read_parquet(plain / f"{d}.parquet") for d in days])

        w_p, w_b = best_of(project_write), best_of(baseline_write)
        r_p, r_b = best_of(project_read), best_of(baseline_read)
    mb = nbytes / 1e6
    ok = True
    for label, p, b in (("write", w_p, w_b), ("read", r_p, r_b)):
        ratio = b / p
        ok &= ratio >= 0.5
        print(f"partition_{label}: {mb / p:8.1f} MB/s {rows / p:12,.0f} rows/s | "
              f"baseline pandas {mb / b:8.1f} MB/s {rows / b:12,.0f} rows/s | ratio {ratio:.2f}x (goal >= 0.5x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
