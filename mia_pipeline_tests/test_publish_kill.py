"""SIGKILL a folder publisher at random moments: the folder always holds one complete version."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mia_pipeline.storage.publish import recover
from mia_pipeline_tests._kill_publisher import files

ITERATIONS = 30


@pytest.mark.slow
def test_killed_publisher_leaves_old_or_new_folder_never_a_mix(tmp_path):
    target = tmp_path / "week"
    rng = random.Random(4321)
    script = Path(__file__).with_name("_kill_publisher.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    seen, last = set(), -1
    for i in range(ITERATIONS):
        proc = subprocess.Popen([sys.executable, str(script), str(target), str(i * 1000)],
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.3))  # kill anywhere: mid-file, mid-fsync, mid-swap
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        recover(target, stale_after_s=0)
        if not target.exists():  # killed before the very first publish
            assert last == -1, f"iteration {i}: the folder vanished"
            continue
        versions = {int(p.read_text().split("\n", 1)[0]) for p in target.iterdir()}
        assert len(versions) == 1, f"iteration {i}: torn folder with versions {sorted(versions)}"
        v = versions.pop()
        assert len(list(target.iterdir())) == files(v), f"iteration {i}: version {v} incomplete"
        assert v >= last, "a published version went backwards"
        assert [p.name for p in tmp_path.iterdir()] == ["week"], f"iteration {i}: leftovers after recover"
        last = v
        seen.add(v)
    assert len(seen) > ITERATIONS // 2  # the publisher really got killed at many points
