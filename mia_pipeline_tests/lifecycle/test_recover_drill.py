"""The recovery drill, end to end through the `mia` command: simulated trading days are collected and
backed up; then a partition gets a flipped byte, a whole day is deleted, and the newest backup gets a
flipped byte in its manifest while the older backup's copy of the damaged partition rots too.
`mia recover --validate-and-repair` must bring back exactly the data there was (the deleted day from the
older good backup, the rotten partition rebuilt from its raw lines), and `mia check-integrity` is clean.
"""

import shutil

import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.lifecycle.catalog import list_backups, target_for
from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.lifecycle._backup_data import contents, flip, settings_for

DAYS = ("2026-11-23", "2026-11-24", "2026-11-25")  # Monday to Wednesday


def mia(layout, *args, code=0):
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args])
    assert res.exit_code == code, (args, res.output)
    return res.output


@pytest.mark.slow
def test_drill_corrupt_delete_and_damaged_newest_backup_are_repaired_to_identical_data(layout):
    mia(layout, "simulate", "--start", DAYS[0], "--days", "3", "--seed", "3")
    mia(layout, "collect", "start", "--once")
    mia(layout, "backup", "--full")
    mia(layout, "backup", "--incremental")
    store = PartitionStore(layout)
    before = contents(store)
    assert {d for d, _ in before} == set(DAYS) and all(rows for rows in before.values())

    flip(layout.dataset_file(DAYS[0], "signals"))  # 1. a flipped byte in a partition
    shutil.rmtree(layout.day_dir(DAYS[1]))  # 2. a day deleted
    target = target_for(layout, settings_for(layout))
    newest, older = list_backups(target)[0]
    flip(target.manifest_path(newest.kind, newest.id), at=80)  # 3. a flipped byte in the newest backup
    flip(target.blob_path(store.entry(DAYS[0], "signals").sha256))  # ... and the only copy of that file rots
    assert "PROBLEM" in mia(layout, "check-integrity", code=1)

    out = mia(layout, "recover", "--validate-and-repair")
    assert f"skipped backup {newest.kind}/{newest.id}" in out
    assert f"repaired {DAYS[1]}: the day was missing: restored from {older.kind}/{older.id}" in out
    assert f"repaired {DAYS[0]}: rebuilt signals from the raw lines" in out
    assert "0 problem(s)" in mia(layout, "check-integrity")
    assert contents(store) == before
