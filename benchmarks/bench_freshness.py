"""Freshness: how long from an event's append to the landing zone until its row is readable in DuckDB.

A writer appends market ticks at 200 events/s (a line each, flushed, its wall-clock append time
kept); the collector runs as a user runs it: `mia collect start --interval 0.25` (a separate
process that also records every pass in the data root's Dagster instance). A reader polls the
warehouse view ``market_ticks`` (DuckDB over the daily Parquet files) every 20 ms and notes when
each seq first becomes visible. Latency = visible - appended, over >= 2,000 events: p50 and p99.

Baseline, same run: the library's collector loop alone (``run_collector`` in a thread, same
interval, no Dagster records), measured the same way. Goal: p99 <= 2 s for `mia collect start`.
"""

import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mia_pipeline.layout import Layout, init_tree  # noqa: E402
from mia_pipeline.storage import PartitionStore  # noqa: E402
from mia_pipeline_tests.guide_examples import make_event, to_line  # noqa: E402

RATE = 200  # events per second
EVENTS = 2_400
INTERVAL = 0.25
MIA = Path(sys.executable).with_name("mia")


def _writer(layout: Layout, appended: dict[int, float]) -> None:
    path = layout.streaming_dir / "feed.jsonl"
    with open(path, "ab", buffering=0) as fh:
        t0 = time.monotonic()
        for i in range(EVENTS):
            ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            line = to_line(make_event("market_tick", seq=i, event_id=f"fresh-{i}", timestamp=ts))
            fh.write(line)
            appended[i] = time.monotonic()
            time.sleep(max(0.0, t0 + (i + 1) / RATE - time.monotonic()))


def _reader(layout: Layout, visible: dict[int, float], stop: threading.Event) -> None:
    glob = str(layout.daily_dir / "*" / "market_ticks.parquet")
    con = duckdb.connect()
    while not stop.is_set():
        try:  # the view of the warehouse (refresh_views), made once the first file exists
            con.execute(f"CREATE OR REPLACE VIEW market_ticks AS SELECT * FROM read_parquet('{glob}', "
                        "union_by_name = true)")
            seqs = con.execute("SELECT seq FROM market_ticks").fetchnumpy()["seq"]
        except duckdb.Error:  # no file yet, or a file renamed between the glob and the read
            seqs = np.zeros(0, dtype=np.int64)
        now = time.monotonic()
        for s in seqs.tolist():
            visible.setdefault(int(s), now)
        if len(visible) >= EVENTS:
            return
        time.sleep(0.02)


def _measure(start_collector, stop_collector) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        layout = Layout(Path(tmp) / "data")
        init_tree(layout)
        appended: dict[int, float] = {}
        visible: dict[int, float] = {}
        stop = threading.Event()
        handle = start_collector(layout)
        try:
            reader = threading.Thread(target=_reader, args=(layout, visible, stop))
            reader.start()
            _writer(layout, appended)
            reader.join(timeout=60)
        finally:
            stop.set()
            stop_collector(handle)
        missing = [i for i in appended if i not in visible]
        assert not missing, f"{len(missing)} events never became visible"
        return np.array([visible[i] - appended[i] for i in sorted(appended)])


def _mia_collector(layout: Layout):
    """`mia collect start`, once it says it is running (its start-up is not an event's latency)."""
    env = {**os.environ, "MIA_DATA_DIR": str(layout.root)}
    proc = subprocess.Popen([str(MIA), "collect", "start", "--interval", str(INTERVAL)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and b'"running"' not in _read(layout.collector_control_file):
        time.sleep(0.05)
    return proc


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _stop_mia(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def _library_collector(layout: Layout):
    from mia_pipeline.collection.collector import run_collector

    stop = threading.Event()
    thread = threading.Thread(target=run_collector, args=(layout, PartitionStore(layout)),
                              kwargs={"interval": INTERVAL, "stop": stop})
    thread.start()
    return stop, thread


def _stop_library(handle) -> None:
    stop, thread = handle
    stop.set()
    thread.join(timeout=30)


def freshness() -> bool:
    ours = _measure(_mia_collector, _stop_mia)
    base = _measure(_library_collector, _stop_library)
    p50, p99 = np.percentile(ours, [50, 99])
    b50, b99 = np.percentile(base, [50, 99])
    ok = p99 <= 2.0
    print(f"freshness: append -> readable in DuckDB over {len(ours):,} events at {RATE}/s | `mia collect start` "
          f"(with Dagster records) p50 {p50:.2f} s, p99 {p99:.2f} s | baseline library loop alone p50 {b50:.2f} s, "
          f"p99 {b99:.2f} s | goal p99 <= 2 s {'OK' if ok else 'MISSED'}")
    return ok


if __name__ == "__main__":
    sys.exit(0 if freshness() else 1)
