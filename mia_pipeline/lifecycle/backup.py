"""`mia backup`: a complete, verified snapshot of the data into the content-addressed backup target.

Modes (each a complete snapshot; they differ in how much is re-read, and in the kind they are filed
and rotated under):

- ``incremental`` (hourly): a file whose content the day manifest vouches for and the target already
  holds, or that has the same size, mtime and inode as in the previous backup, is not read again.
  New blobs are re-read after writing.
- ``full`` (daily) and ``archive`` (weekly): every file is read and hashed (partition files are
  checked against their day manifest), and every blob the backup names is re-read and re-hashed; a
  blob that no longer matches is rewritten from the data.

Only new content is written (blobs are named by their sha256), so a full backup costs new bytes only.
The manifest is written last, after verification: a crash at any moment leaves the previous backups
and at most some unreferenced blobs and temp files, which the next backup sweeps. Rotation then keeps
the newest ``keep_hourly``/``keep_daily``/``keep_weekly`` backups of each kind and deletes blobs no
remaining manifest names.

Damaged data is never backed up as valid: a partition file that does not match its manifest is
reported in ``BackupResult.damaged`` and the backup names the good content instead when the target
holds it (a day whose manifest cannot be read keeps the previous backup's version of the day).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mia_pipeline.layout import BACKUP_KINDS, Layout
from mia_pipeline.lifecycle.blobstore import BackupTarget, hash_stream
from mia_pipeline.lifecycle.catalog import (
    DAILY_PREFIX,
    MODES,
    Backup,
    FileRef,
    encode_manifest,
    list_backups,
    target_for,
)
from mia_pipeline.lifecycle.sources import (
    Item,
    archive_object_items,
    config_item,
    open_tree_item,
    snapshot_day,
    tree_files,
)
from mia_pipeline.settings import Settings
from mia_pipeline.storage import PartitionStore, partition_store

DAYS_PER_BATCH = 16  # day snapshots held open at once (each holds its files open)
WORKERS = 4


class BackupError(RuntimeError):
    """The backup could not be written or verified; the previous backups are untouched."""


@dataclass
class BackupResult:
    id: str
    kind: str
    mode: str
    location: str
    files: int = 0
    bytes: int = 0
    new_blobs: int = 0
    new_bytes: int = 0
    read_bytes: int = 0
    verified_blobs: int = 0
    damaged: dict[str, str] = field(default_factory=dict)
    removed_backups: list[str] = field(default_factory=list)
    removed_blobs: int = 0
    seconds: float = 0.0


def _now_id() -> tuple[str, str]:
    now = datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S%fZ"), now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Run:
    """One backup in progress: decides per item whether to read, store and verify it."""

    def __init__(self, target: BackupTarget, mode: str, previous: Backup | None, result: BackupResult):
        self.target, self.mode, self.result = target, mode, result
        self.thorough = mode != "incremental"
        self.previous = previous.files if previous else {}
        self.files: dict[str, FileRef] = {}
        self._lock = threading.Lock()  # items are processed by a thread pool

    def _count(self, **amounts: int) -> None:
        with self._lock:
            for name, n in amounts.items():
                setattr(self.result, name, getattr(self.result, name) + n)

    def _store(self, item: Item) -> tuple[str, int, bool]:
        item.fh.seek(0)
        sha, size, stored = self.target.put_stream(item.fh, item.expected)
        self._count(read_bytes=size)
        return sha, size, stored

    def _verified(self, item: Item, sha: str) -> bool:
        """Re-read the blob; a blob that does not match is rewritten once from the (matching) data."""
        self._count(verified_blobs=1)
        if self.target.verify_blob(sha):
            return True
        self.target.delete_blob(sha)
        again, _, _ = self._store(item)
        return again == sha and self.target.verify_blob(sha)

    def process(self, item: Item) -> None:
        rel, expected = item.rel, item.expected
        prev = self.previous.get(rel)
        if not self.thorough:
            if expected and self.target.has_blob(expected, item.size):
                self.files[rel] = FileRef(expected, item.size, item.mtime_ns, item.ino)
                return
            if (prev and item.ino and (prev.size, prev.mtime_ns, prev.ino) == (item.size, item.mtime_ns, item.ino)
                    and (expected is None or prev.sha256 == expected) and self.target.has_blob(prev.sha256, prev.size)):
                self.files[rel] = prev
                return
        if self.thorough and item.expected and self.target.has_blob(item.expected, item.size):
            item.fh.seek(0)
            sha, size = hash_stream(item.fh)  # the data is read to judge it; the blob exists already
            self._count(read_bytes=size)
            stored = False
        else:
            sha, size, stored = self._store(item)
        if expected and sha != expected:
            problem = f"sha256 {sha[:12]} does not match its day manifest ({expected[:12]})"
            self.result.damaged[rel] = problem
            if self.target.has_blob(expected, item.size) and self.target.verify_blob(expected):
                self.files[rel] = FileRef(expected, item.size, item.mtime_ns, item.ino)  # the good version
            return
        if stored or self.thorough:
            if not self._verified(item, sha):
                raise BackupError(f"{rel}: the copy written to {self.target.location} does not read back as "
                                  "written (sha256 mismatch twice); check the backup disk")
        if stored:
            self._count(new_blobs=1, new_bytes=size)
        self.files[rel] = FileRef(sha, size, item.mtime_ns, item.ino)

    def carry_day(self, day: str, problem: str) -> None:
        """A day that cannot be read as committed: report it, keep the previous backup's version."""
        prefix = f"{DAILY_PREFIX}{day}/"
        self.result.damaged[prefix] = problem
        for rel, ref in self.previous.items():
            if rel.startswith(prefix) and self.target.has_blob(ref.sha256, ref.size):
                self.files[rel] = ref


