"""The lifecycle in Dagster: schedules on the guide's crontab, the monthly archive, backups, retention,
optimisation and integrity, each recording what it changed as the partitions' own truth.

Protects: every cron string, time zone and target job; a month's archive run re-materializes each
archived (dataset, day) with its archive facts (path = month file) so Dagster and the disk agree and
nothing is left "unrecorded"; a backup run records the backup, and a failed one records a WARNING alert
and fails; retention refuses data without a verified backup (alert, failed run) and, after a backup,
records each removed day as holding nothing, and why; a damaged partition fails the integrity job with an
ERROR alert; the Sunday archive schedule asks for each month that holds days past the archive age.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from mia_pipeline.defs import schedules as S
from mia_pipeline.defs.lifecycle import (
    backup_snapshot,
    daily_integrity,
    daily_maintenance,
    snapshot_archive,
)
from mia_pipeline.defs.recording import unrecorded
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.layout import DATASETS
from mia_pipeline.quality.alerts import read_alerts
from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.lifecycle._archive_data import DAYS, rows


@pytest.mark.parametrize(("schedule", "cron", "job"), [
    (S.hourly_backup_schedule, "0 * * * *", "hourly_backup"),
    (S.daily_backup_schedule, "0 2 * * *", "daily_backup"),
    (S.daily_maintenance_schedule, "0 3 * * *", "daily_maintenance"),
    (S.daily_integrity_schedule, "0 4 * * *", "daily_integrity"),
    (S.weekly_archive_schedule, "0 1 * * 0", "archive_months"),
    (S.weekly_backup_schedule, "0 1 * * 0", "weekly_backup"),
    (S.weekly_ml_dataset_schedule, "0 2 * * 0", "weekly_ml_dataset"),
])
def test_schedules_are_the_guides_crontab(schedule, cron, job):
    assert (schedule.cron_schedule, schedule.job_name, schedule.execution_timezone) == (cron, job, "America/New_York")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


@pytest.fixture
def lay(lay, monkeypatch):
    """The shared data root, with retention far away and the default archive age (2025 test days)."""
    monkeypatch.setenv("MIA_RETENTION_DAYS", "100000")
    monkeypatch.setenv("MIA_ARCHIVE_AFTER_DAYS", "90")
    return lay


def _res(lay):
    return {"mia": MiaResource(data_dir=str(lay.root))}


def test_a_months_archive_is_recorded_as_each_days_truth(lay):
    store = PartitionStore(lay)
    before = rows(store)
    instance = dg.DagsterInstance.ephemeral()
    res = dg.materialize([snapshot_archive], partition_key="2025-07-01", resources=_res(lay), instance=instance)
    assert res.success
    july = [d for d in DAYS if d.startswith("2025-07")]
    (month_meta,) = [m.metadata for m in res.asset_materializations_for_node("snapshot_archive")
                     if m.asset_key == dg.AssetKey("snapshot_archive")]
    assert month_meta["days_archived"].value == july and month_meta["day_folders_removed"].value == len(july)
    signals = {m.partition: m.metadata for m in (e.materialization for e in res.get_asset_materialization_events())
               if m.asset_key == dg.AssetKey("signals")}
    assert sorted(signals) == july
    for day, meta in signals.items():
        assert "archive/2025-07/signals." in meta["path"].value and "archived" in meta
        assert meta["dagster/row_count"].value == store.archived(day, "signals")[1]["rows"] > 0
    assert rows(store) == before                      # readers see the same rows
    assert lay.days_present() == ["2025-06-30"]       # the June day is not in the July partition
    assert unrecorded(instance, store, ["signals"]) == {"signals": ["2025-06-30"]}  # never recorded here


def test_backup_run_records_the_backup_and_a_failure_alerts(lay, monkeypatch):
    cfg = {"ops": {"backup_snapshot": {"config": {"mode": "full"}}}}
    res = dg.materialize([backup_snapshot], resources=_res(lay), run_config=cfg, instance=dg.DagsterInstance.ephemeral())
    meta = res.asset_materializations_for_node("backup_snapshot")[0].metadata
    assert meta["mode"].value == "full" and meta["files"].value > 0 and meta["backup_id"].value.startswith("daily/")
    monkeypatch.setenv("MIA_BACKUP_TARGET", str(lay.root.parent / "unmounted-disk"))
    bad = dg.materialize([backup_snapshot], resources=_res(lay), run_config=cfg, raise_on_error=False,
                         instance=dg.DagsterInstance.ephemeral())
    assert not bad.success
    (alert,) = read_alerts(lay)
    assert alert["level"] == "WARNING" and alert["source"] == "backup" and "does not exist" in alert["message"]


def test_retention_refuses_unbacked_data_then_wipes_what_it_removes(lay, monkeypatch):
    monkeypatch.setenv("MIA_RETENTION_DAYS", "30")
    monkeypatch.setenv("MIA_ARCHIVE_AFTER_DAYS", "20")
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize([snapshot_archive], partition_key="2025-06-01", resources=_res(lay), instance=instance,
                   tags={"note": "records June"})
    refused = daily_maintenance.execute_in_process(resources=_res(lay), instance=instance, raise_on_error=False)
    assert not refused.success and any(a["source"] == "retention" for a in read_alerts(lay))
    assert (lay.archive_month_dir("2025-06")).exists() and lay.days_present()  # nothing deleted
    full = {"ops": {"backup_snapshot": {"config": {"mode": "full"}}}}
    assert dg.materialize([backup_snapshot], resources=_res(lay), run_config=full, instance=instance).success
    done = daily_maintenance.execute_in_process(resources=_res(lay), instance=instance)
    assert done.success and lay.days_present() == [] and not lay.archive_month_dir("2025-06").exists()
    for day in DAYS:  # June (archived, then removed with its month) and the July days (removed from daily)
        latest = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("signals"), asset_partitions=[day]), limit=1).records[0].asset_materialization
        assert latest.metadata["dagster/row_count"].value == 0 and "retention" in latest.metadata["removed"].value


def test_integrity_job_fails_on_damage_with_an_error_alert(lay):
    clean = daily_integrity.execute_in_process(resources=_res(lay))
    assert clean.success
    gx = {(e.asset_key.to_user_string(), e.partition) for e in clean.get_asset_check_evaluations()
          if e.check_name == "gx_completeness" and e.passed}
    assert gx == {(ds, d) for ds in DATASETS for d in DAYS}  # the nightly run evaluates the GX suites
    path = lay.dataset_file(DAYS[0], "signals")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    res = daily_integrity.execute_in_process(resources=_res(lay), raise_on_error=False)
    assert not res.success
    (alert,) = read_alerts(lay)
    assert alert["level"] == "ERROR" and "sha256" in alert["message"]


def test_sunday_archive_schedule_asks_for_each_month_due(lay):
    ctx = dg.build_schedule_context(resources=_res(lay),
                                    scheduled_execution_time=datetime(2025, 12, 7, 1, tzinfo=ZoneInfo("America/New_York")))
    requests = S.weekly_archive_schedule(ctx)
    assert [r.partition_key for r in requests] == ["2025-06-01", "2025-07-01"]
    early = dg.build_schedule_context(resources=_res(lay),
                                      scheduled_execution_time=datetime(2025, 7, 6, 1, tzinfo=ZoneInfo("America/New_York")))
    assert isinstance(S.weekly_archive_schedule(early), dg.SkipReason)
