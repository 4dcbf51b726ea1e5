"""SIGKILL `backup` and `recover --restore-from-backup` at random moments (>= 30 times each).

Afterwards nothing is lost and nothing partial is visible: every backup manifest that exists reads
back and every blob it names re-hashes to its name (no manifest before its blobs, no blob collected
while named); every day holds one complete version (the old or the restored one) that verifies against
its manifest; and running the command again completes.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mia_pipeline.lifecycle.backup import run_backup
from mia_pipeline.lifecycle.catalog import BlobChecker, list_backups, target_for
from mia_pipeline.lifecycle.restore import restore_day
from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.lifecycle._backup_data import contents

ITERATIONS = 30
DAYS = [f"2025-07-{d:02d}" for d in range(1, 13)]
CHILD = Path(__file__).with_name("_backup_kill_child.py")


def ticks(rng, version: int) -> pa.Table:
    n = 60_000
    return pa.table({"version": np.full(n, version, dtype=np.int64), "noise": rng.integers(0, 2**62, n)})


def fill(store: PartitionStore, rng, version: int) -> None:
    for day in DAYS:
        store.write_many(day, {"market_ticks": ticks(rng, version), "trades": pa.table({"trade_id": [f"T{day}"]})},
                         compression="none")


def child(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}  # with the test's AWS_* variables
    proc = subprocess.Popen([sys.executable, str(CHILD), *map(str, args)], stdout=subprocess.PIPE, env=env)
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def kill_after(proc: subprocess.Popen, seconds: float) -> None:
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def child_settings(layout, target=None):
    from mia_pipeline_tests.lifecycle._backup_kill_child import settings

    return settings(str(layout.root), target)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["folder", "s3"])
def test_killed_backups_leave_only_complete_verified_backups(layout, request, where):
    rng = random.Random(7)
    nrng = np.random.default_rng(7)
    store = PartitionStore(layout)
    fill(store, nrng, 0)
    url = f"s3://{request.getfixturevalue('s3_bucket')}/kill" if where == "s3" else ""
    settings = child_settings(layout, url or None)
    target = target_for(layout, settings)
    completed = 0
    for i in range(ITERATIONS):
        day = rng.choice(DAYS)  # new content for the next backup to write
        store.write(day, "market_ticks", ticks(nrng, i + 1), compression="none")
        # up to one backup's time: on S3 each object is a staged upload plus a copy (a full pass ~1-2 s here)
        kill_after(child("backup", layout.root, url), rng.uniform(0.0, 0.8 if where == "folder" else 2.5))
        good, damaged = list_backups(target)
        assert damaged == {}, f"iteration {i}: a manifest is visible half-written: {damaged}"
        checker = BlobChecker(target)
        for b in good:
            assert checker.bad(b.files) == [], f"iteration {i}: {b.kind}/{b.id} names a missing or partial blob"
        assert all(target.verify_blob(sha) for sha in target.blob_shas()), f"iteration {i}: a partial blob"
        completed += len(good)
    result = run_backup(layout, settings, "full")  # re-running completes
    assert not result.damaged
    newest = list_backups(target)[0][0]
    assert all(newest.files[f"snapshots/daily/{d}/market_ticks.parquet"].sha256 ==
               store.entry(d, "market_ticks").sha256 for d in DAYS)
    if where == "folder":
        assert not [p for p in target.root.rglob("*.tmp") if p.is_file()]
    else:  # staging objects of killed uploads: never published, and gone once stale
        assert target.store.sweep_staging(stale_after_s=0) >= 0
        assert not [k for k in target.store.list() if k.startswith(".staging/")]
    assert completed > 0


@pytest.mark.slow
def test_killed_restores_leave_each_day_old_or_new_never_partial(layout, tmp_path):
    rng = random.Random(11)
    nrng = np.random.default_rng(11)
    store = PartitionStore(layout)
    targets = []
    for version in (1, 2):  # target A holds version 1 of every day, target B version 2
        fill(store, nrng, version)
        folder = tmp_path / f"target{version}"
        folder.mkdir()
        run_backup(layout, child_settings(layout, str(folder)), "full")
        targets.append(folder)
    seen = set()
    for i in range(ITERATIONS):
        kill_after(child("restore", layout.root, *targets), rng.uniform(0.2, 1.5))
        for day in DAYS:
            table = store.read(day, "market_ticks")  # what a reader sees, before any clean-up
            versions = set(table.column("version").to_pylist())
            assert len(versions) == 1 and versions <= {1, 2}, f"iteration {i}: {day} torn: {versions}"
            assert table.num_rows == 60_000
            seen |= versions
            store.recover(day)
            assert store.verify(day) == [], f"iteration {i}: {day} disagrees with its manifest"
            assert not list(layout.day_dir(day).glob(".*.tmp"))
    assert seen == {1, 2}  # the restores really were killed at many points
    for day in DAYS:  # re-running completes
        restore_day(layout, child_settings(layout, str(targets[1])), store, day)
    assert {v for (_, ds), rows in contents(store).items() if ds == "market_ticks" for v in
            {r["version"] for r in rows}} == {2}
