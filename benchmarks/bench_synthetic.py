"""Benchmark: one 24-hour ES+NQ synthetic session, all seven tables, checked and written to Parquet.

    python benchmarks/bench_synthetic.py [--seed K] [--out DIR] [--baseline-seconds S]

Goal: <= 10 s wall time and <= 4 GB peak RSS on the 2-core reference machine (exit 1 if missed).
The timed path is ``generate_session_to_dir`` (generate, run the invariant checks, write the seven
Parquet files + meta.json atomically with fsync). For comparison the same run measures a per-tick
Python baseline in the style of the seed generator (a loop that builds one dict per L1 tick and per
L2 snapshot, then DataFrames and Parquet) on a short sample, and extrapolates it linearly to the
24-hour row counts.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mia_pipeline.synthetic import generate_session_to_dir
from mia_pipeline.synthetic.schedule import ET

GOAL_SECONDS = 10.0
GOAL_RSS_GB = 4.0
SEED_TICKS_PER_S = 1_000  # "Génération rapide : ~1000 ticks/sec" in the seed's documentation
START = datetime(2025, 8, 19, 18, 0, tzinfo=ET)  # Tuesday 18:00 ET: a full Globex day (23 h open)


def seed_style_baseline(seconds: int, out_dir: Path, seed: int = 0) -> tuple[float, int]:
    """Per-tick Python generation of L1 (200 ms), 10-level L2 (100 ms) and 1-s bars for ES and NQ.

    Returns (elapsed seconds, rows written). Deliberately the seed's shape: Python loop, one dict per
    row, lists for book levels, pandas at the end.
    """
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    l1, l2, bars = [], [], []
    price = {"ES": 5000.0, "NQ": 18000.0}
    start_ms = int(START.timestamp() * 1000)
    last = {}
    for step in range(seconds * 10):  # 100 ms clock
        ts = start_ms + step * 100
        for sym in ("ES", "NQ"):
            if step % 2 == 0:
                price[sym] += float(rng.normal(0, 0.05 if sym == "ES" else 0.3))
                bid = round(price[sym] / 0.25) * 0.25
                ask = bid + 0.25
                size = int(max(0, rng.poisson(3)))
                last_price = ask if rng.random() < 0.5 else bid
                row = {"ts": ts, "symbol": sym, "bid": bid, "ask": ask, "last_price": last_price,
                       "bid_size": int(rng.integers(100, 400)), "ask_size": int(rng.integers(100, 400)),
                       "last_size": size}
                l1.append(row)
                last[sym] = row
                bar = bars[-1] if bars and bars[-1]["symbol"] == sym and bars[-1]["ts"] == ts // 1000 * 1000 else None
                if bar is None:
                    bars.append({"ts": ts // 1000 * 1000, "symbol": sym, "open": last_price, "high": last_price,
                                 "low": last_price, "close": last_price, "volume": size})
                else:
                    bar.update(high=max(bar["high"], last_price), low=min(bar["low"], last_price),
                               close=last_price, volume=bar["volume"] + size)
            q = last[sym]
            l2.append({"ts": ts, "symbol": sym, "levels": 10,
                       "bid_px": [q["bid"] - 0.25 * k for k in range(10)],
                       "bid_sz": [int(rng.integers(50, 500)) for _ in range(10)],
                       "ask_px": [q["ask"] + 0.25 * k for k in range(10)],
                       "ask_sz": [int(rng.integers(50, 500)) for _ in range(10)],
                       "mid": (q["bid"] + q["ask"]) / 2, "spread": q["ask"] - q["bid"]})
    for name, rows in (("l1", l1), ("l2", l2), ("bars", bars)):
        pd.DataFrame(rows).to_parquet(out_dir / f"{name}.parquet", compression="zstd")
    return time.perf_counter() - t0, len(l1) + len(l2) + len(bars)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="Keep the session here (default: a temp dir).")
    parser.add_argument("--baseline-seconds", type=int, default=60, help="Sample length of the per-tick baseline.")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench_synthetic_"))
    try:
        base_s, base_rows = seed_style_baseline(args.baseline_seconds, work)
        target = args.out or work / "session"
        t0 = time.perf_counter()
        summary = generate_session_to_dir(target, start=START, minutes=24 * 60, scenario="normal", seed=args.seed)
        elapsed = time.perf_counter() - t0
        rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # ru_maxrss is KiB on Linux
        size_mb = sum(p.stat().st_size for p in Path(target).iterdir()) / 1e6
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the baseline's files (and the session unless --out)

    rows = summary["rows"]
    total = sum(rows.values())
    comparable = rows["l1"] + rows["l2"] + rows["bars"]  # what the baseline produces
    baseline_24h = base_s / base_rows * comparable
    print(f"session: 24 h window from {START.isoformat()} (23 h of Globex trading), ES+NQ, seed {args.seed}")
    print("rows: " + ", ".join(f"{k}={v:,}" for k, v in rows.items()) + f" (total {total:,}; {size_mb:.0f} MB Parquet)")
    print(f"generate + check + write: {elapsed:.2f} s, {total / elapsed:,.0f} rows/s, peak RSS {rss_gb:.2f} GB")
    print(f"per-tick Python baseline: {base_s:.2f} s for {base_rows:,} rows ({args.baseline_seconds} s of L1/L2/bars), "
          f"{base_rows / base_s:,.0f} rows/s -> extrapolated {baseline_24h:,.0f} s for the same "
          f"{comparable:,} L1/L2/bar rows")
    seed_doc = comparable / SEED_TICKS_PER_S
    print(f"seed generator's documented speed: ~{SEED_TICKS_PER_S:,} ticks/s -> ~{seed_doc:,.0f} s for the same rows")
    ok = elapsed <= GOAL_SECONDS and rss_gb <= GOAL_RSS_GB
    print(f"synthetic_24h: {elapsed:.1f} s (goal ≤ {GOAL_SECONDS:.0f} s), peak {rss_gb:.1f} GB (goal ≤ {GOAL_RSS_GB:.0f} GB), "
          f"baseline {baseline_24h:,.0f} s, ratio {baseline_24h / elapsed:,.0f}x" + ("" if ok else "  GOAL MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
