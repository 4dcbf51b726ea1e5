"""SIGKILL `cleanup` at random points (30 times): every day past retention is either whole or gone
(never half a day or half a month visible), nothing within retention is touched, and re-running
finishes the job with a clean integrity check and working views."""

import random
import shutil
import time
from datetime import date

import pyarrow as pa
import pytest

from mia_pipeline.collection.integrity import integrity_problems
from mia_pipeline.collection.quarantine import QUARANTINE_SCHEMA, write_rejects
from mia_pipeline.layout import STORED_DATASETS, Layout
from mia_pipeline.lifecycle.archive import archive_month
from mia_pipeline.lifecycle.retention import cleanup
from mia_pipeline.storage import PartitionStore, refresh_views
from mia_pipeline_tests.lifecycle._archive_data import run_and_kill, small_root, view_rows

ITERATIONS = 30
TODAY = date(2026, 7, 2)  # cutoff 2025-07-02: the month 2025-06 and the day 2025-07-01 go, 2025-07-02 stays
DAYS = ("2025-06-27", "2025-06-30", "2025-07-01", "2025-07-02")
CHILD = """
import sys
from datetime import date
from mia_pipeline.layout import Layout
from mia_pipeline.lifecycle.retention import cleanup
lay = Layout(sys.argv[1])
print("ready", flush=True)
cleanup(lay, None, 365, force=True, today=date(2026, 7, 2))
print("done", flush=True)
"""


def _per_day(store):
    return {(d, ds): (t.to_pylist() if (t := store.read(d, ds)) is not None else None)
            for d in DAYS for ds in STORED_DATASETS}


@pytest.mark.slow
def test_killed_cleanup_leaves_whole_days_or_none_and_a_rerun_completes(tmp_path):
    template = small_root(tmp_path / "template", DAYS)
    archive_month(template, PartitionStore(template), "2025-06")
    for day in ("2025-06-30", "2025-07-01"):
        write_rejects(template, day, pa.Table.from_pylist([{"file": "a.jsonl", "offset": 0, "reason": "bad_json",
                      "detail": "x", "line": b"{", "received_at": 0}], schema=QUARANTINE_SCHEMA))
    refresh_views(template)
    baseline = _per_day(PartitionStore(template))
    probe = Layout(tmp_path / "probe")
    shutil.copytree(template.root, probe.root)
    t0 = time.perf_counter()
    cleanup(probe, None, 365, force=True, today=TODAY)
    full = time.perf_counter() - t0
    rng = random.Random(365)
    for i in range(ITERATIONS):
        lay = Layout(tmp_path / f"run{i}")
        shutil.copytree(template.root, lay.root)
        store = PartitionStore(lay)
        run_and_kill(CHILD, [str(lay.root)], rng.uniform(0.0, full * 1.5))
        now = _per_day(store)
        for day in DAYS:
            whole = all(now[(day, ds)] == baseline[(day, ds)] for ds in STORED_DATASETS)
            gone = all(now[(day, ds)] is None for ds in STORED_DATASETS)
            assert whole or (gone and day < "2025-07-02"), f"iteration {i}: {day} is partial"
        assert {now[(d, "trades")] is None for d in DAYS[:2]} in ({True}, {False}), f"iteration {i}: half a month"
        cleanup(lay, None, 365, force=True, today=TODAY)  # re-run completes
        assert store.days("trades") == ["2025-07-02"] and lay.quarantine_days() == []
        assert integrity_problems(lay, store) == [], f"iteration {i}"
        refresh_views(lay)
        assert view_rows(lay)["trades"]
        assert not [p for p in lay.root.rglob("*") if ".removing-" in p.name]
        shutil.rmtree(lay.root)
