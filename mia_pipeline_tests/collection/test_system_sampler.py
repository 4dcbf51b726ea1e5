"""The system-metrics sampler (``data_collection.sources.system_metrics``): host and collector figures
as ``performance`` events through the landing zone.

Protects: a sample is valid contract events (zero rejects) with the documented metric names, units
and component tags and plausible values; a collector run with the toggle on lands host.* and
collector.* rows in the day's ``performance`` partition with nothing quarantined; with the toggle off,
or with ``performance_data`` off (its events would be quarantined), no sampler runs and the reason is
recorded in collector.json and printed by ``mia collect start``; psutil raising, a write failing (full
disk) or a write cut mid-line never stops the sampler or the collector.
"""

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import psutil
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.collection import system_sampler
from mia_pipeline.collection.collector import collector_state, lock_holder, run_collector
from mia_pipeline.collection.quarantine import counts_by_reason
from mia_pipeline.collection.system_sampler import SOURCE, SystemSampler, off_reason
from mia_pipeline.schemas import parse_lines
from mia_pipeline.settings import Settings

HOST = {"host.cpu_pct": "%", "host.memory_pct": "%", "host.memory_available_mb": "MB",
        "host.disk_free_mb.data": "MB", "host.disk_free_pct.data": "%"}
COLLECTOR = {"collector.cpu_pct": "%", "collector.rss_mb": "MB", "collector.threads": "count",
             "collector.open_files": "count", "collector.uptime_s": "s"}
NOW_MS = 1_800_000_000_000  # 2027-01-15T08:00:00Z


def _sampler(layout, **kw) -> SystemSampler:
    return SystemSampler(layout.streaming_dir, layout.root, clock=lambda: NOW_MS, **kw)


def _lines(layout) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(layout.streaming_dir.glob("system_metrics_*.jsonl")))


def _rows(table) -> dict[str, dict]:
    return {r["metric"]: r for r in table.to_pylist()}


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


# ------------------------------------------------------------------------------------------ pure
def test_one_sample_is_valid_performance_events_with_plausible_values(layout):
    sampler = _sampler(layout)
    written = sampler.sample()
    data = _lines(layout)
    assert (layout.streaming_dir / "system_metrics_2027-01-15.jsonl").is_file()
    assert data.endswith(b"\n") and data.count(b"\n") == written == len(HOST) + len(COLLECTOR)
    result = parse_lines(data, now_ms=NOW_MS + 1000)
    assert result.rejects == []
    rows = _rows(result.tables["performance"])
    assert {m: r["unit"] for m, r in rows.items()} == HOST | COLLECTOR
    for metric, row in rows.items():
        assert row["tags"]["component"] == metric.split(".")[0]
        assert row["source"] == SOURCE
        assert row["ts"] == datetime.fromtimestamp(NOW_MS / 1000, UTC)
        assert row["event_id"] == f"system_metrics:{metric}:{NOW_MS}"
        assert row["value"] >= 0, metric
    for pct in ("host.cpu_pct", "host.memory_pct", "host.disk_free_pct.data"):
        assert 0 <= rows[pct]["value"] <= 100, pct
    assert rows["collector.cpu_pct"]["value"] <= 100 * (os.cpu_count() or 1)
    assert rows["host.disk_free_mb.data"]["value"] > 0
    assert json.loads(rows["host.disk_free_mb.data"]["extra"])["path"] == str(layout.root)
    assert rows["collector.rss_mb"]["value"] > 1 and rows["collector.threads"]["value"] >= 1
    assert sampler.status()["samples"] == 1 and sampler.status()["errors"] == 0


def test_a_backup_target_on_another_device_is_sampled_too(layout, tmp_path, monkeypatch):
    backup = tmp_path / "backup"
    backup.mkdir()
    real_stat = os.stat

    class OtherDevice:  # a stat result whose device differs, as a mounted backup disk's would
        def __init__(self, st):
            self.st_dev = st.st_dev + 1

    monkeypatch.setattr(system_sampler.os, "stat",
                        lambda p, *a, **k: OtherDevice(real_stat(p)) if str(p) == str(backup) else real_stat(p, *a, **k))
    _sampler(layout, backup_target=backup).sample()
    rows = _rows(parse_lines(_lines(layout), now_ms=NOW_MS).tables["performance"])
    assert rows["host.disk_free_mb.backup"]["value"] > 0 and 0 <= rows["host.disk_free_pct.backup"]["value"] <= 100
    assert json.loads(rows["host.disk_free_mb.backup"]["extra"])["path"] == str(backup)


