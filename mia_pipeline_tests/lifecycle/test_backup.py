"""Backups: complete content-addressed snapshots that cost only new content, verified after writing,
rotated like restic's forget, never trusting a damaged manifest, blob or source file.

Protects: dedup (a second full writes nothing new), what a backup covers, the verification re-read
(a rotten blob is rewritten), rotation + garbage collection, `verified_backups`/`backed_up_files`
(what retention relies on), damaged data never stored as valid, leftovers of a crash swept.
"""

import json

import pyarrow as pa
import pytest

from mia_pipeline.lifecycle.backup import run_backup
from mia_pipeline.lifecycle.blobstore import TargetError, TargetSetupError
from mia_pipeline.lifecycle.catalog import backed_up_files, list_backups, target_for, verified_backups
from mia_pipeline.quality.alerts import read_alerts, record_alert
from mia_pipeline.storage import sha256_file
from mia_pipeline_tests.lifecycle._backup_data import DAYS, build, flip, settings_for


@pytest.fixture
def data(layout):
    store = build(layout)
    (layout.processed_dir / "ml_ready" / "features.parquet").write_bytes(b"features")
    (layout.archive_dir / "2025-05").mkdir()
    (layout.archive_dir / "2025-05" / "trades.parquet").write_bytes(b"archived")
    return layout, store, settings_for(layout)


def test_a_full_backup_holds_every_file_and_a_second_one_writes_nothing_new(data, tmp_path):
    layout, store, settings = data
    cfg = tmp_path / "mia.yaml"
    cfg.write_text("timezone: UTC\n")
    first = run_backup(layout, settings, "full", config_file=cfg)
    assert first.kind == "daily" and not first.damaged
    (backup,), _ = list_backups(target_for(layout, settings))
    for day in DAYS:
        for ds in ("trades", "trade_exits", "market_ticks", "raw_events"):
            ref = backup.files[f"snapshots/daily/{day}/{ds}.parquet"]
            assert ref.sha256 == store.entry(day, ds).sha256 == sha256_file(layout.dataset_file(day, ds))
        assert f"snapshots/daily/{day}/_manifest.json" in backup.files
        assert backup.files[f"snapshots/quarantine/{day}/rejects.parquet"] if layout.quarantine_file(day).exists() else 1
    assert backup.files["processed/ml_ready/features.parquet"].size == 8
    assert "snapshots/archive/2025-05/trades.parquet" in backup.files
    assert "config/mia.yaml" in backup.files and backup.config_file == str(cfg)
    assert first.new_blobs == len({r.sha256 for r in backup.files.values()})

    again = run_backup(layout, settings, "full", config_file=cfg)
    assert again.new_blobs == 0 and again.new_bytes == 0  # content-addressed: only new content costs
    assert again.verified_blobs == again.files  # a full re-reads every blob it names

    store.write(DAYS[0], "market_ticks", pa.table({"x": [1, 2, 3]}))
    inc = run_backup(layout, settings, "incremental")
    assert inc.kind == "hourly" and inc.new_blobs == 2  # the new partition file + that day's manifest
    assert inc.read_bytes < first.read_bytes / 2  # unchanged files are not read again


def test_full_backup_rewrites_a_blob_that_no_longer_reads_back(data):
    layout, store, settings = data
    run_backup(layout, settings, "full")
    target = target_for(layout, settings)
    sha = store.entry(DAYS[1], "trades").sha256
    flip(target.blob_path(sha))
    assert not target.verify_blob(sha)
    result = run_backup(layout, settings, "full")
    assert target.verify_blob(sha) and not result.damaged


def test_a_damaged_partition_is_reported_and_the_backup_names_its_good_content(data):
    layout, store, settings = data
    run_backup(layout, settings, "full")
    path = layout.dataset_file(DAYS[0], "trades")
    good = store.entry(DAYS[0], "trades").sha256
    flip(path)
    result = run_backup(layout, settings, "full")
    rel = f"snapshots/daily/{DAYS[0]}/trades.parquet"
    assert "does not match its day manifest" in result.damaged[rel]
    newest = list_backups(target_for(layout, settings))[0][0]
    assert newest.files[rel].sha256 == good  # the good version, still held; never the damaged bytes
    assert sha256_file(path) not in target_for(layout, settings).blob_shas()


def test_a_damaged_partition_never_backed_up_before_is_left_out(layout):
    store = build(layout)
    settings = settings_for(layout)
    flip(layout.dataset_file(DAYS[2], "trades"))
    result = run_backup(layout, settings, "full")
    rel = f"snapshots/daily/{DAYS[2]}/trades.parquet"
    assert rel in result.damaged
    backup = list_backups(target_for(layout, settings))[0][0]
    assert rel not in backup.files and store.entry(DAYS[2], "trades").sha256 not in target_for(layout, settings).blob_shas()


