"""Lifecycle in Dagster: the monthly archive, backups, retention, optimisation and integrity.

Thin wrappers over ``mia_pipeline.lifecycle`` (the functions `mia archive|backup|cleanup|optimize|
check-integrity` call). Whatever they change in the daily partitions is recorded as those partitions'
own truth: an archived day is materialized again with its archive facts (path: the month file), a
day removed by retention is materialized with 0 rows and why, an optimised partition is materialized
with its new file's figures.
"""

import dagster as dg

from mia_pipeline.defs.partitions import monthly_partitions
from mia_pipeline.defs.recording import gx_evaluations, record_events, record_written, run_name, unrecorded
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.layout import DATASETS, RAW_EVENTS

BACKUP_MODES = ("incremental", "full", "archive")
GX_RECENT_DAYS = 7  # the nightly integrity run evaluates the Great Expectations suites of the newest days


def _alert(layout, level: str, source: str, message: str, **context) -> None:
    from mia_pipeline.quality.alerts import report_alert as record_alert

    try:
        record_alert(layout, level, source, message, **context)
    except OSError:
        pass  # the data root refuses writes: the failed run still says it


@dg.asset(group_name="lifecycle", kinds={"parquet"}, deps=list(DATASETS), partitions_def=monthly_partitions,
          pool="duckdb")
def snapshot_archive(context: dg.AssetExecutionContext, mia: MiaResource) -> dg.MaterializeResult:
    """The month's archive: its days older than ``archive_after_days`` compacted into one verified file
    per dataset.

    Grain: one file per (dataset, month) holding every archived day's rows (row groups per day) plus a
    month manifest (per-day rows, content hash, file sha256). Source: the daily partitions of the
    month. Partition: calendar month (UTC); days of the month still younger than the archive age stay
    daily. Path: data/snapshots/archive/YYYY-MM/<dataset>.<generation>.parquet + _manifest.json. Each
    archived (dataset, day) is materialized again with its archive facts; readers, views and the ML
    builder see archived days as before.
    """
    from mia_pipeline.lifecycle.archive import ArchiveError, archive_cutoff, archive_month
    from mia_pipeline.storage.archive_index import month_location

    layout, store, settings = mia.layout(), mia.store(), mia.settings()
    month = context.partition_key[:7]
    cutoff = archive_cutoff(settings.archive_after_days).isoformat()
    days = [d for d in store.days_present() if d[:7] == month and d < cutoff]
    try:
        report = archive_month(layout, store, month, days)
    except ArchiveError as exc:
        raise dg.Failure(description=str(exc)) from None
    record_events(context.log_event, context.instance, store, {ds: report.days for ds in (*DATASETS, RAW_EVENTS)})
    return dg.MaterializeResult(metadata={
        "month": month, "days_archived": dg.MetadataValue.json(report.days),
        "day_folders_removed": len(report.removed), "bytes_daily": report.bytes_daily,
        "bytes_month": report.bytes_month, "archive_before": cutoff,
        "path": dg.MetadataValue.path(str(month_location(layout, month))),
    })


class BackupRunConfig(dg.Config):
    mode: str = "incremental"  # incremental (hourly) | full (daily) | archive (weekly)


@dg.asset(group_name="lifecycle", kinds={"backup"}, deps=[*DATASETS, snapshot_archive])
def backup_snapshot(context: dg.AssetExecutionContext, config: BackupRunConfig, mia: MiaResource):
    """The newest verified backup of the data root.

    Grain: one materialization per backup (id, kind, files, bytes, new content, blobs verified).
    Source: daily partitions, raw lines, quarantine, manifests, the archive, processed datasets and the
    settings file. Partition: none. Path: the backup target (``backup.target``, default
    data/backups/): blobs/<sha256> + <hourly|daily|weekly>/<id>.json. A failure or damaged data found
    records a WARNING alert (data/reports/alerts.jsonl) and fails the run.
    """
    from mia_pipeline.lifecycle.backup import run_backup

    if config.mode not in BACKUP_MODES:
        raise dg.Failure(description=f"backup mode {config.mode!r}: use one of {', '.join(BACKUP_MODES)}")
    layout, settings = mia.layout(), mia.settings()
    try:
        result = run_backup(layout, settings, config.mode, config_file=mia.config_path or None, store=mia.store())
    except (OSError, ValueError, RuntimeError) as exc:  # BackupError, TargetError are among these
        _alert(layout, "WARNING", "backup", f"backup failed: {exc}", mode=config.mode)
        raise dg.Failure(description=f"backup failed: {exc} (the previous backups are intact)") from None
    yield dg.MaterializeResult(metadata={
        "backup_id": f"{result.kind}/{result.id}", "mode": result.mode, "files": result.files,
        "bytes": result.bytes, "new_blobs": result.new_blobs, "new_bytes": result.new_bytes,
        "verified_blobs": result.verified_blobs, "removed_backups": len(result.removed_backups),
        "path": dg.MetadataValue.path(result.location),
        **({"damaged": dg.MetadataValue.json(result.damaged)} if result.damaged else {}),
    })
    if result.damaged:
        message = (f"backup {result.kind}/{result.id} written, but {len(result.damaged)} damaged item(s) were not "
                   "backed up as they are: run `mia recover --validate-and-repair`")
        _alert(layout, "WARNING", "backup", message, damaged=sorted(result.damaged))
        raise dg.Failure(description=message)


