"""`mia move-partitions`: a data root's local partitions moved to the object store ``MIA_STORAGE_URL`` names.

Once ``data_collection.storage.url`` is set, the day folders and archive months still under
``snapshots/`` are no longer read (``mia check-integrity`` reports them). Moving them, oldest first:

- **a day**: checked against its manifest (damage stops that day: repair it first, with the setting
  unset), installed in the store in one commit (:meth:`~mia_pipeline.storage.partitions.PartitionStore.install`,
  only into a day that holds nothing or the same content), verified there (objects re-read on the
  server), then its local folder removed;
- **an archive month**: each file checked against the month manifest, uploaded, the manifest last (the
  commit point), re-read on the server, then its local folder removed.

A move killed at any point leaves every day readable from one side or the other (the local copy goes only
after the store's copy verifies); running it again finishes the job. A day or month the store already
holds with other content is refused, never overwritten.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from mia_pipeline.layout import Layout, LayoutError
from mia_pipeline.storage import PartitionStore, StorageError, archive_index, partition_store, sha256_file
from mia_pipeline.storage.publish import remove_tree


@dataclass
class MoveReport:
    moved: list[str] = field(default_factory=list)      # days and months now on the store only
    already: list[str] = field(default_factory=list)    # the store held the same content: local copy removed
    refused: dict[str, str] = field(default_factory=dict)  # day or month -> why it stays local
    dry_run: bool = False


def local_partitions(layout: Layout) -> tuple[list[str], list[str]]:
    """(day folders, archive months) under the data root's ``snapshots/``."""
    local = Layout(layout.root)
    return local.days_present(), archive_index.archived_months(local)


def _copier(src: Path, sha: str):
    def copy(dest: Path) -> None:
        shutil.copyfile(src, dest)
        if sha256_file(dest) != sha:
            raise StorageError(f"{src} changed while it was copied; nothing was committed")
    return copy


def _move_day(local: PartitionStore, store: PartitionStore, day: str) -> bool:
    """True when moved, False when the store already held it. Raises StorageError (the day stays local)."""
    with local.day_lock(day):
        if problems := local.verify(day):
            raise StorageError(f"{problems[0]} (repair the day first, with MIA_STORAGE_URL unset)")
        manifest = local.manifest(day)
        fetch = {name: _copier(local.committed_file(day, name), e["sha256"]) for name, e in manifest["datasets"].items()}
        installed = store.install(day, manifest, fetch, if_absent=True) if fetch else False
        if problems := store.verify(day):
            raise StorageError(f"copied but does not verify on the store: {problems[0]}")
        local.drop_day(day)
    return installed


def _move_month(local_layout: Layout, layout: Layout, month: str) -> bool:
    objects = archive_index.objects(layout)
    manifest = archive_index.read_month_manifest(local_layout, month)
    there = archive_index._cached_month_manifest(layout, month)
    if there is not None:
        if {d: e["sha256"] for d, e in there["datasets"].items()} != {d: e["sha256"] for d, e in manifest["datasets"].items()}:
            raise StorageError(f"the store already holds month {month} with other files; nothing was written")
        remove_tree(local_layout.archive_month_dir(month))
        return False
    folder = local_layout.archive_month_dir(month)
    for ds, entry in manifest["datasets"].items():
        path = folder / entry["file"]
        if not path.exists() or sha256_file(path) != entry["sha256"]:
            raise StorageError(f"archive {month}/{ds}: {entry['file']} is missing or does not match its month "
                               "manifest (restore the month first, with MIA_STORAGE_URL unset)")
        with open(path, "rb") as fh:
            objects.put_stream(archive_index.month_rel(month, entry["file"]), fh)
        if archive_index.month_file_sha256(layout, month, entry["file"]) != entry["sha256"]:
            raise StorageError(f"archive {month}/{ds}: uploaded but does not verify on the store")
    objects.put_bytes(archive_index.month_rel(month, archive_index.MONTH_MANIFEST),
                      (folder / archive_index.MONTH_MANIFEST).read_bytes())  # the commit point
    remove_tree(folder)
    return True


def move_partitions(layout: Layout, *, compression: str = "zstd", dry_run: bool = False) -> MoveReport:
    """Move every local day folder and archive month to ``layout.store`` (see the module docstring)."""
    if layout.store is None:
        raise LayoutError("no object store to move the partitions to: set MIA_STORAGE_URL (or "
                          "data_collection.storage.url) to s3://bucket/prefix first")
    days, months = local_partitions(layout)
    report = MoveReport(dry_run=dry_run)
    if dry_run:
        report.moved = [*days, *months]
        return report
    local, store = PartitionStore(Layout(layout.root), compression), partition_store(layout, compression)
    for day in days:
        try:
            (report.moved if _move_day(local, store, day) else report.already).append(day)
        except StorageError as exc:
            report.refused[day] = str(exc)
    for month in months:
        try:
            (report.moved if _move_month(Layout(layout.root), layout, month) else report.already).append(month)
        except (StorageError, archive_index.ArchiveDamaged) as exc:
            report.refused[month] = str(exc)
    return report
