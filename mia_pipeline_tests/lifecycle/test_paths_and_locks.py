"""Issue 25 (7): paths and locks.

Nothing under the backup target or the Sierra folder is followed through a symbolic link; day names in a
backup manifest are validated before use (a tampered manifest is skipped, the other backups and days go
on); a backup target inside the data root is refused before any lock is taken (no command waits on its
own lock); one damaged day never stops the loop collector.
"""

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.collection.collector import run_collector
from mia_pipeline.lifecycle.backup import run_backup
from mia_pipeline.lifecycle.blobstore import TargetSetupError
from mia_pipeline.lifecycle.catalog import encode_manifest, list_backups, target_for
from mia_pipeline.lifecycle.recover import validate_and_repair
from mia_pipeline.sources.sierra.files import configured_files
from mia_pipeline_tests.lifecycle._backup_data import (
    DAYS,
    backed_up,
    contents,
    flip,
    trade_lines,
)


@pytest.fixture
def data(layout, monkeypatch):
    return backed_up(layout, monkeypatch)


def test_a_symlinked_blob_folder_is_refused_and_nothing_outside_is_deleted(data, tmp_path):
    layout, store, settings = data
    target = target_for(layout, settings)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / ("ab" * 32)
    victim.write_text("not yours")
    (target.blobs_dir / "ab").mkdir(exist_ok=True)
    shard = target.blobs_dir / "zz"
    shard.symlink_to(outside)
    with pytest.raises(TargetSetupError, match="blobs/zz is a symbolic link"):
        run_backup(layout, settings, "incremental")
    assert victim.read_text() == "not yours"
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "backup", "--incremental"])
    assert res.exit_code == 2 and "symbolic link" in res.output and "Traceback" not in res.output


def test_a_symlinked_kind_folder_never_receives_manifests(data, tmp_path):
    layout, store, settings = data
    target = target_for(layout, settings)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.rmdir(target.root / "hourly")
    (target.root / "hourly").symlink_to(outside)
    with pytest.raises(TargetSetupError, match="hourly is a symbolic link"):
        run_backup(layout, settings, "incremental")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("bad_day", ["../../etc", "9999-99-99", "2025-02-30"])
def test_a_manifest_naming_an_invalid_day_is_skipped_and_repair_goes_on(data, bad_day):
    layout, store, settings = data
    target = target_for(layout, settings)
    (backup,) = list_backups(target)[0]
    files = dict(backup.files)
    ref = files[f"snapshots/daily/{DAYS[0]}/_manifest.json"]
    files[f"snapshots/daily/{bad_day}/_manifest.json"] = ref
    target.put_manifest(backup.kind, backup.id, encode_manifest(replace(backup, files=files)))
    good, damaged = list_backups(target)
    assert good == [] and "not a path of a data root" in damaged[f"daily/{backup.id}"]
    second = run_backup(layout, settings, "incremental")  # a good backup after it
    before = contents(store)
    flip(layout.dataset_file(DAYS[1], "trades"))
    report = validate_and_repair(layout, settings, store)
    assert report.unrepaired == {} and DAYS[1] in report.repaired and contents(store) == before
    assert f"daily/{backup.id}" in report.skipped_backups and second.id


def test_a_backup_target_inside_the_data_root_is_refused_without_waiting(data, tmp_path):
    layout, _, _ = data
    day_folder = layout.day_dir(DAYS[0])
    env = {**os.environ, "MIA_BACKUP_TARGET": str(day_folder), "MIA_DATA_DIR": str(layout.root)}
    for args in (["backup", "--full"], ["backup", "--list"], ["recover", "--validate-and-repair"]):
        res = subprocess.run([sys.executable, "-m", "mia_pipeline.cli.main", *args], env=env, capture_output=True,
                             text=True, timeout=120)  # a deadlock would hang until the timeout
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert "inside the data root" in res.stderr and "Traceback" not in res.stderr


def test_sierra_files_behind_a_symbolic_link_are_not_read(tmp_path):
    from mia_pipeline.settings import load_settings

    data = tmp_path / "Data"
    data.mkdir()
    secret = tmp_path / "secret.scid"
    secret.write_bytes(b"SCID" + b"\0" * 100)
    (data / "ESU25_FUT_CME.scid").symlink_to(secret)
    (data / "NQU25_FUT_CME.scid").write_bytes(b"SCID" + b"\0" * 100)
    settings = load_settings(env={"MIA_DATA_DIR": str(tmp_path / "root")}).sierra.model_copy(
        update={"data_dir": str(data)})
    assert [f.symbol for f in configured_files(settings)] == ["NQ"]
    named = settings.model_copy(update={"files": {"ES": "ESU25_FUT_CME.scid"}})
    with pytest.raises(ValueError, match="symbolic link"):
        configured_files(named)


def test_one_damaged_day_never_stops_the_loop_collector(data):
    layout, store, _ = data
    manifest = json.loads(layout.manifest_file(DAYS[0]).read_text())
    manifest["datasets"]["trades"]["staged"] = f"../{DAYS[1]}/trades.parquet"  # out of its day folder
    layout.manifest_file(DAYS[0]).write_text(json.dumps(manifest))
    with open(layout.streaming_dir / "late.jsonl", "ab") as fh:
        for day in (DAYS[0], DAYS[2]):
            fh.write(trade_lines(day).replace(b"TRADE_", b"LATE_").replace(b'"t-', b'"lt-').replace(b'"x-', b'"lx-')
                     .replace(b'"k-', b'"lk-'))
    reports = []
    assert run_collector(layout, store, interval=0.01, max_passes=3, on_report=reports.append) == 3
    assert len(reports) == 3 and DAYS[0] in reports[0].damaged  # the damaged day waits, said so...
    ids = store.read(DAYS[2], "trades").column("trade_id").to_pylist()
    assert sum(i.startswith("LATE_") for i in ids) == 3  # ...and the other day landed
    status = json.loads(layout.live_view("system_status.json").read_text())
    assert any(u.startswith(f"{DAYS[0]}/trades") for u in status["unreadable_partitions"])
