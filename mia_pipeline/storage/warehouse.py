"""DuckDB warehouse: ``data/warehouse.duckdb`` holds one view per dataset over all daily partitions.

The views read the Parquet files live (a glob over ``snapshots/daily/*/<dataset>.parquet``), so a
newly written day shows up without refreshing; refreshing is only needed when a dataset appears
for the first time. DuckDB is single-writer: only :func:`refresh_views` opens the file for writing
(run it from one process at a time: the Dagster asset uses a pool of 1); readers use
:func:`connect_readonly`.

Partitions on object storage (``layout.store``): each view names the objects the manifests name, so a
view shows what was committed when it was refreshed (:func:`refresh_views`, the ``warehouse`` asset, and
every command that writes partitions refresh them); connections made here read ``s3://`` through the
project's S3 client (:func:`~mia_pipeline.storage.objects.duckdb_filesystem`), which a plain ``duckdb``
shell does not have.

Archived days: each view also reads the archive's month files, listed by name (a month rewrite makes
new names, so a view never sees a half-switched month), and leaves out the daily files already folded
into the archive (leftovers of an interrupted archive). Archiving and cleanup refresh the views
before removing anything a view refers to.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import duckdb

from mia_pipeline.layout import DATASETS, Layout
from mia_pipeline.storage import archive_index
from mia_pipeline.storage.object_partitions import partition_store
from mia_pipeline.storage.partitions import DatasetEntry, StorageError

_DAY_OF_FILE = r"regexp_extract(filename, '(\d{4}-\d{2}-\d{2})[/\\][^/\\]+$', 1)"


def _glob(layout: Layout, dataset: str) -> str:
    return str(layout.daily_dir / "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]" / f"{dataset}.parquet")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _archive_parts(layout: Layout, skip_months) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``({dataset: month files}, {dataset: days whose daily file is folded into the archive})``."""
    files: dict[str, list[str]] = {}
    folded: dict[str, list[str]] = {}
    months, _ = archive_index.archived_manifests(layout)  # a damaged month is reported by check-integrity
    store = partition_store(layout)
    present = set(store.days_present()) if months else set()
    for month, man in months.items():
        if month in skip_months:
            continue
        for ds, entry in man["datasets"].items():
            files.setdefault(ds, []).append(str(archive_index.month_location(layout, month, entry["file"])))
            for day in (d for d in entry["days"] if d in present):
                try:
                    sha = store.manifest(day)["datasets"][ds]["sha256"]
                except (StorageError, OSError, KeyError, TypeError):
                    continue
                if sha in entry["days"][day]["folded"]:
                    folded.setdefault(ds, []).append(day)
    return files, folded


def _open(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` of a file; a write the machine refuses (read-only file system, full disk, no
    permission) is the ``OSError`` it is, with its errno and file, not DuckDB's ``IOException``."""
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        for code in (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES):
            if os.strerror(code) in str(exc):
                raise OSError(code, os.strerror(code), str(path)) from None
        raise


def _connect(layout: Layout, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse file that can read the partitions wherever they are."""
    con = _open(layout.warehouse_file, read_only=read_only)
    if layout.store is not None:
        from mia_pipeline.storage.objects import ObjectStore, duckdb_filesystem

        con.register_filesystem(duckdb_filesystem(ObjectStore(layout.store)))
    return con


def _object_views(layout: Layout, skip_months) -> dict[str, int]:
    """Partitions on object storage: a view per dataset naming the objects the day manifests name (there is
    no glob to follow: previous versions wait beside the current ones for their grace period), then the
    archive's month files."""
    store = partition_store(layout)
    archived, folded = _archive_parts(layout, set(skip_months))
    files: dict[str, list[str]] = {}
    for day in store.days_present():
        try:
            manifest = store.manifest(day)
        except StorageError:  # reported by check-integrity
            continue
        for ds, raw in manifest["datasets"].items():
            if ds in DATASETS and day not in folded.get(ds, ()):
                try:
                    entry = DatasetEntry(**raw)
                    store._confined(day, ds, entry)  # a damaged manifest names nothing to read
                except (TypeError, StorageError):
                    continue
                files.setdefault(ds, []).append(store.file_location(day, entry))
    counts: dict[str, int] = {}
    with _connect(layout) as con:
        for ds in DATASETS:
            parts = [[*files.get(ds, [])], [*archived.get(ds, [])]]
            if any(parts):
                listed = "[" + ", ".join(_quote(f) for f in parts[0] + parts[1]) + "]"
                con.execute(f"CREATE OR REPLACE VIEW {ds} AS SELECT * FROM read_parquet({listed}, "
                            "union_by_name = true, filename = true)")
                counts[ds] = con.execute(f"SELECT count(*) FROM {ds}").fetchone()[0]
            else:
                con.execute(f"DROP VIEW IF EXISTS {ds}")
    return counts


def refresh_views(layout: Layout, skip_months=()) -> dict[str, int]:
    """(Re)create a view per dataset that has at least one partition; drop views of vanished ones.

    ``skip_months``: archive months left out (cleanup drops them from the views before deleting them).
    Returns ``{dataset: row count}`` for the views that exist afterwards.
    """
    layout.warehouse_file.parent.mkdir(parents=True, exist_ok=True)
    if layout.store is not None:
        return _object_views(layout, skip_months)
    counts: dict[str, int] = {}
    archived, folded = _archive_parts(layout, set(skip_months))
    with _open(layout.warehouse_file) as con:
        for ds in DATASETS:
            parts = []
            if any(layout.daily_dir.glob(f"*/{ds}.parquet")):
                daily = f"SELECT * FROM read_parquet({_quote(_glob(layout, ds))}, union_by_name = true, filename = true)"
                if folded.get(ds):
                    daily += f" WHERE {_DAY_OF_FILE} NOT IN ({', '.join(_quote(d) for d in folded[ds])})"
                parts.append(daily)
            if archived.get(ds):
                listed = "[" + ", ".join(_quote(f) for f in archived[ds]) + "]"
                parts.append(f"SELECT * FROM read_parquet({listed}, union_by_name = true, filename = true)")
            if parts:
                con.execute(f"CREATE OR REPLACE VIEW {ds} AS " + " UNION ALL BY NAME ".join(parts))
                counts[ds] = con.execute(f"SELECT count(*) FROM {ds}").fetchone()[0]
            else:
                con.execute(f"DROP VIEW IF EXISTS {ds}")
    return counts


def connect_readonly(layout: Layout) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse (raises if it was never created: run `mia init`)."""
    if not layout.warehouse_file.exists():
        raise FileNotFoundError(f"{layout.warehouse_file} does not exist yet; run `mia init` or `make demo` first")
    return _connect(layout, read_only=True)


def ensure_views(layout: Layout, datasets) -> bool:
    """Create the views when one of ``datasets`` (stored now) has none yet: a dataset written for the first
    time by a command is queryable at once. True when the views were refreshed; False when nothing was
    missing. Raises ``duckdb.Error`` when the warehouse is busy (another writer) or unreadable."""
    wanted = {ds for ds in datasets if ds in DATASETS}
    if not wanted:
        return False
    if layout.warehouse_file.exists() and layout.store is None:  # on object storage views name files: refreshed
        with _open(layout.warehouse_file, read_only=True) as con:
            have = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        if wanted <= have:
            return False
    refresh_views(layout)
    return True
