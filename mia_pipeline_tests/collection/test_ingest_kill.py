"""Exactly once under crashes: SIGKILL ingestion at random points while writers append events."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pytest

from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.layout import DATASETS, RAW_EVENTS
from mia_pipeline_tests.guide_examples import make_event, to_line

ITERATIONS = 20


def events(n: int, rng: random.Random) -> list[tuple[str, str, bytes]]:
    """(file, kind, line) for n events over 3 files and 3 days; ids unique per kind."""
    out = []
    for i in range(n):
        day = 21 + i % 3
        ts = f"2025-06-{day:02d}T{10 + i % 8:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.{i % 1000:03d}Z"
        roll = rng.random()
        if roll < 0.7:
            ev = make_event("market_tick", event_id=f"tk{i}", seq=i, timestamp=ts)
        elif roll < 0.8:
            ev = make_event("trade", event_id=f"tr{i}", trade_id=f"TRADE_{i}", timestamp=ts)
        elif roll < 0.9:
            ev = make_event("signal", event_id=f"sg{i}", signal_id=f"SIG_{i}", timestamp=ts)
        else:
            ev = make_event("performance", event_id=f"pf{i}", metric=f"m{i}", timestamp=ts)
        out.append((f"writer{i % 3}.jsonl", ev["kind"], to_line(ev)))
    return out


def writer(streaming: Path, items, stop_after: threading.Event, rng: random.Random) -> None:
    """Append lines in small batches, each batch split mid-line across two writes (a torn tail)."""
    i = 0
    while i < len(items):
        batch = items[i:i + rng.randint(5, 40)]
        i += len(batch)
        by_file: dict[str, bytes] = {}
        for name, _, line in batch:
            by_file[name] = by_file.get(name, b"") + line
        for name, data in by_file.items():
            cut = rng.randint(1, len(data) - 1)
            with open(streaming / name, "ab") as fh:
                fh.write(data[:cut])
                fh.flush()
                time.sleep(0.002)
                fh.write(data[cut:])
        time.sleep(rng.uniform(0.005, 0.03))
    stop_after.set()


@pytest.mark.slow
def test_sigkilled_ingestion_lands_every_event_exactly_once(layout, store):
    rng = random.Random(99)
    items = events(4000, rng)
    done = threading.Event()
    t = threading.Thread(target=writer, args=(layout.streaming_dir, items, done, random.Random(5)), daemon=True)
    t.start()
    script = Path(__file__).with_name("_kill_ingestor.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    kills = 0
    while kills < ITERATIONS or not done.is_set():
        proc = subprocess.Popen([sys.executable, str(script), str(layout.root)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    t.join()
    ingest_once(layout, store, frozenset({"ES", "NQ", "EURUSD"}))  # the restart after the last crash

    expected = Counter(kind for _, kind, _ in items)
    ids = {ds: [] for ds in DATASETS}
    for ds in DATASETS:
        for day in store.days(ds):
            ids[ds] += store.read(day, ds, columns=["event_id"]).column("event_id").to_pylist()
    assert len(ids["market_ticks"]) == expected["market_tick"] == len(set(ids["market_ticks"]))
    assert len(ids["trades"]) == expected["trade"] == len(set(ids["trades"]))
    assert len(ids["signals"]) == expected["signal"] == len(set(ids["signals"]))
    assert len(ids["performance"]) == expected["performance"] == len(set(ids["performance"]))
    raw = [store.read(d, RAW_EVENTS, columns=["file", "offset"]) for d in store.days(RAW_EVENTS)]
    pairs = {(f, o) for r in raw for f, o in zip(r.column("file").to_pylist(), r.column("offset").to_pylist(), strict=True)}
    assert len(pairs) == sum(r.num_rows for r in raw) == len(items)
    assert layout.quarantine_days() == [], "a torn write was quarantined instead of waited for"
    for day in layout.days_present():
        assert store.verify(day) == []
    assert kills >= ITERATIONS
    assert pc.sum(pc.equal(store.read("2025-06-21", "market_ticks").column("symbol"), "ES")).as_py() > 0
