"""SIGKILL `archive` at random points (30 times): afterwards every row reads back once (nothing lost,
nothing doubled, no partial file visible to the reader), and re-running finishes the archive with a
clean integrity check and views that match the disk."""

import random
import shutil
import time
from datetime import date

import pytest

from mia_pipeline.collection.integrity import integrity_problems
from mia_pipeline.lifecycle.archive import archive
from mia_pipeline.storage import PartitionStore, refresh_views
from mia_pipeline_tests.lifecycle._archive_data import rows, run_and_kill, small_root, view_rows

ITERATIONS = 30
BEFORE = date(2025, 7, 3)
CHILD = """
import sys
from datetime import date
from mia_pipeline.layout import Layout
from mia_pipeline.lifecycle.archive import archive
from mia_pipeline.storage import PartitionStore
lay = Layout(sys.argv[1])
print("ready", flush=True)
archive(lay, PartitionStore(lay), date(2025, 7, 3))
print("done", flush=True)
"""


@pytest.mark.slow
def test_killed_archive_loses_nothing_and_a_rerun_completes(tmp_path):
    template = small_root(tmp_path / "template")
    baseline, baseline_views = rows(PartitionStore(template)), view_rows(template)
    probe = tmp_path / "probe"
    shutil.copytree(template.root, probe)
    t0 = time.perf_counter()
    archive(type(template)(probe), PartitionStore(type(template)(probe)), BEFORE)
    full = time.perf_counter() - t0
    rng = random.Random(20250701)
    finished = 0
    for i in range(ITERATIONS):
        root = tmp_path / f"run{i}"
        shutil.copytree(template.root, root)
        lay = type(template)(root)
        store = PartitionStore(lay)
        finished += run_and_kill(CHILD, [str(root)], rng.uniform(0.0, full * 1.2))
        assert rows(store) == baseline, f"iteration {i}: rows changed after the kill"
        archive(lay, store, BEFORE)  # re-run completes
        assert lay.days_present() == [], f"iteration {i}"
        assert rows(store) == baseline, f"iteration {i}: rows changed after the re-run"
        assert integrity_problems(lay, store) == [], f"iteration {i}"
        refresh_views(lay)
        assert view_rows(lay) == baseline_views, f"iteration {i}"
        assert not [p for p in root.rglob("*") if ".removing-" in p.name or p.name.endswith(".tmp")]
        shutil.rmtree(root)
    assert finished < ITERATIONS // 2  # most kills landed mid-archive
