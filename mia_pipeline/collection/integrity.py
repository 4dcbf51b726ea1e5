"""`mia check-integrity`: every stored file checked against what vouches for it, as a list of problems.

- each day folder: its manifest (well-formed, naming only its own files), every file's sha256 and row
  count, files nothing vouches for (including data files whose manifest was lost);
- each archived month: its manifest, every month file's sha256 and row count (archived days are
  reported through their month, never as missing days);
- rows stored twice: a day folder repeating keys of the day's archived rows;
- quarantine files: readable Parquet;
- the collector's state files (``live/ingest_state.json``, ``live/collector.json``): well-formed JSON.

Interrupted commits are finished first when the data directory is writable; on a read-only one the
check still runs (readers follow a staged entry without moving it). Problems are returned, never
raised: a damaged file is a finding, not a crash.
"""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

from mia_pipeline.collection.merge import key_columns
from mia_pipeline.collection.quarantine import DAMAGED_MARK
from mia_pipeline.layout import RAW_EVENTS, STORED_DATASETS, Layout
from mia_pipeline.schemas import DATASET_KEYS
from mia_pipeline.storage import PartitionStore, StorageError, archive_index
from mia_pipeline.storage.objects import ObjectStoreError

INTEGRITY_RESULT = "integrity_last.json"

def _state_file_problem(path) -> str | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{path.name}: not readable JSON ({exc}); `mia collect start --reset-state` sets it aside"
    if not isinstance(value, dict):
        return f"{path.name}: expected a JSON object, found {type(value).__name__}"
    return None


def integrity_problems(layout: Layout, store: PartitionStore, days: list[str] | None = None) -> list[str]:
    """Every problem found, one line each (empty when all is well). ``days`` limits the check to
    those day folders (then quarantine and state files are not checked)."""
    everything = days is None
    days = store.days_present() if everything else days
    problems: list[str] = []
    # Objects are written by the store's own rules (a read-only credential is an error of its own)
    writable = layout.store is not None or (os.access(layout.daily_dir, os.W_OK) if layout.daily_dir.exists() else False)
    for day in days:
        try:
            if writable:
                store.recover(day)  # finish a commit interrupted by a crash before judging
        except (StorageError, OSError) as exc:
            problems.append(f"{day}: cannot finish an interrupted commit: {exc}")
        problems += store.verify(day)
    if everything:
        for qday in layout.quarantine_days():
            for aside in sorted(layout.quarantine_day_dir(qday).glob(f"*{DAMAGED_MARK}*")):
                problems.append(f"quarantine {qday}: {aside.name} is a damaged quarantine file set aside by "
                                "ingestion (its bytes are kept there; its rejects are no longer counted)")
            path = layout.quarantine_file(qday)
            if path.exists():
                try:
                    pq.read_metadata(path)
                except (OSError, pa.ArrowException) as exc:
                    problems.append(f"quarantine {qday}: {path.name} is not readable Parquet ({exc})")
        problems += archive_problems(layout)
        problems += duplicated_keys(layout, store)
        problems += hidden_local_partitions(layout)
        for path in (layout.ingest_state_file, layout.collector_control_file):
            if problem := _state_file_problem(path):
                problems.append(problem)
    return problems


def _archived_days(layout: Layout) -> dict[str, set[str]]:
    """{dataset: days the archive holds} (damaged months are reported by :func:`archive_problems`)."""
    out: dict[str, set[str]] = {}
    for month in archive_index.archived_months(layout):
        try:
            manifest = archive_index.read_month_manifest(layout, month)
        except archive_index.ArchiveDamaged:
            continue
        for ds, entry in manifest["datasets"].items():
            out.setdefault(ds, set()).update(entry["days"])
    return out


