"""The live collector: ingest the landing zone every few seconds until stopped.

Its state is ``data/live/collector.json`` (pid, state, started/last run, last report), so
``mia collect status`` and ``mia collect stop`` can find it. SIGTERM/SIGINT stop it after the
current batch (whose offsets are committed only when its data is durable).

One collector per data root: a collector holds an exclusive ``flock`` on
``data/live/.collector.lock`` (``Layout.collector_lock_file``) for its whole life and writes its pid
into it. A second one finds the lock taken and stops with :class:`CollectorRunning` naming that pid;
the kernel releases the lock when the process dies (SIGKILL included), so a crash never leaves a
stale lock. ``stop_collector`` signals only a process that holds the lock and whose command line is
a collector's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from mia_pipeline.collection import landing
from mia_pipeline.collection.ingest import IngestReport, ingest_landing_zone
from mia_pipeline.collection.landing import StateFileError
from mia_pipeline.collection.live import update_live_views
from mia_pipeline.collection.system_sampler import SystemSampler, off_reason
from mia_pipeline.layout import Layout, LayoutError
from mia_pipeline.settings import Settings
from mia_pipeline.storage import PartitionStore, StorageError, atomic_write_json

LOCK_RETRY_S = 1.0  # a probe of the lock (``lock_holder``) holds it for microseconds: retry that long


class CollectorRunning(RuntimeError):
    """Another collector holds the lock of this data root."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(f"a collector is already running on this data root ({who}); "
                         "stop it with `mia collect stop` before starting another")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read_control(layout: Layout) -> dict:
    """collector.json; :class:`StateFileError` when it is not what a collector writes."""
    path = layout.collector_control_file
    try:
        state = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {"state": "never started"}
    except (ValueError, RecursionError) as exc:
        raise StateFileError(path, f"not JSON: {str(exc)[:120]}") from None
    if not isinstance(state, dict) or not isinstance(state.get("state", ""), str):
        raise StateFileError(path, "expected an object with pid and state")
    try:
        int(state.get("pid", 0))
    except (TypeError, ValueError):
        raise StateFileError(path, f"pid {state.get('pid')!r} is not a number") from None
    return state


def collector_state(layout: Layout, strict: bool = False) -> dict:
    """collector.json, with ``state`` corrected to dead when its process is gone. A damaged file
    raises :class:`StateFileError` when ``strict``, else reads as state ``damaged: <how to fix>``."""
    try:
        state = _read_control(layout)
    except StateFileError as exc:
        if strict:
            raise
        return {"state": f"damaged: {exc}"}
    if state.get("state") == "running" and not landing.pid_alive(int(state.get("pid", 0))):
        state["state"] = "dead (was running; the process is gone)"
    return state


def check_state_files(layout: Layout) -> None:
    """Raise :class:`StateFileError` (with its way out) if collector.json or ingest_state.json is damaged."""
    _read_control(layout)
    landing.load_state(layout, strict=True)


def reset_state_files(layout: Layout) -> list[tuple[Path, Path]]:
    """Move damaged state files aside as ``<name>.bad-<timestamp>`` (a fresh start; re-ingesting is
    safe because merges are idempotent). Sound files are kept. Returns the moves made."""
    moved = []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for path, check in ((layout.collector_control_file, lambda: _read_control(layout)),
                        (layout.ingest_state_file, lambda: landing.load_state(layout, strict=True))):
        try:
            check()
        except StateFileError:
            target = layout.set_aside(path, stamp)
            os.replace(path, target)
            moved.append((path, target))
    return moved


