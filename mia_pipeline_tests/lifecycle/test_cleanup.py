"""Retention (`mia cleanup`): removes exactly what is past the age — day folders, whole archive months,
quarantine — and nothing newer; refuses data without a verified backup unless --force; lists what it
removes; a dry run changes nothing; bad ages are exit 2 with nothing changed. One test uses a real
backup (and one its bit-rotted blob), the others stand in for the proven contents."""

from datetime import date

import pyarrow as pa
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.collection.integrity import integrity_problems
from mia_pipeline.collection.quarantine import QUARANTINE_SCHEMA, write_rejects
from mia_pipeline.lifecycle.archive import archive_month
from mia_pipeline.lifecycle.retention import RetentionError, cleanup, parse_age
from mia_pipeline.storage import PartitionStore, sha256_file
from mia_pipeline_tests.lifecycle._archive_data import DAYS, view_rows

# 2026-07-01 minus 365 days = 2025-07-01: 2025-06-30 and the month 2025-06 are past, 2025-07 is not.
TODAY = date(2026, 7, 1)


def _reject(layout, day):
    write_rejects(layout, day, pa.Table.from_pylist([{
        "file": "a.jsonl", "offset": 0, "reason": "bad_json", "detail": "x", "line": b"{", "received_at": 0}],
        schema=QUARANTINE_SCHEMA))


def _backups(monkeypatch, hashes):
    """Stand in for the backups: the contents proven backed up are ``hashes`` (a set or a callable)."""
    from mia_pipeline.lifecycle import retention

    monkeypatch.setattr(retention, "_backed_up", lambda layout, settings: hashes() if callable(hashes) else hashes)


def _everything(layout):
    return {sha256_file(p) for p in layout.root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("text, days", [("365d", 365), ("365days", 365), ("30", 30), (" 7D ", 7)])
def test_parse_age(text, days):
    assert parse_age(text) == days


@pytest.mark.parametrize("text", ["abc", "-5d", "0d", "5w", "1e3d", "", "999999999d"])
def test_bad_ages_are_refused(text):
    with pytest.raises(RetentionError, match="invalid age"):
        parse_age(text)


def test_removes_what_is_past_retention_and_keeps_the_rest(lay, monkeypatch):
    store = PartitionStore(lay)
    archive_month(lay, store, "2025-06")
    archive_month(lay, store, "2025-07", [DAYS[1]])
    for d in ("2025-06-30", "2025-07-02"):
        _reject(lay, d)
    _backups(monkeypatch, lambda: _everything(lay))
    keep = store.read_window("trades", "2025-07-01", "2025-07-31").to_pylist()
    report = cleanup(lay, None, 365, today=TODAY)
    assert sorted((d.kind, d.name) for d in report.removed) == [("archive", "2025-06"), ("quarantine", "2025-06-30")]
    assert report.refused == [] and report.cutoff == "2025-07-01"
    assert store.read_window("trades", "2025-06-01", "2025-06-30").num_rows == 0
    assert store.read_window("trades", "2025-07-01", "2025-07-31").to_pylist() == keep
    assert lay.quarantine_days() == ["2025-07-02"]
    assert integrity_problems(lay, store) == []
    assert "trades" in view_rows(lay)  # the views were refreshed without the deleted month


def test_a_month_is_kept_while_any_of_its_days_is_within_retention(lay, monkeypatch):
    store = PartitionStore(lay)
    archive_month(lay, store, "2025-07")
    _backups(monkeypatch, lambda: _everything(lay))
    report = cleanup(lay, None, 365, today=date(2026, 7, 2))  # cutoff 2025-07-02: 07-01 is past, 07-02 is not
    assert [(d.kind, d.name) for d in report.removed] == [("daily", "2025-06-30")]
    assert store.days("trades") == ["2025-07-01", "2025-07-02"]


def test_data_without_a_verified_backup_is_kept_unless_forced(lay, monkeypatch):
    _backups(monkeypatch, set())
    runner = CliRunner()
    res = runner.invoke(cli, ["cleanup", "--older-than", "365d"], catch_exceptions=False)
    assert res.exit_code == 1 and "KEPT daily 2025-06-30" in res.output and "mia backup" in res.output
    assert lay.days_present() == list(DAYS)
    res = runner.invoke(cli, ["cleanup", "--older-than", "3d", "--force", "--dry-run"])
    assert res.exit_code == 0 and "would delete daily 2025-06-30" in res.output
    assert lay.days_present() == list(DAYS)
    res = runner.invoke(cli, ["cleanup", "--older-than", "3d", "--force"])
    assert res.exit_code == 0 and "deleted daily 2025-07-02" in res.output
    assert lay.days_present() == []


def test_a_file_changed_since_the_backup_is_not_backed_up(lay, monkeypatch):
    hashes = _everything(lay)
    hashes.discard(sha256_file(PartitionStore(lay).committed_file(DAYS[0], "trades")))
    _backups(monkeypatch, hashes)
    report = cleanup(lay, None, 365, today=TODAY)
    assert [d.name for d in report.refused] == [DAYS[0]] and report.refused[0].not_backed_up == ["trades.parquet"]
    assert DAYS[0] in lay.days_present()


def test_with_a_real_verified_backup(lay):
    backup = pytest.importorskip("mia_pipeline.lifecycle.backup")
    from mia_pipeline.settings import load_settings

    settings = load_settings(env={"MIA_DATA_DIR": str(lay.root)})
    assert cleanup(lay, settings, 365, today=TODAY, dry_run=True).refused  # nothing backed up yet
    backup.run_backup(lay, settings, "full")
    report = cleanup(lay, settings, 365, today=TODAY)
    assert [(d.kind, d.name) for d in report.removed] == [("daily", "2025-06-30")] and report.refused == []


def test_a_bit_rotted_blob_proves_nothing_and_its_day_is_kept(lay):
    """Issue 25: one flipped byte in the only backup of a day's file (same size: presence checks pass)."""
    from mia_pipeline.lifecycle.backup import run_backup
    from mia_pipeline.lifecycle.catalog import list_backups, target_for
    from mia_pipeline.settings import load_settings
    from mia_pipeline_tests.lifecycle._backup_data import flip

    settings = load_settings(env={"MIA_DATA_DIR": str(lay.root)})
    run_backup(lay, settings, "full")
    (backup,), _ = list_backups(target_for(lay, settings))
    ref = backup.files["snapshots/daily/2025-06-30/trades.parquet"]
    flip(target_for(lay, settings).blob_path(ref.sha256))
    before = PartitionStore(lay).read("2025-06-30", "trades")
    report = cleanup(lay, settings, 365, today=TODAY)
    assert report.removed == [] and [(d.kind, d.name) for d in report.refused] == [("daily", "2025-06-30")]
    assert report.refused[0].not_backed_up == ["trades.parquet"]
    assert PartitionStore(lay).read("2025-06-30", "trades").equals(before)  # nothing lost


@pytest.mark.parametrize("age", ["abc", "-5d", "0d", "365w"])
def test_bad_age_on_the_command_line_is_exit_2_and_changes_nothing(lay, age):
    res = CliRunner().invoke(cli, ["cleanup", "--older-than", age, "--force"])
    assert res.exit_code == 2 and "invalid age" in res.output, res.output
    assert lay.days_present() == list(DAYS)