def _run_items(run: _Run, items: list[Item], pool: ThreadPoolExecutor) -> None:
    try:
        for fut in [pool.submit(run.process, item) for item in items]:
            fut.result()
    finally:
        for item in items:
            item.close()


def run_backup(layout: Layout, settings: Settings, mode: str, *, config_file: Path | None = None,
               store: PartitionStore | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> BackupResult:
    """Back up the data root (see the module docstring) and rotate; returns what was done.

    Raises :class:`BackupError` (verification failed), :class:`~blobstore.TargetError` /
    :class:`~blobstore.TargetSetupError` (target unusable) and ``OSError`` (disk full, read-only…);
    in every case the previous backups are intact and no partial backup is visible."""
    if mode not in MODES:
        raise ValueError(f"unknown backup mode {mode!r}; modes: {', '.join(MODES)}")
    t0 = time.perf_counter()
    store = store or partition_store(layout, compression=settings.compression)
    target = target_for(layout, settings)
    target.prepare(create=True)
    kind = MODES[mode]
    with target.lock(exclusive=True):
        target.sweep()
        good, _ = list_backups(target)
        backup_id, created_at = _now_id()
        result = BackupResult(backup_id, kind, mode, target.location)
        run = _Run(target, mode, good[0] if good else None, result)
        days = store.days_present()
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for i in range(0, len(days), DAYS_PER_BATCH):
                snaps = [snapshot_day(layout, store, d) for d in days[i:i + DAYS_PER_BATCH]]
                for snap in snaps:
                    if snap.problem:
                        run.carry_day(snap.day, snap.problem)
                _run_items(run, [it for s in snaps for it in s.items], pool)
                if on_progress:
                    on_progress(min(i + DAYS_PER_BATCH, len(days)), len(days))
            others = [it for rel, path in tree_files(layout) if (it := open_tree_item(rel, path))]
            others += archive_object_items(layout)
            if (cfg := config_item(config_file)) is not None:
                others.append(cfg)
            _run_items(run, others, pool)
        backup = Backup(id=backup_id, kind=kind, mode=mode, created_at=created_at,
                        finished_at=_now_id()[1], data_root=str(layout.root), files=run.files,
                        damaged=result.damaged, config_file=str(config_file) if cfg else None)
        target.put_manifest(kind, backup_id, encode_manifest(backup))  # the commit point
        result.files, result.bytes = len(run.files), backup.bytes
        result.removed_backups, result.removed_blobs = rotate(target, settings, protect=backup_id)
    result.seconds = time.perf_counter() - t0
    return result


def rotate(target: BackupTarget, settings: Settings, protect: str | None = None) -> tuple[list[str], int]:
    """Keep the newest ``keep_<kind>`` backups of each kind, delete the rest, then every blob no
    remaining manifest names. Call with the target's exclusive lock. Returns (removed ids, blobs removed).
    Manifests that cannot be read are left where they are (they are never used)."""
    keep = {"hourly": settings.backup.keep_hourly, "daily": settings.backup.keep_daily,
            "weekly": settings.backup.keep_weekly}
    good, _ = list_backups(target)
    removed = []
    for kind in BACKUP_KINDS:
        mine = [b for b in good if b.kind == kind]  # newest first
        for b in mine[keep[kind]:]:
            if b.id != protect:
                target.delete_manifest(kind, b.id)
                removed.append(f"{kind}/{b.id}")
    removed_set = set(removed)
    referenced = {r.sha256 for b in good if f"{b.kind}/{b.id}" not in removed_set for r in b.files.values()}
    garbage = target.collectable_blobs(referenced)
    for sha in garbage:
        target.delete_blob(sha)
    return removed, len(garbage)
