"""Runs on Celery workers (issue 24, part 3): a backfill of five days of the daily datasets, launched with
Dagster's own `dagster job backfill`, queued on a PostgreSQL instance, launched by `dagster-daemon` and
executed by two `dagster-celery` workers over a Redis broker (all real, on 127.0.0.1), gives the same
partitions byte for byte and the same Dagster records as the same job run in process.
Skipped, naming why, where PostgreSQL or Redis cannot be installed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.dagster_bridge import QUIET, code_location_defs, open_instance, point_code_location_at
from mia_pipeline.cli.main import cli
from mia_pipeline.layout import DATASETS, Layout
from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.celery_workers import Workers, start_redis
from mia_pipeline_tests.guide_examples import make_event, to_line

pytestmark = pytest.mark.slow
DAYS = ["2025-06-23", "2025-06-24", "2025-06-25", "2025-06-26", "2025-06-27"]
JOB = "daily_datasets_on_workers"
BIN = Path(sys.executable).parent


@pytest.fixture
def redis():
    try:
        server = start_redis()
    except RuntimeError as exc:
        pytest.skip(f"no Redis here: {exc}")
    yield server
    server.stop()


def land_five_days(layout) -> None:
    lines = []
    for k, day in enumerate(DAYS):
        for i in range(400):
            ts = f"{day}T{10 + i // 60:02d}:{i % 60:02d}:00.000Z"
            lines.append(to_line(make_event("market_tick", seq=i, event_id=f"t-{k}-{i}", timestamp=ts)))
        lines.append(to_line(make_event("trade", trade_id=f"T-{k}", event_id=f"tr-{k}", timestamp=f"{day}T12:00:00.000Z")))
    (layout.streaming_dir / "feed.jsonl").write_bytes(b"".join(lines))
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "collect", "start", "--once"])
    assert result.exit_code == 0, result.output


def records(instance) -> dict:
    """Per (dataset, day): the newest materialization's row count, sha256 and run."""
    out = {}
    for ds in DATASETS:
        for r in instance.fetch_materializations(dg.AssetKey(ds), limit=1000).records:
            if r.partition_key in DAYS and (ds, r.partition_key) not in out:
                meta = r.asset_materialization.metadata
                out[ds, r.partition_key] = {"rows": meta["dagster/row_count"].value,
                                            "sha256": meta["sha256"].value if "sha256" in meta else None,
                                            "run": r.run_id}
    return out


def verdicts(instance, run_ids) -> dict:
    """{(dataset, day, check): passed} from the evaluations the runs logged."""
    out = {}
    for run_id in run_ids:
        for e in instance.all_logs(run_id):
            if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION":
                ev = e.dagster_event.event_specific_data
                out[ev.asset_key.to_user_string(), ev.partition, ev.check_name] = ev.passed
    return out


def dataset_bytes(layout) -> dict:
    return {(ds, day): layout.dataset_file(day, ds).read_bytes() for day in DAYS for ds in DATASETS
            if layout.dataset_file(day, ds).exists()}


def worker_env(layout, redis) -> dict:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "DAGSTER_HOME": str(layout.dagster_dir), "MIA_DATA_DIR": str(layout.root),
           "MIA_CELERY_BROKER": redis.broker, "MIA_CELERY_BACKEND": redis.backend}
    env.pop("MIA_CONFIG", None)
    return env


