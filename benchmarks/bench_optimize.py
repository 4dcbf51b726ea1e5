"""What `mia optimize` and `mia archive` do to the queries users run, measured in the same run.

Data: a month of ticks (20 trading days x 200k rows, 5 symbols interleaved in time, as ingestion
writes them) stored as daily partitions by ``PartitionStore.write``.

1. DuckDB, one symbol over the month (``count, avg(price) WHERE symbol = ? AND ts in month``): after
   ``optimize(--compress --index)`` (project) vs the same files as ingested (baseline).
   Goal: at least as fast (ratio >= 1.0x; row groups of the other symbols are skipped).
2. DuckDB, one id (``WHERE trade_id = ?``, Bloom filters + statistics): after vs before. Goal >= 1.0x.
3. Library reader, the month via ``read_window``: archived month file (project) vs daily files
   (baseline). Goal: ratio >= 0.5x (reading a zstd-19 month costs at most 2x the daily files).
Sizes before/after are printed beside.
"""

import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mia_pipeline.layout import Layout  # noqa: E402
from mia_pipeline.lifecycle.archive import archive  # noqa: E402
from mia_pipeline.lifecycle.optimize import optimize  # noqa: E402
from mia_pipeline.storage import PartitionStore  # noqa: E402

DAYS = [f"2025-03-{d:02d}" for d in range(3, 31) if date(2025, 3, d).weekday() < 5][:20]
ROWS_PER_DAY = 200_000
SYMBOLS = np.array(["ES", "NQ", "EURUSD", "GBPUSD", "USDJPY"])


def day_table(rng, day: str) -> pa.Table:
    n = ROWS_PER_DAY
    start = int(np.datetime64(day, "ms").astype(np.int64))
    ts = np.sort(rng.integers(0, 86_400_000, n)) + start
    return pa.table({
        "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
        "source": pa.array(np.full(n, "ibkr")),
        "symbol": pa.array(SYMBOLS[rng.integers(0, len(SYMBOLS), n)]),
        "price": 5000 + np.round(rng.normal(0, 5, n) / 0.25) * 0.25,
        "size": rng.integers(1, 50, n),
        "seq": np.arange(n),
        "trade_id": pa.array([f"T{day}_{i:07d}" for i in range(n)]),
    })


def best_of(fn, repeat=5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def duck(files: list[str], sql: str, params: list) -> float:
    with duckdb.connect() as con:
        return best_of(lambda: con.execute(sql.replace("FILES", "read_parquet(?)"), [files, *params]).fetchall())


def main() -> int:
    rng = np.random.default_rng(13)
    symbol_sql = ("SELECT count(*), avg(price) FROM FILES WHERE symbol = ? AND ts >= '2025-03-01'::TIMESTAMPTZ "
                  "AND ts < '2025-04-01'::TIMESTAMPTZ")
    id_sql = "SELECT * FROM FILES WHERE trade_id = ?"
    wanted_id = f"T{DAYS[7]}_{123_456:07d}"
    with tempfile.TemporaryDirectory() as tmp:
        layout = Layout(Path(tmp) / "data")
        store = PartitionStore(layout)
        for d in DAYS:
            store.write(d, "market_ticks", day_table(rng, d))
        files = [str(p) for p in store.files("market_ticks")]
        size_before = sum(Path(f).stat().st_size for f in files)
        sym_before = duck(files, symbol_sql, ["NQ"])
        id_before = duck(files, id_sql, [wanted_id])
        answer = duckdb.execute(symbol_sql.replace("FILES", "read_parquet(?)"), [files, "NQ"]).fetchall()
        optimize(layout, store, compress=True, index=True, days=DAYS)
        size_after = sum(Path(f).stat().st_size for f in files)
        assert duckdb.execute(symbol_sql.replace("FILES", "read_parquet(?)"), [files, "NQ"]).fetchall() == answer
        sym_after = duck(files, symbol_sql, ["NQ"])
        id_after = duck(files, id_sql, [wanted_id])

        daily_read = best_of(lambda: store.read_window("market_ticks", DAYS[0], DAYS[-1]), 3)
        archive(layout, store, date(2025, 4, 1))
        archived_read = best_of(lambda: store.read_window("market_ticks", DAYS[0], DAYS[-1]), 3)
        month_bytes = sum(p.stat().st_size for p in layout.archive_month_dir("2025-03").glob("*.parquet"))
    ok = True
    for label, project, baseline, goal in (
        ("symbol_month_query", sym_after, sym_before, 1.0),
        ("trade_id_lookup", id_after, id_before, 1.0),
        ("archive_read_month", archived_read, daily_read, 0.5),
    ):
        ratio = baseline / project
        ok &= ratio >= goal
        print(f"{label}: {project * 1000:8.1f} ms | baseline {baseline * 1000:8.1f} ms | ratio {ratio:.2f}x "
              f"(goal >= {goal}x)")
    mb = 1e6
    print(f"sizes: as ingested {size_before / mb:.1f} MB, optimized {size_after / mb:.1f} MB, "
          f"archived month {month_bytes / mb:.1f} MB ({len(DAYS)} days x {ROWS_PER_DAY:,} rows)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
