"""SIGKILL a partition writer at random moments: the day always holds one complete version."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest

from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests._kill_writer import rows

ITERATIONS = 30


@pytest.mark.slow
def test_killed_writer_leaves_old_or_new_version_never_partial(layout):
    store = PartitionStore(layout)
    rng = random.Random(1234)
    script = Path(__file__).with_name("_kill_writer.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    seen_versions = set()
    last_version = -1
    for i in range(ITERATIONS):
        first = i * 1000
        proc = subprocess.Popen([sys.executable, str(script), str(layout.root), str(first)],
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.4))  # kill anywhere: mid-Parquet, mid-manifest, mid-rename
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        table = store.read("2025-06-23", "trades")
        if table is None:  # killed before the very first commit of the very first writer
            assert last_version == -1
            continue
        versions = pc.unique(table.column("version")).to_pylist()
        assert len(versions) == 1, f"iteration {i}: torn partition with versions {versions}"
        v = versions[0]
        assert table.num_rows == rows(v), f"iteration {i}: version {v} has {table.num_rows} rows"
        assert v >= last_version, "a committed version went backwards"
        entry = store.entry("2025-06-23", "trades")
        assert entry.rows == table.num_rows
        last_version = v
        seen_versions.add(v)
        store.recover("2025-06-23")
        assert store.verify("2025-06-23") == [], f"iteration {i}: manifest disagrees with files"
        assert not list(layout.day_dir("2025-06-23").glob(".*.tmp"))
    assert len(seen_versions) > ITERATIONS // 2  # the writer really got killed at many points
