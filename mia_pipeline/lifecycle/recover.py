"""`mia recover --validate-and-repair`: check every day against its manifest and repair what is damaged.

For each day folder (interrupted commits finished first):

- a dataset file that does not match its manifest entry is rewritten from the backup blob with the
  sha256 the manifest expects (any verified backup's copy: blobs are named by content, and a copy is
  re-hashed before it is used); without one, the dataset is rebuilt from the day's raw lines;
- a day whose manifest is damaged or lost is restored whole from the newest backup good for it.

Days the newest good backup holds that are missing here are restored too, except days retention may
have removed on purpose: days of a month already in ``snapshots/archive/``, and days older than both
the retention horizon (``retention_days`` before today) and the oldest day still here. When no day is
left at all, every day of the backup comes back.

Archived months (``snapshots/archive/<month>/``) are checked too: a month file that does not match its
month manifest comes back from the blob with the sha256 the manifest expects; a damaged or lost month
manifest comes back, with the files it names, from the newest backup whose copies all verify (the
manifest written last: the commit point).

Each day is verified after its repair; what could not be repaired is reported, never hidden.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from mia_pipeline.collection.rebuild import RebuildError, rebuild_day
from mia_pipeline.layout import DATASETS, RAW_EVENTS, Layout, LayoutError
from mia_pipeline.lifecycle.archive import month_lock
from mia_pipeline.lifecycle.blobstore import BackupTarget
from mia_pipeline.lifecycle.catalog import Backup, BlobChecker, FileRef, list_backups
from mia_pipeline.lifecycle.restore import RestoreError, copy_blob, install_day, open_target, restore_day
from mia_pipeline.settings import Settings
from mia_pipeline.storage import PartitionStore, StorageError, archive_index
from mia_pipeline.storage.atomic import atomic_write, atomic_write_bytes, locked


@dataclass
class RepairReport:
    checked: int = 0
    repaired: dict[str, list[str]] = field(default_factory=dict)  # day -> what was done
    unrepaired: dict[str, list[str]] = field(default_factory=dict)  # day -> problems left
    written: dict[str, set[str]] = field(default_factory=dict)  # dataset -> days written (for Dagster)
    skipped_backups: dict[str, str] = field(default_factory=dict)

    def wrote(self, day: str, datasets) -> None:
        for ds in datasets:
            self.written.setdefault(ds, set()).add(day)


def _missing_days(store: PartitionStore, settings: Settings, newest: Backup | None, today: date) -> list[str]:
    if newest is None:
        return []
    present = store.days_present()
    months = set(archive_index.archived_months(store.layout))
    horizon = (today - timedelta(days=settings.retention_days)).isoformat()
    oldest = present[0] if present else None
    out = []
    for day in newest.days():
        if day in present or day[:7] in months:
            continue
        if oldest is None or day >= horizon or day > oldest:
            out.append(day)
    return out


def _blob_for(sha: str, size: int, good: list[Backup], checker: BlobChecker) -> FileRef | None:
    for backup in good:
        for ref in backup.files.values():
            if ref.sha256 == sha and ref.size == size:
                return ref if checker.ok(ref) else None
    return None


def _repair_files(layout, store, target, day, good, checker, report, known_symbols) -> None:
    """The day's manifest is readable: rewrite damaged files from backups, rebuild the rest."""
    manifest = store.manifest(day)
    bad = [ds for ds in manifest["datasets"] if store.verify_dataset(day, ds)]
    if not bad:
        return
    from_backup: dict[str, FileRef] = {}
    for ds in bad:
        entry = store.entry(day, ds)
        if ref := _blob_for(entry.sha256, entry.bytes, good, checker):
            from_backup[ds] = ref
    done = report.repaired.setdefault(day, [])
    if from_backup:
        fresh = store.manifest(day)
        for ds in from_backup:
            fresh["datasets"][ds]["staged"] = None
        install_day(store, target, day, fresh, from_backup)
        done.append(f"restored {', '.join(sorted(from_backup))} from backup")
        report.wrote(day, from_backup)
    rest = [ds for ds in bad if ds not in from_backup]
    if RAW_EVENTS in rest:
        report.unrepaired.setdefault(day, []).append("raw_events is damaged and no backup holds its good copy")
        rest.remove(RAW_EVENTS)
    if rest:
        try:
            counts = rebuild_day(store, day, known_symbols, datasets=[ds for ds in DATASETS if ds in rest])
        except RebuildError as exc:
            report.unrepaired.setdefault(day, []).append(f"{', '.join(rest)}: {exc}")
            return
        done.append(f"rebuilt {', '.join(sorted(counts))} from the raw lines")
        report.wrote(day, counts)