def test_a_backup_target_on_the_data_volume_is_not_sampled_twice(layout, tmp_path):
    _sampler(layout, backup_target=tmp_path).sample()
    assert "host.disk_free_mb.backup" not in _rows(parse_lines(_lines(layout), now_ms=NOW_MS).tables["performance"])


def test_a_resample_at_the_same_instant_has_the_same_event_ids(layout):
    sampler = _sampler(layout)
    sampler.sample()
    first = {json.loads(x)["event_id"] for x in _lines(layout).splitlines()}
    sampler.sample()
    ids = [json.loads(x)["event_id"] for x in _lines(layout).splitlines()]
    assert set(ids) - first <= {f"system_metrics:host.cpu_pct:{NOW_MS}"}  # cpu needs time to pass to be read


@pytest.mark.parametrize(("settings", "key"), [
    (Settings(), None),
    (Settings(data_collection={"sources": {"system_metrics": False}}), "data_collection.sources.system_metrics"),
    (Settings(data_collection={"sources": {"performance_data": False}}), "data_collection.sources.performance_data"),
])
def test_off_reason_names_the_key(settings, key):
    why = off_reason(settings)
    assert (why is None) if key is None else (key in why)
    if key and "performance_data" in key:
        assert "quarantined" in why


# ------------------------------------------------------------------------------------------ faults
def test_psutil_raising_costs_only_its_figures(layout, monkeypatch):
    def boom(*a, **k):
        raise psutil.AccessDenied(pid=1)

    monkeypatch.setattr(system_sampler.psutil, "virtual_memory", boom)
    monkeypatch.setattr(system_sampler.psutil, "Process", boom)
    sampler = _sampler(layout)
    assert sampler.sample() == 3  # what psutil still answers: cpu and the data disk
    metrics = set(_rows(parse_lines(_lines(layout), now_ms=NOW_MS).tables["performance"]))
    assert metrics == {"host.cpu_pct", "host.disk_free_mb.data", "host.disk_free_pct.data"}
    assert sampler.errors == 2 and "AccessDenied" in sampler.last_error