@dg.op(required_resource_keys={"mia"})
def retention_cleanup(context: dg.OpExecutionContext) -> None:
    """Delete what is past ``retention_days`` (never data without a verified backup) and record each
    removed (dataset, day) as holding nothing, deleted by retention."""
    from mia_pipeline.lifecycle.retention import cleanup

    mia: MiaResource = context.resources.mia
    layout, settings, store = mia.layout(), mia.settings(), mia.store()
    stored_before = set(store.readable_manifests()[0])  # daily and archived days
    report = cleanup(layout, settings, settings.retention_days)
    days = sorted(stored_before - set(store.readable_manifests()[0]))
    months = sorted(d.name for d in report.removed if d.kind == "archive")
    # Dagster's SQL storages cannot wipe single partitions: each removed day is recorded as what it now
    # is, a day with nothing stored, saying why.
    removed = {"removed": dg.MetadataValue.md(f"Deleted by retention (before {report.cutoff}).")}
    record_events(context.log_event, context.instance, store, {ds: days for ds in (*DATASETS, RAW_EVENTS)},
                  extra=removed)
    context.log.info(f"retention before {report.cutoff}: removed {len(report.removed)} item(s) "
                     f"({report.bytes_removed:,} bytes): days {days}, months {months}")
    if report.refused:
        names = ", ".join(f"{d.kind} {d.name}" for d in report.refused[:10])
        _alert(layout, "WARNING", "retention", f"kept {len(report.refused)} item(s) past retention without a "
               f"verified backup: {names}", refused=[d.name for d in report.refused])
        raise dg.Failure(description=f"kept {len(report.refused)} item(s) past retention that have no verified "
                                     f"backup ({names}); run a full backup, the next cleanup removes them")


@dg.op(required_resource_keys={"mia"}, ins={"after_cleanup": dg.In(dg.Nothing)})
def optimize_partitions(context: dg.OpExecutionContext) -> None:
    """Rewrite closed days' partitions sorted by (symbol, ts) with statistics and Bloom filters, and
    materialize each rewritten (dataset, day) with its new file's figures."""
    from mia_pipeline.lifecycle.optimize import optimize

    mia: MiaResource = context.resources.mia
    layout, store = mia.layout(), mia.store()
    report = optimize(layout, store)
    written: dict[str, list[str]] = {}
    for item in report.rewritten:
        day, ds = item.split("/")
        written.setdefault(ds, []).append(day)
    record_events(context.log_event, context.instance, store, written)
    context.log.info(f"optimised {len(report.rewritten)} partition(s), {report.skipped} already optimised: "
                     f"{report.bytes_before:,} -> {report.bytes_after:,} bytes")


@dg.op(required_resource_keys={"mia"})
def integrity_check(context: dg.OpExecutionContext) -> None:
    """`mia check-integrity`: every partition against its manifest, archives, state files, and across days
    (ids on several days, trading-day gaps, archives without backup); a problem is an ERROR alert and fails
    the run. Also evaluates the daily Great Expectations suites (``gx_completeness``) of the newest 7 days, and
    records in Dagster every stored day it does not know as stored (a writer that died before recording)."""
    from mia_pipeline.collection.audit import audit
    from mia_pipeline.collection.integrity import integrity_problems, record_integrity_result

    mia: MiaResource = context.resources.mia
    layout, store = mia.layout(), mia.store()
    problems = integrity_problems(layout, store) + audit(layout, store, mia.settings()).problems
    # Every day the disk holds that Dagster has not recorded as it is (the writers' catch-up looks back 2 days).
    missing = unrecorded(context.instance, store, window_s=None)
    if missing:
        context.log.warning(f"recording days stored but not recorded: {missing}")
        record_written(context.log_event, context.instance, store, missing)
    recent = store.days_present()[-GX_RECENT_DAYS:]
    for event in gx_evaluations(store, {ds: recent for ds in DATASETS}, context.instance, run_name(context)):
        context.log_event(event)
    record_integrity_result(layout, problems, "every stored day and the range across them", "daily_integrity job")
    if problems:
        _alert(layout, "ERROR", "integrity", f"{len(problems)} integrity problem(s): {problems[0]}",
               problems=problems[:50])
        raise dg.Failure(description=f"{len(problems)} problem(s): " + "; ".join(problems[:20]),
                         metadata={"problems": dg.MetadataValue.json(problems[:200])})
    context.log.info("integrity: 0 problems")


@dg.job(description="Daily 03:00 (guide `cleanup_data.py --optimize`): retention, then optimise closed days.")
def daily_maintenance():
    optimize_partitions(retention_cleanup())


@dg.job(description="Daily 04:00 (guide `validate_data_integrity.py`): `mia check-integrity`.")
def daily_integrity():
    integrity_check()


def _backup_job(name: str, mode: str, description: str):
    return dg.define_asset_job(name, selection=dg.AssetSelection.assets(backup_snapshot),
                               config={"ops": {"backup_snapshot": {"config": {"mode": mode}}}},
                               executor_def=dg.in_process_executor, description=description)


hourly_backup = _backup_job("hourly_backup", "incremental", "Hourly incremental backup (`mia backup --incremental`).")
daily_backup = _backup_job("daily_backup", "full", "Daily full backup, every blob re-verified (`mia backup --full`).")
weekly_backup = _backup_job("weekly_backup", "archive", "Weekly archive backup (`mia backup --archive`).")
archive_months = dg.define_asset_job("archive_months", selection=dg.AssetSelection.assets(snapshot_archive),
                                     executor_def=dg.in_process_executor,
                                     description="Archive the days of a month past archive_after_days.")
