"""Archive: days past ``archive_after_days`` compacted into ``snapshots/archive/YYYY-MM/``.

One file per dataset per month (raw lines included, so an archived day can still be rebuilt), zstd
level 19, each day's rows whole row groups of it, described by a month manifest (format:
:mod:`mia_pipeline.storage.archive_index`) holding per day its row count, content hash (an
order-independent fingerprint of every value of every row, :func:`content_digest`) and the sha256 of
the daily files folded in, and per file its sha256.

Protocol of :func:`archive_month` (month lock and the locks of the days held throughout, so a
concurrent ingestion waits and then writes a fresh day folder: late data, folded in next time):

1. every day to archive is verified against its manifest, every existing month file against the
   month manifest; damage stops the month before anything is written;
2. each changed dataset is written to a NEW generation file (``trades.4.parquet``: never a name a
   reader or view holds) and verified: rows and content hash of every day re-read from the file;
3. the month manifest is rewritten atomically — **the commit point**: from here readers read those
   days from the archive (a daily file whose sha256 is folded is ignored);
4. the DuckDB views are refreshed (if the warehouse exists); then the archived day folders are
   renamed out of sight and deleted, and files of older generations removed.

A crash anywhere leaves the old state (before 3) or the new one with leftovers that readers ignore
(from 3); re-running finishes the removals. Quarantine stays in ``snapshots/quarantine/`` (it is
reviewed by people and small); retention removes it when it is past ``retention_days``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mia_pipeline.layout import RAW_EVENTS, STORED_DATASETS, Layout, parse_day, parse_month
from mia_pipeline.schemas import DATASET_KEYS
from mia_pipeline.schemas.hashing import record_hash
from mia_pipeline.storage import (
    PartitionStore,
    StorageError,
    atomic_write_json,
    partition_store,
    refresh_views,
    sha256_file,
)
from mia_pipeline.storage import archive_index as ai
from mia_pipeline.storage.atomic import TMP_SUFFIX, commit_temp, locked, write_temp
from mia_pipeline.storage.pagecheck import PAGE_CRC_META
from mia_pipeline.storage.partitions import LOCK_NAME, RAW_LINES_MODE
from mia_pipeline.storage.publish import sweep_removed

ARCHIVE_COMPRESSION = "zstd"
ARCHIVE_LEVEL = 19
ROW_GROUP_ROWS = 1 << 20
FOLD_KEYS = {**DATASET_KEYS, RAW_EVENTS: ("file", "offset")}


class ArchiveError(StorageError):
    """A month cannot be archived as asked (damage found, verification failed); nothing was removed."""


@dataclass
class MonthReport:
    month: str
    days: list[str] = field(default_factory=list)      # days written into the month file this time
    removed: list[str] = field(default_factory=list)   # daily folders removed (archived and verified)
    bytes_daily: int = 0                                # bytes of the daily files archived this time
    bytes_month: int = 0                                # bytes of the month's files afterwards
    dry_run: bool = False


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def content_digest(table: pa.Table) -> str:
    """sha256 over the sorted 64-bit hashes of every row (all columns, nulls contributing nothing).

    Independent of row order, column order and of null columns a newer schema added: rewriting a
    partition sorted, or archiving it, keeps it; any changed value, lost or added row changes it."""
    hashes = record_hash(table, exclude=())
    h = hashlib.sha256(f"rows:{table.num_rows};".encode())
    if table.num_rows:
        h.update(np.sort(np.frombuffer(hashes.buffers()[2], dtype="S16", count=table.num_rows)).tobytes())
    return h.hexdigest()


def refresh_if_present(layout: Layout, skip_months=()) -> None:
    """Refresh the DuckDB views when the warehouse exists (no warehouse: no view to keep consistent)."""
    if layout.warehouse_file.exists():
        refresh_views(layout, skip_months=skip_months)


def archive_cutoff(archive_after_days: int, today: date | None = None) -> date:
    """First day NOT archived: days strictly before ``today - archive_after_days`` are."""
    return (today or datetime.now(UTC).date()) - timedelta(days=archive_after_days)


def archive_plan(layout: Layout, before: date, store: PartitionStore | None = None) -> dict[str, list[str]]:
    """``{month: [day folders before `before`]}``: what :func:`archive` would archive."""
    plan: dict[str, list[str]] = {}
    for day in (store or partition_store(layout)).days_present():
        if day < parse_day(before).isoformat():
            plan.setdefault(day[:7], []).append(day)
    return plan


def archive(layout: Layout, store: PartitionStore, before: date, *, dry_run: bool = False) -> list[MonthReport]:
    """Archive every day folder before ``before``, month by month (see :func:`archive_month`)."""
    if not dry_run:
        sweep_removed(layout.daily_dir)
    return [archive_month(layout, store, month, days, dry_run=dry_run)
            for month, days in archive_plan(layout, before, store).items()]


def _daily_bytes(store: PartitionStore, days: list[str]) -> int:
    return sum(int(e.get("bytes", 0)) for d in days for e in store.manifest(d)["datasets"].values())


def archive_month(layout: Layout, store: PartitionStore, month: str, days: list[str] | None = None, *,
                  dry_run: bool = False) -> MonthReport:
    """Archive the day folders of ``month`` (all of them, or those of ``days``) into its month files.

    Idempotent: days already archived are not written again (their leftover folders are removed);
    a day archived earlier that got late data has it folded in (deduplicated by the dataset's key,
    the archived version first). Raises :class:`ArchiveError` (nothing removed) on damage."""
    year, mon = parse_month(month)
    month = f"{year:04d}-{mon:02d}"
    present = [d for d in store.days_present() if d[:7] == month]
    wanted = present if days is None else sorted({parse_day(d).isoformat() for d in days} & set(present))
    report = MonthReport(month, dry_run=dry_run)
    if not wanted:
        return report
    if dry_run:
        report.days, report.bytes_daily = wanted, _daily_bytes(store, wanted)
        return report
    for d in wanted:
        store.recover(d)
    # The ingest lock first (the order every writer takes): a collector's pass never reads a day before it is
    # archived and commits it after, which would store its rows twice (daily and archive).
    with locked(layout.ingest_lock_file), month_lock(layout, month), contextlib.ExitStack() as stack:
        for d in wanted:
            stack.enter_context(store.day_lock(d))
        problems = [p for d in wanted for p in store.verify(d)]
        if problems:
            raise ArchiveError(f"{month} not archived: {'; '.join(problems[:3])} — repair these days first "
                               "(`mia check-integrity`), then run the archive again")
        try:
            old = ai.read_month_manifest(layout, month)
        except ai.ArchiveDamaged as exc:
            raise ArchiveError(f"{month} not archived: {exc}") from None
        _verify_month_files(layout, month, old)
        new = {**old, "datasets": dict(old["datasets"]), "generation": int(old.get("generation", 0)) + 1}
        changed_days: set[str] = set()
        for ds in STORED_DATASETS:
            changes = _changes(store, wanted, ds, old["datasets"].get(ds))
            if changes:
                new["datasets"][ds] = _write_dataset(layout, store, month, ds, old["datasets"].get(ds), changes,
                                                     new["generation"])
                changed_days |= set(changes)
                report.bytes_daily += sum(e.bytes for e in changes.values())
        if changed_days:
            new["updated_at"] = now()
            _write_month_manifest(layout, month, new)  # commit point
        refresh_if_present(layout)
        final = new if changed_days else old
        for d in wanted:
            if all(_folded(final, d, ds, e.get("sha256")) for ds, e in store.manifest(d)["datasets"].items()):
                store.drop_day(d)
                report.removed.append(d)
        _remove_unreferenced(layout, month, final)
        if report.removed:
            refresh_if_present(layout)  # a view's daily glob must not outlive the last daily file
    report.days = sorted(changed_days)
    report.bytes_month = sum(int(e["bytes"]) for e in final["datasets"].values())
    return report


def _folded(manifest: dict, day: str, ds: str, sha: str | None) -> bool:
    meta = manifest["datasets"].get(ds, {}).get("days", {}).get(day)
    return meta is not None and sha in meta["folded"]


def month_lock(layout: Layout, month: str):
    """The month's writer lock: in its folder, or on this host for a month on object storage."""
    if layout.store is not None:
        return locked(layout.root / "live" / ".store-locks" / f"archive-{month}.lock")
    layout.archive_month_dir(month).mkdir(parents=True, exist_ok=True)
    return locked(layout.archive_month_dir(month) / LOCK_NAME)