def start_daemon(layout, env, tmp_path) -> subprocess.Popen:
    with open(tmp_path / "daemon.log", "wb") as log:
        return subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(layout.dagster_dir / "workspace.yaml")],
                                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_daemon(daemon) -> None:
    """SIGTERM to the daemon, then SIGKILL whatever is left of its process group (the code server it
    started can outlive it by its heartbeat timeout, or hang in its shutdown)."""
    if daemon is None:
        return
    os.killpg(daemon.pid, signal.SIGTERM)
    try:
        daemon.wait(timeout=60)
    finally:
        try:
            os.killpg(daemon.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextmanager
def workers_and_daemon(layout, redis, tmp_path):
    """Two workers (w1, w2) and a daemon on ``layout``'s instance; yields (workers, their environment)."""
    env = worker_env(layout, redis)
    (tmp_path / "workers").mkdir()
    workers, daemon = Workers(tmp_path / "workers", env), None
    try:
        workers.start(["w1", "w2"], redis)
        daemon = start_daemon(layout, env, tmp_path)
        yield workers, env
    finally:
        workers.stop()
        stop_daemon(daemon)


def backfill(layout, env, days) -> None:
    """`dagster job backfill` of ``days``: one queued run per day, launched by the daemon."""
    launched = subprocess.run([str(BIN / "dagster"), "job", "backfill", "-w", str(layout.dagster_dir / "workspace.yaml"),
                               "-j", JOB, "--partitions", ",".join(days), "--noprompt"], env=env, capture_output=True,
                              text=True, timeout=300)
    assert launched.returncode == 0, launched.stderr[-3000:]


def job_runs(layout) -> list:
    with open_instance(layout) as instance:
        return [r for r in instance.get_runs() if r.job_name == JOB]


def wait_for_runs(layout, n: int, tmp_path, timeout: float = 600) -> list:
    deadline = time.monotonic() + timeout
    while True:
        runs = job_runs(layout)
        if len(runs) == n and all(r.is_finished for r in runs):
            return runs
        if time.monotonic() > deadline:
            pytest.fail(f"runs not finished: {[(r.tags.get('dagster/partition'), r.status) for r in runs]}\n"
                        + (tmp_path / "daemon.log").read_text(errors="replace")[-3000:])
        time.sleep(1)


def test_a_backfill_on_two_celery_workers_matches_the_same_job_in_process(pg_layout, redis, tmp_path, monkeypatch):
    layout = pg_layout
    land_five_days(layout)
    # the reference: a copy of the data root (its own SQLite instance), the same job run in process
    reference = Layout(tmp_path / "reference")
    shutil.copytree(layout.root, reference.root, ignore=shutil.ignore_patterns(".dagster"))
    pg_env = {k: v for k, v in os.environ.items() if k.startswith("MIA_PG_")}
    for name in pg_env:
        monkeypatch.delenv(name)  # the reference instance is the default profile
    point_code_location_at(reference)
    job = code_location_defs().resolve_job_def(JOB)
    with open_instance(reference) as instance:
        ref_runs = [job.execute_in_process(instance=instance, partition_key=day, run_config=QUIET).run_id for day in DAYS]
        expected_records, expected_verdicts = records(instance), verdicts(instance, ref_runs)
    for name, value in pg_env.items():
        monkeypatch.setenv(name, value)
    assert len(expected_verdicts) == len(DAYS) * 35 and len(expected_records) == len(DAYS) * len(DATASETS)
    assert sum(1 for v in expected_records.values() if v["rows"]) == len(DAYS) * 2  # ticks and trades

    with workers_and_daemon(layout, redis, tmp_path) as (workers, env):
        backfill(layout, env, DAYS)
        runs = wait_for_runs(layout, len(DAYS), tmp_path)
        done = {name: workers.tasks_done(name) for name in ("w1", "w2")}
    assert all(r.is_success for r in runs), [(r.tags.get("dagster/partition"), r.status) for r in runs]
    assert sorted(r.tags["dagster/partition"] for r in runs) == DAYS
    assert len({r.tags.get("dagster/backfill") for r in runs}) == 1
    assert sum(done.values()) == len(DAYS) and all(n >= 1 for n in done.values()), done  # both workers worked
    with open_instance(layout) as instance:
        got_records, got_verdicts = records(instance), verdicts(instance, [r.run_id for r in runs])
    assert {k: {**v, "run": None} for k, v in got_records.items()} == {
        k: {**v, "run": None} for k, v in expected_records.items()}
    assert {v["run"] for v in got_records.values()} <= {r.run_id for r in runs}  # recorded by the workers' runs
    assert got_verdicts == expected_verdicts
    assert dataset_bytes(layout) == dataset_bytes(reference)
    assert json.loads(CliRunner().invoke(cli, ["--data-dir", str(layout.root), "status", "--json"]).output)[
        "dagster_instance"].endswith("dagster.postgres.yaml")


def test_a_worker_process_killed_mid_partition_leaves_the_previous_state_and_the_step_runs_again(
        pg_layout, redis, tmp_path):
    """SIGKILL of the worker process executing a day's step (as the OOM killer does): the half-done
    attempt commits nothing (the day's files still match their manifest), the task goes back to the queue
    (acks late, rejected on worker loss), a worker runs the step again and the run succeeds."""
    layout, day = pg_layout, DAYS[0]
    lines = [to_line(make_event("market_tick", seq=i, event_id=f"t-{i}",
                                timestamp=f"{day}T{1 + i // 7200:02d}:{i // 120 % 60:02d}:{i // 2 % 60:02d}.{i % 1000:03d}Z"))
             for i in range(120_000)]
    (layout.streaming_dir / "feed.jsonl").write_bytes(b"".join(lines))
    assert CliRunner().invoke(cli, ["--data-dir", str(layout.root), "collect", "start", "--once"]).exit_code == 0
    store = PartitionStore(layout)
    before = store.read(day, "market_ticks")
    with workers_and_daemon(layout, redis, tmp_path) as (workers, env):
        backfill(layout, env, [day])
        deadline, pid = time.monotonic() + 300, None
        while pid is None:
            runs = job_runs(layout)
            pid = runs and workers.step_pid(runs[0].run_id)
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)  # mid-partition: the rebuild of 120,000 ticks takes seconds
        (run,) = wait_for_runs(layout, 1, tmp_path)
        logs = workers.log("w1") + workers.log("w2")
    assert "WorkerLostError" in logs or "exited with 'signal 9" in logs, logs[-3000:]
    assert logs.count("STEP_START") >= 2  # the step ran again
    assert run.is_success, run.status
    assert store.read(day, "market_ticks").equals(before)  # the same rows rebuilt: nothing half-written or lost
    integrity = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "check-integrity"])
    assert integrity.exit_code == 0, integrity.output
