"""The live collector: ingest the landing zone every few seconds until stopped.

Its state is ``data/live/collector.json`` (pid, state, started/last run, last report), so
``mia collect status`` and ``mia collect stop`` can find it. SIGTERM/SIGINT stop it after the
current batch (whose offsets are committed only when its data is durable).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from mia_pipeline.collection import landing
from mia_pipeline.collection.ingest import IngestReport, ingest_landing_zone
from mia_pipeline.collection.live import update_live_views
from mia_pipeline.layout import Layout
from mia_pipeline.storage import PartitionStore, atomic_write_json


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def collector_state(layout: Layout) -> dict:
    try:
        state = json.loads(layout.collector_control_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {"state": "never started"}
    if state.get("state") == "running" and not landing.pid_alive(int(state.get("pid", 0))):
        state["state"] = "dead (was running; the process is gone)"
    return state


def ingest_once(layout: Layout, store: PartitionStore, known_symbols=None, until=None) -> IngestReport:
    """One ingestion pass + live views (what the sensor's runs and the collector loop both do)."""
    report = ingest_landing_zone(layout, store, known_symbols=known_symbols, until=until)
    report.live_views = update_live_views(layout, store, report)
    return report


def run_collector(
    layout: Layout,
    store: PartitionStore,
    *,
    known_symbols=None,
    interval: float = 2.0,
    max_passes: int | None = None,
    stop: threading.Event | None = None,
    on_report: Callable[[IngestReport], None] | None = None,
) -> int:
    """Ingest until stopped (signal, ``stop`` event, or ``max_passes``). Returns passes made."""
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    control = {"pid": os.getpid(), "state": "running", "started_at": _now(), "interval_s": interval}
    atomic_write_json(layout.collector_control_file, control)
    passes = 0
    try:
        while not stop.is_set():
            report = ingest_once(layout, store, known_symbols)
            passes += 1
            control.update(last_run_at=_now(), last_report=report.as_dict())
            atomic_write_json(layout.collector_control_file, control)
            if on_report:
                on_report(report)
            if max_passes is not None and passes >= max_passes:
                break
            stop.wait(interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        control.update(state="stopped", stopped_at=_now())
        atomic_write_json(layout.collector_control_file, control)
    return passes


def stop_collector(layout: Layout, timeout: float = 15.0) -> str:
    """Ask a running collector to stop (SIGTERM) and wait for it. Returns what happened."""
    state = collector_state(layout)
    if state.get("state") != "running":
        return f"no collector running ({state.get('state')})"
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not landing.pid_alive(pid) or collector_state(layout).get("state") == "stopped":
            return f"collector {pid} stopped"
        time.sleep(0.1)
    return f"collector {pid} did not stop within {timeout:.0f}s (it finishes its current batch first)"