def _write_month_manifest(layout: Layout, month: str, manifest: dict) -> None:
    if layout.store is not None:
        data = (json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n").encode()
        ai.objects(layout).put_bytes(ai.month_rel(month, ai.MONTH_MANIFEST), data)
    else:
        atomic_write_json(ai.month_manifest_path(layout, month), manifest)


def _verify_month_files(layout: Layout, month: str, manifest: dict) -> None:
    for ds, entry in manifest["datasets"].items():
        digest = ai.month_file_sha256(layout, month, entry["file"])
        if digest is None:
            raise ArchiveError(f"{month} not archived: its {ds} file {entry['file']} is missing; restore the month "
                               "from a backup")
        if digest != entry["sha256"]:
            raise ArchiveError(f"{month} not archived: {entry['file']} does not match its sha256 in the month "
                               "manifest; restore the month from a backup")


def _changes(store: PartitionStore, days: list[str], ds: str, old_entry: dict | None) -> dict:
    """``{day: daily entry}`` of the days whose daily ``ds`` file is not yet folded into the month."""
    out = {}
    for d in days:
        e = store.entry(d, ds)
        if e is not None and not (old_entry and d in old_entry["days"] and e.sha256 in old_entry["days"][d]["folded"]):
            out[d] = e
    return out


def _fold(archived: pa.Table, late: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """Archived rows, then the late rows whose key is not archived yet (first version wins)."""
    from mia_pipeline.collection.merge import concat, key_columns

    combined = concat([archived, late])
    dup = key_columns(combined, keys).to_pandas().duplicated(keep="first").to_numpy()
    return combined.filter(pa.array(~dup))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    n = table.num_rows
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(n, f.type)
            for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def _write_dataset(layout: Layout, store: PartitionStore, month: str, ds: str, old_entry: dict | None,
                   changes: dict, generation: int) -> dict:
    """Write generation ``generation`` of the month's ``ds`` file (old days + changes), verified; its entry."""
    old_path = ai.month_location(layout, month, old_entry["file"]) if old_entry else None
    old_days = old_entry["days"] if old_entry else {}
    day_list = sorted(set(old_days) | set(changes))

    def load(day: str) -> tuple[pa.Table, dict]:
        """One day's rows as they must read back, and its entry (without placement)."""
        kept = ai.read_archived_rows(old_path, old_days[day]) if day in old_days else None
        if day not in changes:
            return kept, dict(old_days[day])
        e = changes[day]
        daily = pq.read_table(store.committed_file(day, ds))
        table = daily if kept is None else _fold(kept, daily, FOLD_KEYS[ds])
        folded = (old_days[day]["folded"] if day in old_days else []) + [e.sha256]
        return table, {"rows": table.num_rows, "content_hash": content_digest(table), "columns": table.column_names,
                       "schema_version": e.schema_version, "written_at": e.written_at, "folded": folded}

    schemas = [pq.read_schema(store.committed_file(d, ds)) for d in changes]
    if old_path is not None:
        schemas.insert(0, pq.read_schema(ai.open_location(old_path)))
    schema = pa.unify_schemas(schemas, promote_options="permissive")
    name = ai.month_file(ds, generation)
    local = layout.archive_month_dir(month) if layout.store is None else \
        layout.root / "live" / ".store-staging" / f"archive-{month}"
    target = local / name
    metas: dict[str, dict] = {}

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, schema, compression=ARCHIVE_COMPRESSION, compression_level=ARCHIVE_LEVEL,
                              write_statistics=True, write_page_index=True,
                              write_page_checksum=True) as writer:
            for day in day_list:
                table, meta = load(day)
                own = table.schema
                if not own.remove_metadata().equals(pa.schema([schema.field(n) for n in own.names])):
                    meta["schema"] = ai.encode_schema(own)
                else:
                    meta.pop("schema", None)
                metas[day] = meta
                if table.num_rows:
                    writer.write_table(_conform(table, schema), row_group_size=ROW_GROUP_ROWS)
            writer.add_key_value_metadata(PAGE_CRC_META)

    tmp = write_temp(target, write, mode=RAW_LINES_MODE if ds == RAW_EVENTS else None)
    try:
        _place_and_verify(tmp, ds, day_list, metas)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    size, digest = tmp.stat().st_size, sha256_file(tmp)
    if layout.store is None:
        commit_temp(tmp, target)  # a new name no manifest refers to yet: invisible until the commit point
    else:
        try:
            with open(tmp, "rb") as fh:  # the same: a new object no manifest names yet
                ai.objects(layout).put_stream(ai.month_rel(month, name), fh)
        finally:
            tmp.unlink(missing_ok=True)
    return {"file": name, "rows": sum(m["rows"] for m in metas.values()), "bytes": size,
            "sha256": digest, "compression": ARCHIVE_COMPRESSION, "compression_level": ARCHIVE_LEVEL,
            "written_at": now(), "days": metas}


def _place_and_verify(path: Path, ds: str, day_list: list[str], metas: dict[str, dict]) -> None:
    """Give every day its row-group range, then re-read each day and compare rows and content hash."""
    md = pq.ParquetFile(path).metadata
    sizes = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
    i = 0
    for day in day_list:
        meta, first, rows = metas[day], i, 0
        while rows < meta["rows"] and i < len(sizes):
            rows, i = rows + sizes[i], i + 1
        if rows != meta["rows"]:
            raise ArchiveError(f"{ds} of {day}: the month file holds {rows} rows for it, expected {meta['rows']}")
        meta["row_groups"] = [first, i]
        meta["bytes"] = sum(md.row_group(g).column(c).total_compressed_size
                            for g in range(first, i) for c in range(md.num_columns))
    for day in day_list:
        back = ai.read_archived_rows(path, metas[day])
        if back.num_rows != metas[day]["rows"] or content_digest(back) != metas[day]["content_hash"]:
            raise ArchiveError(f"{ds} of {day} does not read back from the month file as it was written; "
                               "nothing was archived (report this)")


def _remove_unreferenced(layout: Layout, month: str, manifest: dict) -> None:
    """Older generations and crashed writes: files of the month folder its manifest does not name."""
    keep = {ai.MONTH_MANIFEST, LOCK_NAME} | {e["file"] for e in manifest["datasets"].values()}
    if layout.store is not None:
        for name in ai.month_objects(layout).get(month, {}):
            if name not in keep and name.endswith(".parquet"):
                ai.objects(layout).delete(ai.month_rel(month, name))
        return
    month_dir = layout.archive_month_dir(month)
    for p in month_dir.iterdir():
        if p.is_file() and p.name not in keep and (p.suffix == ".parquet" or p.name.endswith(TMP_SUFFIX)):
            p.unlink(missing_ok=True)