def _restore_whole(layout, settings, store, target, day, report, why: str) -> None:
    try:
        result = restore_day(layout, settings, store, day, target=target)
    except (RestoreError, ValueError) as exc:
        report.unrepaired.setdefault(day, []).append(f"{why}; {exc}")
        return
    report.skipped_backups |= result.skipped
    kept = (f"; {result.kept_newer} raw line(s) stored here and in no backup kept, the day's datasets rebuilt "
            "with them") if result.kept_newer else ""
    if result.reread:
        kept += f"; the raw lines stored here were lost with the day's manifest: {result.reread}"
    report.repaired.setdefault(day, []).append(f"{why}: restored from {result.backup_id}{kept}")
    if result.not_kept:
        report.unrepaired.setdefault(day, []).append(result.not_kept)
    report.wrote(day, result.datasets)
    for ds, problem in sorted(result.unrestored.items()):
        report.unrepaired.setdefault(day, []).append(f"{ds}: {problem}")


MONTH_PROBLEM = re.compile(r"^archive (\d{4}-\d{2})\b")


def _repair_months(layout: Layout, target: BackupTarget, good: list[Backup], checker: BlobChecker,
                   report: RepairReport) -> None:
    """Archived months that do not verify: a damaged month file comes back from the blob with the sha256 its
    month manifest expects; a damaged or lost month manifest comes back with its files from the newest backup
    whose copy of them all verifies."""
    from mia_pipeline.collection.integrity import archive_problems

    months = sorted({m.group(1) for p in archive_problems(layout) if (m := MONTH_PROBLEM.match(p))})
    for month in months:
        key = f"archive {month}"
        report.checked += 1
        with locked(layout.ingest_lock_file), month_lock(layout, month):
            done, problem = _repair_month(layout, target, good, checker, month)
        if done:
            report.repaired.setdefault(key, []).append(done)
        if problem:
            report.unrepaired.setdefault(key, []).append(problem)
        for left in (p for p in archive_problems(layout) if p.startswith(key) and problem is None):
            report.unrepaired.setdefault(key, []).append(left)


def _repair_month(layout: Layout, target: BackupTarget, good: list[Backup], checker: BlobChecker,
                  month: str) -> tuple[str | None, str | None]:
    """(what was done, what is left) for one archived month. Caller holds the month's lock."""
    if layout.store is None:
        lost = not archive_index.month_manifest_path(layout, month).exists()
    else:
        lost = not archive_index.objects(layout).exists(archive_index.month_rel(month, archive_index.MONTH_MANIFEST))
    try:
        manifest = None if lost else archive_index.read_month_manifest(layout, month)
    except archive_index.ArchiveDamaged:
        manifest = None
    if manifest is not None:
        fixed, missing = [], []
        for ds, entry in sorted(manifest["datasets"].items()):
            if archive_index.month_file_sha256(layout, month, entry["file"]) == entry["sha256"]:
                continue
            ref = _blob_for(entry["sha256"], entry["bytes"], good, checker)
            if ref is None:
                missing.append(f"{ds} ({entry['file']}): no backup holds its good copy")
                continue
            _put_month_file(layout, target, month, entry["file"], ref)
            fixed.append(entry["file"])
        return (f"restored {', '.join(fixed)} from backup" if fixed else None,
                "; ".join(missing) if missing else None)
    prefix = f"snapshots/archive/{month}/"
    for backup in good:  # newest first
        ref = backup.files.get(prefix + archive_index.MONTH_MANIFEST)
        if ref is None or not checker.ok(ref):
            continue
        with target.open_blob(ref.sha256) as fh:
            data = fh.read()
        try:
            saved = archive_index.parse_month_manifest(data, month, f"{backup.kind}/{backup.id}")
        except archive_index.ArchiveDamaged:
            continue
        refs = {e["file"]: backup.files.get(prefix + e["file"]) for e in saved["datasets"].values()}
        if not all(r is not None and r.sha256 == e["sha256"] and checker.ok(r)
                   for e, r in ((e, refs[e["file"]]) for e in saved["datasets"].values())):
            continue
        for name, file_ref in refs.items():
            if archive_index.month_file_sha256(layout, month, name) != file_ref.sha256:
                _put_month_file(layout, target, month, name, file_ref)
        if layout.store is None:  # the commit point: last
            atomic_write_bytes(archive_index.month_manifest_path(layout, month), data)
        else:
            archive_index.objects(layout).put_bytes(archive_index.month_rel(month, archive_index.MONTH_MANIFEST), data)
        return f"the month manifest was {'lost' if lost else 'damaged'}: restored with its " \
               f"{len(refs)} file(s) from {backup.kind}/{backup.id}", None
    return None, "no backup holds a good copy of the month (its manifest and every file it names)"