# ------------------------------------------------------------------------------------------- lock
def _lock_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def collector_lock(layout: Layout, retry_s: float = LOCK_RETRY_S) -> Iterator[None]:
    """Hold the collector lock of ``layout`` for the ``with`` block (and write our pid into it).
    Raises :class:`CollectorRunning` if another process holds it."""
    path = layout.collector_lock_file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + retry_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CollectorRunning(_lock_pid(fd)) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_holder(layout: Layout) -> int | None:
    """Pid of the collector holding the lock (0 if it cannot be read), or None when nobody holds it."""
    try:
        fd = os.open(layout.collector_lock_file, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _lock_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def is_collector_process(pid: int) -> bool:
    """True when ``pid`` runs ``... collect start ...`` (its /proc command line)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(a == b"collect" and b"start" in args[i + 1:] for i, a in enumerate(args))


# ------------------------------------------------------------------------------------------- loop
def ingest_once(layout: Layout, store: PartitionStore, known_symbols=None, until=None,
                refused_kinds=None) -> IngestReport:
    """One ingestion pass + live views (what the sensor's runs and the collector loop both do).
    ``refused_kinds``: event kinds whose source is off (``Settings.refused_kinds()``), quarantined."""
    report = ingest_landing_zone(layout, store, known_symbols=known_symbols, until=until, refused_kinds=refused_kinds)
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
    reset_state: bool = False,
    on_start: Callable[[list[tuple[Path, Path]]], None] | None = None,
    refused_kinds=None,
    settings: Settings | None = None,
    sampler: SystemSampler | None = None,
) -> int:
    """Ingest until stopped (signal, ``stop`` event, or ``max_passes``). Returns passes made.

    System metrics: ``sampler`` runs for the loop's life (started once the lock is held, stopped with
    the loop); without one, ``settings`` builds it when ``system_sampler.off_reason(settings)`` is None
    and otherwise that reason is recorded in collector.json (``system_metrics.state: "off: <why>"``).
    Neither given: no sampler (``state: "off: not configured"``).

    Raises :class:`CollectorRunning` when another collector holds the data root's lock, and
    :class:`StateFileError` when a state file is damaged (``reset_state`` moves it aside instead).
    ``on_start(moved)`` is called once the lock is held, with the state files moved aside."""
    stop = stop or threading.Event()
    with collector_lock(layout):
        previous = {}
        if threading.current_thread() is threading.main_thread():  # from here on a stop request is heard
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        try:
            moved = reset_state_files(layout) if reset_state else []
            check_state_files(layout)
            if on_start:
                on_start(moved)
            sampler_off = None
            if sampler is None:
                sampler_off = off_reason(settings) if settings is not None else "not configured"
                if sampler_off is None:
                    sampler = SystemSampler.from_settings(settings, layout)
            return _loop(layout, store, known_symbols, interval, max_passes, stop, on_report, refused_kinds,
                         sampler=sampler, sampler_off=sampler_off)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


ONCE_KEYS = ("once_passes", "last_once_at")


def _once_counts(layout: Layout) -> dict:
    try:
        control = _read_control(layout)
    except StateFileError:
        return {}
    return {k: control[k] for k in ONCE_KEYS if k in control}


def note_once_pass(layout: Layout, report: IngestReport) -> None:
    """Count a `mia collect start --once` pass in collector.json (``once_passes``, ``last_once_at``,
    ``last_report``) so `mia collect status` tells it. A running collector owns the file (its loop
    rewrites it): while one holds the lock, nothing is written here."""
    if lock_holder(layout) is not None:
        return
    try:
        control = _read_control(layout)
    except StateFileError:
        return  # `mia collect status` reports the damaged file and its way out
    if control.get("state") == "never started":
        control["state"] = "not running"
    control.update(once_passes=int(control.get("once_passes", 0)) + 1, last_once_at=_now(),
                   last_report=report.as_dict())
    atomic_write_json(layout.collector_control_file, control)


def _sampler_status(sampler: SystemSampler | None, off: str | None) -> dict:
    return sampler.status() if sampler is not None else {"state": f"off: {off}", "samples": 0, "last_sample_at": None}


def _loop(layout, store, known_symbols, interval, max_passes, stop, on_report, refused_kinds=None, *,
          sampler: SystemSampler | None = None, sampler_off: str | None = None) -> int:
    control = {"pid": os.getpid(), "state": "running", "started_at": _now(), "interval_s": interval,
               **_once_counts(layout)}
    if sampler is not None:
        sampler.start()  # its first sample now: the first pass lands it
    control["system_metrics"] = _sampler_status(sampler, sampler_off)
    passes = 0
    try:
        atomic_write_json(layout.collector_control_file, control)
        while not stop.is_set():
            try:
                report = ingest_once(layout, store, known_symbols, refused_kinds=refused_kinds)
            except (StorageError, LayoutError) as exc:  # damaged stored data: said, and the loop goes on
                passes += 1                             # (damaged days wait; the others keep landing)
                control.update(last_run_at=_now(), last_error=str(exc),
                               system_metrics=_sampler_status(sampler, sampler_off))
                atomic_write_json(layout.collector_control_file, control)
                if max_passes is not None and passes >= max_passes:
                    break
                stop.wait(interval)
                continue
            passes += 1
            control.pop("last_error", None)
            control.update(last_run_at=_now(), last_report=report.as_dict(),
                           system_metrics=_sampler_status(sampler, sampler_off))
            atomic_write_json(layout.collector_control_file, control)
            if on_report:
                on_report(report)
            if max_passes is not None and passes >= max_passes:
                break
            stop.wait(interval)
    finally:
        if sampler is not None:
            sampler.stop()
        control.update(state="stopped", stopped_at=_now(), system_metrics=_sampler_status(sampler, sampler_off))
        with contextlib.suppress(OSError):  # a full disk must not hide the error that stopped the loop
            atomic_write_json(layout.collector_control_file, control)
    return passes


class NotACollector(RuntimeError):
    """The pid that collector.json names is not a running collector: it is not signalled."""


def stop_collector(layout: Layout, timeout: float = 15.0) -> str:
    """Ask the running collector to stop (SIGTERM) and wait for it. Returns what happened.

    Only a process holding the collector lock and running ``collect start`` is signalled; otherwise
    :class:`NotACollector` says why (e.g. collector.json left by a crash names a pid now reused)."""
    state = collector_state(layout)
    holder = lock_holder(layout)
    if holder is None:
        if state.get("state") == "running":
            raise NotACollector(
                f"collector.json names pid {state.get('pid')}, but no collector holds the lock of this data root: "
                "that process is not a collector (the file is left from a crash); nothing was signalled")
        return f"no collector running ({state.get('state')})"
    if not holder or not is_collector_process(holder):
        raise NotACollector(f"the collector lock is held by pid {holder or 'unknown'}, which is not a "
                            "`mia collect start` process; nothing was signalled")
    os.kill(holder, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock_holder(layout) != holder:
            return f"collector {holder} stopped"
        time.sleep(0.1)
    return f"collector {holder} did not stop within {timeout:.0f}s (it finishes its current batch first)"
