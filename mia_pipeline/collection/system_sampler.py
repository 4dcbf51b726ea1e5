"""The system-metrics sampler (guide §1.1 ``sources.system_metrics``): host and collector figures as
``performance`` events in the landing zone.

Every sample (one per ``monitoring.system_metrics_interval_s``, the first at start) appends one
``performance`` event per metric to ``data/live/streaming/system_metrics_<YYYY-MM-DD>.jsonl`` (UTC
day of the sample); the collector lands them in the day's ``performance`` dataset like any event.

=============================  =====  =========  ==================================================
metric                         unit   component  what
=============================  =====  =========  ==================================================
host.cpu_pct                   %      host       busy share of all CPUs since the previous sample
                                                 (since boot for the first)
host.memory_pct                %      host       memory in use (psutil ``virtual_memory().percent``)
host.memory_available_mb       MB     host       memory available to new processes
host.disk_free_mb.data         MB     host       free space on the data root's volume
host.disk_free_pct.data        %      host       the same as a share of the volume
host.disk_free_mb.backup       MB     host       ``backup.target``'s volume, when set and on another
host.disk_free_pct.backup      %      host       device than the data root
collector.cpu_pct              %      collector  this process, % of one CPU (above 100 with several
                                                 busy threads, like ``top``); since the previous
                                                 sample (since the process started for the first)
collector.rss_mb               MB     collector  resident memory
collector.threads              count  collector  threads
collector.open_files           count  collector  regular files open
collector.uptime_s             s      collector  seconds since the process started
=============================  =====  =========  ==================================================

Disk events also carry the volume's ``path`` (kept in the row's ``extra``). ``event_id`` is
``system_metrics:<metric>:<epoch ms>``: a sample read twice dedupes on it and on the dataset key
(source, metric, ts, tags).

The sampler never crashes or slows the collector: each figure is read on its own and a psutil or OS
error costs only that figure (counted in ``errors``); a failed write (full disk) drops that sample's
lines (counted in ``write_errors``) and sampling carries on. Reads are cheap: CPU shares are deltas
of cumulative CPU times, never a blocking ``interval``. Lines go out in one ``write`` on an
``O_APPEND`` descriptor, each ending in a newline; if a previous write was cut short (disk full
mid-line) a newline is written first, so the fragment is one line for quarantine, not a corrupt
event. Only the collector holding the data root's lock runs a sampler, so it is the files' only writer.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import psutil

from mia_pipeline.layout import Layout
from mia_pipeline.settings import Settings

SOURCE = "mia.system_metrics"
EVENT_ID_PREFIX = "system_metrics:"   # every sample event id starts with it (quality metrics leave them out)
FILE_PREFIX = "system_metrics_"
JOIN_TIMEOUT_S = 5.0
MB = 1024 * 1024

log = logging.getLogger(__name__)


def off_reason(settings: Settings) -> str | None:
    """Why the sampler does not run with these settings (one line naming the key); None when it runs."""
    if why := settings.off_reason("system_metrics"):
        return why
    if not settings.sources.performance_data:
        return ("data_collection.sources.performance_data is false: its `performance` events would be "
                "quarantined at ingestion; turn it on to sample system metrics")
    return None


def day_file(out_dir: Path, ts_ms: int) -> Path:
    day = datetime.fromtimestamp(ts_ms / 1000, UTC).date().isoformat()
    return Path(out_dir) / f"{FILE_PREFIX}{day}.jsonl"


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def _cpu_total_idle(times) -> tuple[float, float]:
    """(total, idle) CPU seconds; guest time is already counted in user time on Linux."""
    fields = times._asdict()
    total = sum(v for k, v in fields.items() if k not in ("guest", "guest_nice"))
    return total, fields.get("idle", 0.0) + fields.get("iowait", 0.0)


class SystemSampler:
    """Samples host and process figures into ``out_dir`` (the landing zone).

    ``data_root``: the volume whose free space is ``*.data``; ``backup_target``: sampled as
    ``*.backup`` when it is on another device than ``data_root``. ``clock``: epoch ms (tests).
    :meth:`start` takes the first sample at once, then one every ``interval_s`` on a daemon thread
    until :meth:`stop`. :meth:`status` is what collector.json shows."""

    def __init__(self, out_dir: Path, data_root: Path, *, interval_s: float = 60.0,
                 backup_target: Path | None = None, pid: int | None = None,
                 clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self.out_dir = Path(out_dir)
        self.data_root = Path(data_root)
        self.backup_target = Path(backup_target) if backup_target is not None else None
        self.interval_s = interval_s
        self.clock = clock
        self.samples = 0
        self.errors = 0
        self.write_errors = 0
        self.last_sample_at: str | None = None
        self.last_error: str | None = None
        self._pid = pid or os.getpid()
        self._process: psutil.Process | None = None
        self._host_cpu: tuple[float, float] | None = None
        self._proc_cpu: tuple[float, float] | None = None  # (cpu seconds, monotonic seconds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = "not started"

    @classmethod
    def from_settings(cls, settings: Settings, layout: Layout) -> SystemSampler:
        return cls(layout.streaming_dir, layout.root, interval_s=settings.monitoring.system_metrics_interval_s,
                   backup_target=settings.backup.local_target)

    # ------------------------------------------------------------------------------------- reading
    def _failed(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{what}: {type(exc).__name__}: {str(exc)[:200]}"
        if self.errors == 1 or self.errors % 100 == 0:  # a failing figure is not logged every minute
            log.warning("system metrics: %s (%d error(s) so far)", self.last_error, self.errors)

    def _read(self, what: str, fn: Callable[[], Iterable[tuple]]) -> list[tuple]:
        try:
            return list(fn())
        except (psutil.Error, OSError, ValueError, AttributeError, TypeError) as exc:
            self._failed(what, exc)
            return []

    def _host_cpu_pct(self):
        total, idle = _cpu_total_idle(psutil.cpu_times())
        prev, self._host_cpu = self._host_cpu, (total, idle)
        d_total, d_idle = (total - prev[0], idle - prev[1]) if prev else (total, idle)
        if d_total > 0:
            yield "host.cpu_pct", min(100.0, max(0.0, 100.0 * (1 - d_idle / d_total))), "%"

    def _host_memory(self):
        vm = psutil.virtual_memory()
        yield "host.memory_pct", float(vm.percent), "%"
        yield "host.memory_available_mb", vm.available / MB, "MB"

    def _disk(self, name: str, path: Path):
        du = psutil.disk_usage(str(path))
        size = du.used + du.free  # what an unprivileged user can use, as psutil's percent
        yield f"host.disk_free_mb.{name}", du.free / MB, "MB", {"path": str(path)}
        if size > 0:
            yield f"host.disk_free_pct.{name}", 100.0 * du.free / size, "%", {"path": str(path)}

    def _backup_disk(self):
        target = self.backup_target
        if target is not None and os.stat(target).st_dev != os.stat(self.data_root).st_dev:
            yield from self._disk("backup", target)

    def _collector(self):
        if self._process is None:
            self._process = psutil.Process(self._pid)
        p = self._process
        with p.oneshot():
            times = p.cpu_times()
            cpu_s, now = times.user + times.system, time.monotonic()
            created = p.create_time()
            prev, self._proc_cpu = self._proc_cpu, (cpu_s, now)
            if prev is None:  # first sample: the average since the process started
                elapsed, used = max(time.time() - created, 1e-3), cpu_s
            else:
                elapsed, used = now - prev[1], cpu_s - prev[0]
            if elapsed > 0:
                yield "collector.cpu_pct", max(0.0, 100.0 * used / elapsed), "%"
            yield "collector.rss_mb", p.memory_info().rss / MB, "MB"
            yield "collector.threads", float(p.num_threads()), "count"
            yield "collector.uptime_s", max(0.0, time.time() - created), "s"
        yield "collector.open_files", float(len(p.open_files())), "count"

    def read(self) -> list[tuple[str, float, str, dict]]:
        """One reading: (metric, value, unit, extra fields) per figure that could be read."""
        figures = (self._read("host cpu", self._host_cpu_pct) + self._read("host memory", self._host_memory)
                   + self._read(f"disk {self.data_root}", lambda: self._disk("data", self.data_root))
                   + self._read(f"disk {self.backup_target}", self._backup_disk)
                   + self._read("collector process", self._collector))
        return [(f[0], f[1], f[2], f[3] if len(f) > 3 else {}) for f in figures]

    # ------------------------------------------------------------------------------------- writing
    def events(self, ts_ms: int, figures: list[tuple[str, float, str, dict]]) -> list[dict]:
        stamp = _iso(ts_ms)
        return [{"kind": "performance", "schema_version": 1, "event_id": f"{EVENT_ID_PREFIX}{metric}:{ts_ms}",
                 "source": SOURCE, "timestamp": stamp, "metric": metric, "value": round(float(value), 3),
                 "unit": unit, "tags": {"component": metric.split(".", 1)[0]}, **extra}
                for metric, value, unit, extra in figures]

    def _append(self, path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a write cut short (disk full): its fragment stays one bad line
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def sample(self) -> int:
        """Take one sample and append its events; returns lines written (0 when the write failed).
        Never raises for a psutil or OS error."""
        ts_ms = self.clock()
        lines = [json.dumps(e, separators=(",", ":"), allow_nan=False).encode() + b"\n"
                 for e in self.events(ts_ms, [f for f in self.read() if f[1] == f[1] and abs(f[1]) != float("inf")])]
        self.samples += 1
        self.last_sample_at = _iso(ts_ms)
        if not lines:
            return 0
        path = day_file(self.out_dir, ts_ms)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._append(path, b"".join(lines))
        except OSError as exc:
            self.write_errors += 1
            self._failed(f"write {path.name}", exc)
            return 0
        return len(lines)

    # ------------------------------------------------------------------------------------- running
    def start(self) -> None:
        """First sample now (so the collector's first pass lands it), then a daemon thread."""
        self._stop.clear()
        self._state = "on"
        self._safe_sample()
        self._thread = threading.Thread(target=self._run, name="mia-system-metrics", daemon=True)
        self._thread.start()

    def _safe_sample(self) -> None:
        try:
            self.sample()
        except Exception as exc:  # noqa: BLE001 - a bug here must not take the collector down
            self._failed("sample", exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._safe_sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
            self._thread = None
        self._state = "stopped"

    def status(self) -> dict:
        return {"state": self._state, "interval_s": self.interval_s, "samples": self.samples,
                "last_sample_at": self.last_sample_at, "errors": self.errors, "write_errors": self.write_errors,
                "last_error": self.last_error}
