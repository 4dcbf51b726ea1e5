"""Retention: delete what is past ``retention_days`` — only what a verified backup holds, unless forced.

What goes (days strictly before the cutoff ``today - older_than``, UTC):

- daily folders (their datasets, raw lines and manifest);
- archive months whose every day is before the cutoff (a month is kept whole while any day of it is
  still within retention);
- quarantine day folders.

The landing zone is never touched (its files belong to the writers). An item is *backed up* when the
sha256 of every file in it (Parquet files and manifests) is held by a verified backup and its blob
re-hashes to that sha256 now (``mia_pipeline.lifecycle.catalog.proven_blobs``: a bit-rotted blob restores
nothing, so it proves nothing); items that are not are kept and
listed (``refused``) unless ``force``. Each removal renames the folder out of sight first (see
:func:`~mia_pipeline.storage.publish.remove_tree`), so a crash never leaves half a day visible and a
re-run finishes the job; archive months are dropped from the DuckDB views before they are deleted.

Example: ``cleanup(layout, settings, 365, today=date(2026, 7, 1))`` removes 2025-06-30 and the month
2025-05 (if backed up) and keeps 2025-07-01 and the month 2025-06 (its 30th is past, its 1st too,
but the whole month must be).
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from mia_pipeline.layout import Layout
from mia_pipeline.lifecycle.archive import refresh_if_present
from mia_pipeline.storage import partition_store, sha256_file
from mia_pipeline.storage.archive_index import (
    MONTH_MANIFEST,
    archived_months,
    month_location,
    month_objects,
    month_rel,
    read_month_manifest,
)
from mia_pipeline.storage.atomic import TMP_SUFFIX, locked
from mia_pipeline.storage.partitions import LOCK_NAME, MANIFEST_NAME
from mia_pipeline.storage.publish import remove_tree, sweep_removed

_AGE_RE = re.compile(r"(\d{1,6})\s*(d|day|days)?")
MAX_AGE_DAYS = 36_600


class RetentionError(ValueError):
    """An age that is not a whole number of days (bad input: exit 2)."""


def parse_age(text: str) -> int:
    """``"365d"``, ``"365days"`` or ``"365"`` → 365. Zero, negative or other text raises RetentionError."""
    m = _AGE_RE.fullmatch(str(text).strip().lower())
    if not m:
        raise RetentionError(f"invalid age {text!r}: expected a number of days like 365d (or 365days)")
    days = int(m.group(1))
    if not 1 <= days <= MAX_AGE_DAYS:
        raise RetentionError(f"invalid age {text!r}: use 1d to {MAX_AGE_DAYS}d (0d would delete everything)")
    return days


@dataclass
class Doomed:
    kind: str            # "daily" | "archive" | "quarantine"
    name: str            # the day or month
    path: Path | str     # a folder, or the s3:// prefix of a day or month on object storage
    bytes: int = 0
    not_backed_up: list[str] = field(default_factory=list)  # files without a verified backup


@dataclass
class CleanupReport:
    cutoff: str
    removed: list[Doomed] = field(default_factory=list)
    refused: list[Doomed] = field(default_factory=list)   # kept: no verified backup (and not forced)
    dry_run: bool = False

    @property
    def bytes_removed(self) -> int:
        return sum(d.bytes for d in self.removed)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != LOCK_NAME
                  and not p.name.endswith(TMP_SUFFIX))


def _backed_up(layout: Layout, settings) -> Container[str]:
    """The contents a verified backup holds, each blob re-hashed when it is asked about."""
    from mia_pipeline.lifecycle.catalog import proven_blobs

    return proven_blobs(layout, settings)


def plan_cleanup(layout: Layout, older_than_days: int, today: date | None = None) -> tuple[str, list[Doomed]]:
    """``(cutoff day, items past it)``, oldest first; nothing is read but folder listings and sizes."""
    today = today or datetime.now(UTC).date()
    cutoff = (today - timedelta(days=older_than_days)).isoformat()
    last_month_gone = cutoff[:7]  # a month goes once the cutoff is in a later month
    if layout.store is not None:
        items = _object_items(layout, cutoff, last_month_gone)
    else:
        items = [Doomed("daily", d, layout.day_dir(d)) for d in layout.days_present() if d < cutoff]
        items += [Doomed("archive", m, layout.archive_month_dir(m)) for m in archived_months(layout)
                  if m < last_month_gone]
    items += [Doomed("quarantine", d, layout.quarantine_day_dir(d)) for d in layout.quarantine_days() if d < cutoff]
    for item in items:
        if isinstance(item.path, Path):
            item.bytes = sum(p.stat().st_size for p in _files(item.path))
    return cutoff, items


def _object_items(layout: Layout, cutoff: str, last_month_gone: str) -> list[Doomed]:
    """Days and archive months on object storage past the cutoff, with the bytes of their objects."""
    store = partition_store(layout)
    items = [Doomed("daily", d, store.manifest_location(d).rsplit("/", 1)[0], store.day_bytes(d))
             for d in store.days_present() if d < cutoff]
    months = month_objects(layout)
    items += [Doomed("archive", m, str(month_location(layout, m)), sum(months.get(m, {}).values()))
              for m in archived_months(layout) if m < last_month_gone]
    return items


def _object_files(layout: Layout, item: Doomed) -> dict[str, str]:
    """``{name: key}`` of what an item on object storage holds: the manifest and the files it names (previous
    versions of a day waiting for their grace period are not data)."""
    if item.kind == "daily":
        rel = f"daily/{item.name}"
        manifest = partition_store(layout).manifest(item.name)
        names = [MANIFEST_NAME, *(e["file"] for e in manifest["datasets"].values())] if not manifest.get("removing") \
            else []
    else:
        rel = f"archive/{item.name}"
        names = [MONTH_MANIFEST, *(e["file"] for e in read_month_manifest(layout, item.name)["datasets"].values())]
    return {name: f"{rel}/{name}" for name in names}


def _object_not_backed_up(layout: Layout, item: Doomed, backed: Container[str]) -> list[str]:
    objects = partition_store(layout).objects
    return [name for name, key in _object_files(layout, item).items() if objects.sha256(key) not in backed]


def _remove_object_item(layout: Layout, item: Doomed, check) -> bool:
    """Remove a day or month on object storage under its lock, judged again first (``check``: what is not
    backed up). A day goes through the store's removal; a month's files go first, its manifest last (a crash
    leaves the month listed, finished by the next cleanup)."""
    from mia_pipeline.lifecycle.archive import month_lock

    store = partition_store(layout)
    lock = store.day_lock(item.name) if item.kind == "daily" else month_lock(layout, item.name)
    with lock:
        item.not_backed_up = check(item)
        if item.not_backed_up:
            return False
        if item.kind == "daily":
            store.drop_day(item.name)
            return True
        objects = store.objects
        for name in month_objects(layout).get(item.name, {}):
            if name != MONTH_MANIFEST:
                objects.delete(month_rel(item.name, name))
        objects.delete(month_rel(item.name, MONTH_MANIFEST))
        objects.delete_folder(month_rel(item.name))
    return True


def cleanup(layout: Layout, settings, older_than_days: int, *, dry_run: bool = False, force: bool = False,
            today: date | None = None) -> CleanupReport:
    """Delete what is older than ``older_than_days`` (see the module docstring); a report of it.

    ``dry_run``: nothing is changed; the report says what would be removed and what would be refused."""
    cutoff, items = plan_cleanup(layout, older_than_days, today)
    report = CleanupReport(cutoff, dry_run=dry_run)
    backed = _backed_up(layout, settings) if items and not force else set()

    def missing(item: Doomed) -> list[str]:
        if force:
            return []
        if not isinstance(item.path, Path):
            return _object_not_backed_up(layout, item, backed)
        return [str(p.relative_to(item.path)) for p in _files(item.path) if sha256_file(p) not in backed]

    for item in items:
        item.not_backed_up = missing(item)
    if dry_run:
        report.removed = [d for d in items if not d.not_backed_up]
        report.refused = [d for d in items if d.not_backed_up]
        return report
    for parent in (layout.daily_dir, layout.archive_dir, layout.quarantine_dir):
        sweep_removed(parent)
    months = [d.name for d in items if d.kind == "archive" and not d.not_backed_up]
    if months:
        refresh_if_present(layout, skip_months=months)  # no view may refer to a month about to go
    for item in items:
        if item.not_backed_up:
            report.refused.append(item)
            continue
        if not isinstance(item.path, Path):
            with locked(layout.ingest_lock_file):  # a collector's pass finishes first (see below)
                (report.removed if _remove_object_item(layout, item, missing) else report.refused).append(item)
            continue
        # The ingest lock, then the item's: a collector's pass that read the day never commits it after it
        # is gone (which would bring back rows cleanup removed); a writer of that day or month finishes first.
        with locked(layout.ingest_lock_file), locked(item.path / LOCK_NAME):
            item.not_backed_up = missing(item)  # judged again: what goes is what was checked
            if item.not_backed_up:
                report.refused.append(item)
                continue
            remove_tree(item.path)
            report.removed.append(item)
    if any(d.kind != "quarantine" for d in report.removed) or months:
        refresh_if_present(layout)
    return report