def test_everything_raising_never_raises(layout, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("a psutil bug")

    for name in ("cpu_times", "virtual_memory", "disk_usage", "Process"):
        monkeypatch.setattr(system_sampler.psutil, name, boom)
    sampler = _sampler(layout)
    sampler.start()  # the first sample is taken here; a bug must not escape into the collector
    sampler.stop()
    assert sampler.samples == 0 and sampler.errors == 1 and "a psutil bug" in sampler.last_error


def test_a_full_disk_drops_the_sample_and_sampling_carries_on(layout, monkeypatch):
    sampler = _sampler(layout)
    real_write = os.write
    calls = {"n": 0}

    def full(fd, data):
        if "system_metrics_" not in os.readlink(f"/proc/self/fd/{fd}"):
            return real_write(fd, data)  # os.write is the process's: only the sampler's file is full
        calls["n"] += 1
        if calls["n"] == 1:  # the first write gets half a line onto the disk, then the disk is full
            return real_write(fd, bytes(data[:40]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(system_sampler.os, "write", full)
    assert sampler.sample() == 0
    assert sampler.write_errors == 1 and "No space left" in sampler.last_error
    monkeypatch.setattr(system_sampler.os, "write", real_write)
    written = sampler.sample()  # space again: the next sample is written
    assert written > 0
    result = parse_lines(_lines(layout), now_ms=NOW_MS)
    # the cut-off fragment is one bad line of its own (a newline was written before the next sample)
    assert [r.reason for r in result.rejects] == ["malformed_json"]
    assert result.tables["performance"].num_rows == written
    assert _lines(layout).endswith(b"\n")


def test_the_thread_samples_every_interval_and_stops(layout):
    sampler = SystemSampler(layout.streaming_dir, layout.root, interval_s=0.05)
    sampler.start()
    assert sampler.samples == 1  # the first sample is taken at start
    deadline = time.monotonic() + 10
    while sampler.samples < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    sampler.stop()
    n = sampler.samples
    assert n >= 3 and sampler.status()["state"] == "stopped"
    assert not any(t.name == "mia-system-metrics" for t in threading.enumerate())
    time.sleep(0.15)
    assert sampler.samples == n


# ------------------------------------------------------------------------------------------ collector
def _collect(layout, store, settings, passes=2):
    return run_collector(layout, store, interval=0.05, max_passes=passes, settings=settings)


def test_a_collector_run_lands_host_and_collector_rows(layout, store):
    _collect(layout, store, Settings())
    table = store.read(_today(), "performance")
    assert table is not None
    metrics = set(_rows(table))
    assert set(HOST) <= metrics and set(COLLECTOR) <= metrics
    assert set(table.column("source").to_pylist()) == {SOURCE}
    assert counts_by_reason(layout) == {}
    sm = collector_state(layout)["system_metrics"]
    assert sm["state"] == "stopped" and sm["samples"] >= 1 and sm["errors"] == 0
    assert not any(t.name == "mia-system-metrics" for t in threading.enumerate())


def test_a_running_collector_shows_the_sampler_on(layout, store):
    seen = []
    run_collector(layout, store, interval=0.05, max_passes=1, settings=Settings(),
                  on_report=lambda r: seen.append(json.loads(layout.collector_control_file.read_text())))
    assert seen[0]["system_metrics"]["state"] == "on" and seen[0]["system_metrics"]["samples"] == 1


@pytest.mark.parametrize(("sources", "key"), [({"system_metrics": False}, "system_metrics"),
                                              ({"performance_data": False}, "performance_data")])
def test_a_source_off_starts_no_sampler_and_says_why(layout, store, sources, key):
    _collect(layout, store, Settings(data_collection={"sources": sources}))
    assert list(layout.streaming_dir.glob("system_metrics_*")) == []
    assert store.read(_today(), "performance") is None
    sm = collector_state(layout)["system_metrics"]
    assert sm["state"].startswith("off: ") and f"data_collection.sources.{key}" in sm["state"]
    assert sm["samples"] == 0


def test_without_settings_the_loop_runs_no_sampler(layout, store):
    run_collector(layout, store, interval=0.05, max_passes=1)
    assert list(layout.streaming_dir.glob("system_metrics_*")) == []
    assert collector_state(layout)["system_metrics"]["state"] == "off: not configured"


# ------------------------------------------------------------------------------------------ CLI
def _start(layout, env_extra) -> subprocess.Popen:
    env = {**os.environ, "MIA_DATA_DIR": str(layout.root), **env_extra}
    return subprocess.Popen([sys.executable, "-m", "mia_pipeline.cli.main", "collect", "start", "--interval", "0.2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize(("sources", "expect"), [
    ("", "system metrics: host and collector sampled every 60s"),
    ("system_metrics=off", "system metrics sampler not started: the system_metrics source is off "
                           "(data_collection.sources.system_metrics: false"),
    ("performance_data=off", "system metrics sampler not started: data_collection.sources.performance_data is "
                             "false: its `performance` events would be quarantined"),
])
def test_collect_start_prints_the_sampler_line_and_status_shows_it(layout, store, sources, expect):
    proc = _start(layout, {"MIA_SOURCES": sources} if sources else {})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                lock_holder(layout) == proc.pid and collector_state(layout).get("last_run_at")):
            time.sleep(0.2)
        status = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "collect", "status"]).output
        stop = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "collect", "stop"])
        assert stop.exit_code == 0, stop.output
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    lines = [ln for ln in out.decode().splitlines() if ln.startswith("system metrics")]
    assert len(lines) == 1 and lines[0].startswith(expect), out.decode()
    if sources:
        assert "system metrics: off: " in status
        assert list(layout.streaming_dir.glob("system_metrics_*")) == []
    else:
        assert "system metrics: on, 1 sample(s)" in status, status
        metrics = set(_rows(store.read(_today(), "performance")))
        assert set(HOST) <= metrics and set(COLLECTOR) <= metrics
        assert counts_by_reason(layout) == {}


def test_checks_of_far_apart_days_run_per_span_not_over_every_day_between():
    """Regression: a collector that lands an old day and today's metrics ran ``daily_checks`` over the
    whole range between them (hundreds of days, gigabytes of run records) when it stopped."""
    from mia_pipeline.cli.dagster_bridge import contiguous_spans

    assert contiguous_spans(["2026-12-04", "2025-06-23", "2025-06-24", "2025-06-24", "2025-06-26"]) == [
        ["2025-06-23", "2025-06-24"], ["2025-06-26"], ["2026-12-04"]]
    assert contiguous_spans([]) == []