def _put_month_file(layout: Layout, target: BackupTarget, month: str, name: str, ref) -> None:
    """A month file put back from its blob (sha256-checked on the way), atomically: a renamed temp file under
    the data root, or a published object on object storage."""
    if layout.store is None:
        atomic_write(archive_index.month_location(layout, month, name), lambda p: copy_blob(target, ref, p))
        return
    with tempfile.TemporaryDirectory(prefix=".month-", dir=layout.root / "live") as scratch:
        local = Path(scratch) / name
        copy_blob(target, ref, local)
        with open(local, "rb") as fh:
            archive_index.objects(layout).put_stream(archive_index.month_rel(month, name), fh)


def validate_and_repair(layout: Layout, settings: Settings, store: PartitionStore,
                        known_symbols: frozenset[str] | None = None, today: date | None = None,
                        target: BackupTarget | None = None) -> RepairReport:
    """Check and repair every day (see the module docstring). Raises TargetError when the backup
    target cannot be opened; every per-day failure is in the report instead."""
    target = target or open_target(layout, settings)
    today = today or datetime.now(UTC).date()
    report = RepairReport()
    with target.lock(exclusive=False):
        good, damaged = list_backups(target)
    report.skipped_backups |= {k: f"manifest damaged: {v}" for k, v in damaged.items()}
    checker = BlobChecker(target)
    missing = _missing_days(store, settings, good[0] if good else None, today)
    for day in sorted(set(store.days_present()) | set(missing)):
        report.checked += 1
        with locked(layout.ingest_lock_file):  # a collector's pass waits; nothing lands mid-repair
            _check_day(layout, settings, store, target, day, day in missing, good, checker, report, known_symbols)
    with target.lock(exclusive=False):
        _repair_months(layout, target, good, checker, report)
    return report


def _check_day(layout, settings, store, target, day, missing: bool, good, checker, report, known_symbols) -> None:
    """Repair one day (see the module docstring); what is left damaged goes to ``report``."""
    if missing:
        _restore_whole(layout, settings, store, target, day, report, "the day was missing")
        return
    try:
        store.recover(day)
    except (StorageError, OSError):
        pass  # judged below
    if not store.verify(day):
        return
    try:
        if store.orphan_files(day):
            raise StorageError("the day's manifest is lost")
        for name in store.manifest(day)["datasets"]:
            store.entry(day, name)
    except (StorageError, LayoutError) as exc:
        _restore_whole(layout, settings, store, target, day, report, f"damaged manifest ({exc})")
    else:
        with target.lock(exclusive=False):
            _repair_files(layout, store, target, day, good, checker, report, known_symbols)
    if problems := store.verify(day):
        report.unrepaired.setdefault(day, []).extend(p for p in problems
                                                     if p not in report.unrepaired.get(day, []))