def test_a_day_with_a_damaged_manifest_keeps_the_previous_backups_version(data):
    layout, _, settings = data
    run_backup(layout, settings, "full")
    layout.manifest_file(DAYS[1]).write_text("{not json")
    result = run_backup(layout, settings, "incremental")
    assert f"snapshots/daily/{DAYS[1]}/" in result.damaged
    newest, older = list_backups(target_for(layout, settings))[0]
    assert newest.day_files(DAYS[1]) == older.day_files(DAYS[1])


def test_rotation_keeps_the_newest_of_each_kind_and_collects_unreferenced_blobs(data):
    layout, store, _ = data
    settings = settings_for(layout, MIA_BACKUP_KEEP_HOURLY="2", MIA_BACKUP_KEEP_DAILY="1")
    target = target_for(layout, settings)
    run_backup(layout, settings, "full")
    ids = []
    for v in range(4):
        store.write(DAYS[0], "market_ticks", pa.table({"v": [v]}))
        ids.append(run_backup(layout, settings, "incremental").id)
    good, _ = list_backups(target)
    assert [b.id for b in good if b.kind == "hourly"] == ids[:1:-1]  # the newest two
    assert len([b for b in good if b.kind == "daily"]) == 1
    referenced = {r.sha256 for b in good for r in b.files.values()}
    assert target.blob_shas() == referenced  # the versions v0 and v1 only old backups named are gone
    run_backup(layout, settings, "full")
    assert len([b for b in list_backups(target)[0] if b.kind == "daily"]) == 1


def test_verified_backups_and_backed_up_files_exclude_damage(data):
    layout, store, settings = data
    assert verified_backups(layout, settings) == [] and backed_up_files(layout, settings) == set()
    run_backup(layout, settings, "full")
    store.write(DAYS[0], "market_ticks", pa.table({"x": [9]}))
    run_backup(layout, settings, "incremental")
    newest, older = verified_backups(layout, settings)
    shas = backed_up_files(layout, settings)
    assert store.entry(DAYS[0], "market_ticks").sha256 in shas
    assert sha256_file(layout.dataset_file(DAYS[1], "trades")) in shas
    target = target_for(layout, settings)
    new_only = store.entry(DAYS[0], "market_ticks").sha256
    flip(target.blob_path(new_only))
    assert [b.id for b in verified_backups(layout, settings)] == [newest.id, older.id]  # shallow: sizes only
    assert [b.id for b in verified_backups(layout, settings, deep=True)] == [older.id]
    assert new_only not in backed_up_files(layout, settings, deep=True)
    flip(target.manifest_path(older.kind, older.id), at=40)  # one flipped byte in a manifest
    assert verified_backups(layout, settings, deep=True) == []
    _, damaged = list_backups(target)
    assert "checksum mismatch" in damaged[f"{older.kind}/{older.id}"] or "JSON" in damaged[f"{older.kind}/{older.id}"]


def test_leftovers_of_an_interrupted_backup_are_swept_and_collected(data):
    layout, _, settings = data
    run_backup(layout, settings, "full")
    target = target_for(layout, settings)
    (target.tmp_dir / ".blob.abc.tmp").write_bytes(b"half a blob")
    orphan = "f" * 64
    target.blob_path(orphan).parent.mkdir(exist_ok=True)
    target.blob_path(orphan).write_bytes(b"no manifest names me")
    (target.root / "daily" / ".x.json.abc.tmp").write_bytes(b"{")
    run_backup(layout, settings, "incremental")
    assert not [p for p in target.root.rglob("*.tmp") if p.is_file()] and orphan not in target.blob_shas()


def test_a_configured_target_must_exist_and_be_a_backup_target_or_empty(layout, tmp_path):
    build(layout, DAYS[:1])
    missing = tmp_path / "not-mounted"
    with pytest.raises(TargetError, match="does not exist: mount the backup disk"):
        run_backup(layout, settings_for(layout, MIA_BACKUP_TARGET=str(missing)), "full")
    assert not missing.exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "photos").mkdir()
    with pytest.raises(TargetSetupError, match="not empty and is not a mia backup target"):
        run_backup(layout, settings_for(layout, MIA_BACKUP_TARGET=str(busy)), "full")
    assert sorted(p.name for p in busy.iterdir()) == ["photos"]
    empty = tmp_path / "disk"
    empty.mkdir()
    assert run_backup(layout, settings_for(layout, MIA_BACKUP_TARGET=str(empty)), "full").files > 0
    assert json.loads((empty / "mia-backup.json").read_text())["format"] == 1


def test_record_alert_appends_one_json_line_per_alert(layout):
    record_alert(layout, "WARNING", "backup", "backup failed: disk full", mode="full", target="/mnt/b")
    record_alert(layout, "INFO", "backup", "ok")
    alerts = read_alerts(layout)
    assert [a["level"] for a in alerts] == ["WARNING", "INFO"]
    assert alerts[0]["context"] == {"mode": "full", "target": "/mnt/b"} and alerts[0]["source"] == "backup"
    assert alerts[0]["ts"].endswith("Z")
    with pytest.raises(ValueError, match="unknown alert level"):
        record_alert(layout, "LOUD", "backup", "x")
    assert len(read_alerts(layout)) == 2
