"""One collector per data root, a `collect stop` that signals only a collector, state files that
cannot wedge the collector.

Protects: several `mia collect start` at once leave exactly one running (the flock of
``Layout.collector_lock_file``), the others exit 1 naming its pid; `mia collect stop` refuses a pid
from collector.json that is not a collector (it would have SIGTERMed an unrelated process); a
malformed collector.json or ingest_state.json is a one-line error (exit 1) with a way out, and
`--reset-state` moves it aside and starts clean, never a traceback.
"""

import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from conftest import append, tick

from mia_pipeline.cli.main import cli
from mia_pipeline.collection.collector import CollectorRunning, collector_lock, lock_holder


def _env(layout) -> dict:
    return {**os.environ, "MIA_DATA_DIR": str(layout.root)}


def _start(layout, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mia_pipeline.cli.main", "collect", "start", "--interval", "0.2",
                             *extra], env=_env(layout), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _mia(layout, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args])


def test_collectors_started_together_leave_exactly_one(layout):
    append(layout, "a.jsonl", tick(1))
    procs = [_start(layout) for _ in range(3)]
    try:
        deadline = time.monotonic() + 60
        while sum(p.poll() is None for p in procs) > 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # the survivor keeps running
        alive = [p for p in procs if p.poll() is None]
        assert len(alive) == 1, [p.returncode for p in procs]
        (survivor,) = alive
        assert lock_holder(layout) == survivor.pid
        for p in procs:
            if p is not survivor:
                err = p.stderr.read().decode()
                assert p.returncode == 1, err
                assert f"already running on this data root (pid {survivor.pid})" in err
                assert "Traceback" not in err
        res = _mia(layout, "collect", "stop")
        assert res.exit_code == 0 and f"collector {survivor.pid} stopped" in res.output, res.output
        assert survivor.wait(timeout=30) == 0
        assert lock_holder(layout) is None
        assert _mia(layout, "collect", "status", "--json").exit_code == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_detached_starts_racing_report_the_loser_to_the_user(layout):
    """`collect start --detach` twice at once: one says "started", the other exits 1 naming the winner
    (it used to say "started" too, and only the log said otherwise)."""
    procs = [subprocess.Popen([sys.executable, "-m", "mia_pipeline.cli.main", "collect", "start", "--interval", "0.2",
                               "--detach"], env=_env(layout), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    try:
        outs = [(p.wait(timeout=90), *(x.decode() for x in p.communicate())) for p in procs]
        holder = lock_holder(layout)
        assert holder, outs
        assert sorted(code for code, _, _ in outs) == [0, 1], outs
        (won,) = [o for o in outs if o[0] == 0]
        (lost,) = [o for o in outs if o[0] == 1]
        assert f"pid {holder})" in won[1]
        assert f"already running on this data root (pid {holder})" in lost[2]
        assert "Traceback" not in lost[2]
    finally:
        res = _mia(layout, "collect", "stop")
        assert res.exit_code == 0, res.output
        deadline = time.monotonic() + 30
        while lock_holder(layout) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lock_holder(layout) is None


def test_a_held_lock_names_its_holder(layout):
    with collector_lock(layout):
        assert lock_holder(layout) == os.getpid()
        with pytest.raises(CollectorRunning, match=f"pid {os.getpid()}"):
            with collector_lock(layout, retry_s=0.1):
                pass
        res = _mia(layout, "collect", "start", "--interval", "0.2")
        assert res.exit_code == 1 and f"pid {os.getpid()}" in res.output
    assert lock_holder(layout) is None


def test_stop_refuses_a_pid_that_is_not_a_collector(layout):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        layout.collector_control_file.write_text(json.dumps({"pid": sleeper.pid, "state": "running"}))
        res = _mia(layout, "collect", "stop")
        assert res.exit_code == 1
        assert f"names pid {sleeper.pid}" in res.output and "not a collector" in res.output
        assert "nothing was signalled" in res.output and "Traceback" not in res.output
        time.sleep(0.2)
        assert sleeper.poll() is None  # still alive: never signalled
    finally:
        sleeper.kill()
        sleeper.wait()


MALFORMED = [b"{not json", b"\xff\xfe", b"[1, 2]", b"[" * 100_000]


@pytest.mark.parametrize(("which", "content"), [
    *(("collector_control_file", c) for c in [*MALFORMED, b'{"pid": "x", "state": "running"}', b'{"state": 5}']),
    *(("ingest_state_file", c) for c in [*MALFORMED, b'{"files": 3}', b'{"files": {"a.jsonl": {"offset": "x"}}}',
                                         b'{"files": {"a.jsonl": {"offset": 1, "inode": "y"}}}']),
])
def test_malformed_state_files_are_one_line_and_reset_state_recovers(layout, store, which, content):
    append(layout, "a.jsonl", tick(1) + tick(2))
    path = getattr(layout, which)
    path.write_bytes(content)
    res = _mia(layout, "collect", "start", "--once")
    assert res.exit_code == 1, res.output
    assert res.output.count("\n") == 1 and path.name in res.output and "--reset-state" in res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    status = _mia(layout, "collect", "status")
    assert status.exit_code == 0 and "--reset-state" in status.output, status.output
    res = _mia(layout, "collect", "start", "--once", "--reset-state")
    assert res.exit_code == 0, res.output
    assert "market_ticks 2" in res.output and f"moved damaged {path.name} aside" in res.output
    (aside,) = path.parent.glob(f"{path.name}.bad-*")
    assert aside.read_bytes() == content
    assert "nothing new" in _mia(layout, "collect", "start", "--once").output


def test_the_collector_loop_resets_state_too(layout):
    layout.ingest_state_file.write_text("{oops")
    append(layout, "a.jsonl", tick(1))
    proc = _start(layout)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "ingest_state.json is damaged" in err.decode() and "Traceback" not in err.decode()
    proc = _start(layout, "--reset-state")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                layout.ingest_state_file.exists() and lock_holder(layout) == proc.pid):
            time.sleep(0.2)
        assert json.loads(layout.ingest_state_file.read_text())["files"]["a.jsonl"]["lines"] == 1
        assert len(list(layout.ingest_state_file.parent.glob("ingest_state.json.bad-*"))) == 1
        res = _mia(layout, "collect", "stop")
        assert res.exit_code == 0 and f"collector {proc.pid} stopped" in res.output, res.output
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