def duplicated_keys(layout: Layout, store: PartitionStore) -> list[str]:
    """Rows stored twice: a day folder repeating keys its archived rows hold (late rows must be new ones).
    Ids stored on two days are the audit's (:func:`mia_pipeline.collection.audit.duplicate_ids`)."""
    problems: list[str] = []
    archived = _archived_days(layout)
    daily = set(store.days_present())
    for ds in STORED_DATASETS:
        keys = ("file", "offset") if ds == RAW_EVENTS else DATASET_KEYS[ds]
        for day in sorted(archived.get(ds, set()) & daily):
            try:
                old, new = store.read_split(day, ds)
            except (StorageError, OSError, pa.ArrowException):
                continue  # damage is reported by the file checks
            if old is None or new is None or not new.num_rows:
                continue
            both = key_columns(new, keys).join(key_columns(old, keys).group_by(list(keys)).aggregate([]),
                                               keys=list(keys), join_type="inner")
            if both.num_rows:
                problems.append(f"{day}/{ds}: {both.num_rows} row(s) of the day folder repeat keys its archived "
                                f"rows hold (stored twice), e.g. {both.slice(0, 1).to_pylist()[0]}")
    return problems


def hidden_local_partitions(layout: Layout) -> list[str]:
    """With the partitions on object storage, day folders and archive months left under the data root: no
    reader sees them."""
    if layout.store is None:
        return []
    local = Layout(layout.root)
    days, months = local.days_present(), archive_index.archived_months(local)
    if not days and not months:
        return []
    what = ", ".join(f"{len(x)} {name} ({x[0]} .. {x[-1]})" for x, name in ((days, "day folder(s)"),
                                                                             (months, "archive month(s)")) if x)
    return [f"{what} under {local.root / 'snapshots'} are not read: the partitions are on {layout.store.url}; "
            "`mia move-partitions` moves them there"]


def archive_problems(layout: Layout) -> list[str]:
    """Problems of the archived months: a damaged manifest, a month file missing or not matching its
    sha256 or row counts, Parquet files in a month folder that nothing vouches for."""
    problems: list[str] = []
    if layout.store is not None:
        folders = {m: list(names) for m, names in archive_index.month_objects(layout).items()}
    elif layout.archive_dir.is_dir():
        folders = {p.name: [f.name for f in p.iterdir()] for p in layout.archive_dir.iterdir() if p.is_dir()}
    else:
        return problems
    months = set(archive_index.archived_months(layout))
    for folder in sorted(m for m in folders if m not in months):
        if any(name.endswith(".parquet") for name in folders[folder]):
            problems.append(f"archive {folder}: Parquet files without a month manifest (nothing vouches for "
                            "them): an interrupted `mia archive` leaves these, run it again; otherwise the "
                            "month manifest was lost: restore the month from a backup")
    for month in sorted(months):
        try:
            manifest = archive_index.read_month_manifest(layout, month)
        except archive_index.ArchiveDamaged as exc:
            problems.append(f"archive {month}: {exc}")
            continue
        for ds, entry in sorted(manifest["datasets"].items()):
            where = f"archive {month}/{ds}"
            digest = archive_index.month_file_sha256(layout, month, entry["file"])
            if digest is None:
                problems.append(f"{where}: file {entry['file']} is missing")
            elif digest != entry["sha256"]:
                problems.append(f"{where}: {entry['file']} does not match the sha256 of the month manifest")
            else:
                try:
                    location = archive_index.month_location(layout, month, entry["file"])
                    rows = pq.ParquetFile(archive_index.open_location(location)).metadata.num_rows
                except ObjectStoreError:
                    raise
                except (OSError, pa.ArrowException) as exc:
                    problems.append(f"{where}: not a readable Parquet file ({exc})")
                    continue
                per_day = sum(d["rows"] for d in entry["days"].values())
                if not rows == entry["rows"] == per_day:
                    problems.append(f"{where}: {rows} rows on disk, manifest says {entry['rows']} "
                                    f"({per_day} over its days)")
    return problems


def record_integrity_result(layout: Layout, problems: list[str], scope: str, by: str) -> dict:
    """Keep the latest integrity verdict (``reports/integrity_last.json``) for `mia health`."""
    from datetime import UTC, datetime

    from mia_pipeline.storage.atomic import atomic_write_json

    result = {"checked_at": datetime.now(UTC).isoformat(timespec="seconds"), "scope": scope, "by": by,
              "problems": len(problems), "first": problems[:5]}
    layout.reports_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(layout.reports_dir / INTEGRITY_RESULT, result)
    return result


def last_integrity_result(layout: Layout) -> dict | None:
    """The latest verdict recorded by `mia check-integrity` or the nightly job (None: never, or damaged)."""
    try:
        result = json.loads((layout.reports_dir / INTEGRITY_RESULT).read_bytes())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and "problems" in result else None
