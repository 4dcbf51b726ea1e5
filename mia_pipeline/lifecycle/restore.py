"""Restore from backups: pick the newest good copy, install it atomically, verify what was installed.

A backup is *good for a day* when its manifest is intact (checksum), it holds the day's manifest and
every file that manifest names, and every one of those blobs re-reads to its sha256. A backup with a
single flipped byte in any of them is skipped (and reported); the next older good one is used.

Installing follows the partition store's commit protocol, under the day's lock: each file is copied
from its blob to a temp file beside its final name (its sha256 checked while copying), the day
manifest is written with the entries ``staged`` on those temp files (**the commit point**), the temp
files are renamed into place, then the manifest is rewritten without ``staged``. A restore killed at
any moment leaves the day as it was or as restored (readers follow staged entries); the next writer or
`mia check-integrity` finishes or sweeps the rest. Files the restored manifest does not name are
removed after the commit. Partitions on object storage follow that store's protocol instead: each file
is uploaded under its content name, the manifest published last (see
:mod:`mia_pipeline.storage.object_partitions`).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mia_pipeline.collection import landing
from mia_pipeline.collection.ingest import rows_not_in
from mia_pipeline.collection.merge import key_columns
from mia_pipeline.collection.raw import RAW_SCHEMA
from mia_pipeline.collection.rebuild import tables_from_raw
from mia_pipeline.layout import RAW_EVENTS, Layout, LayoutError, check_dataset
from mia_pipeline.lifecycle.blobstore import BackupTarget, TargetError, copy_hashing
from mia_pipeline.lifecycle.catalog import (
    DAY_MANIFEST,
    Backup,
    BlobChecker,
    FileRef,
    list_backups,
    target_for,
)
from mia_pipeline.schemas import DATASET_KEYS
from mia_pipeline.settings import Settings
from mia_pipeline.storage import PartitionStore, StorageError
from mia_pipeline.storage.atomic import atomic_write, locked
from mia_pipeline.storage.partitions import read_self_checked

QUARANTINE_MODE = 0o600


class RestoreError(RuntimeError):
    """Nothing good to restore from, or the restored files did not verify (exit 1)."""


class RestoreInputError(ValueError):
    """The request names something no backup holds (an unknown day or trade id): exit 2."""


@dataclass
class DayRestore:
    day: str
    backup_id: str
    datasets: list[str] = field(default_factory=list)  # files written ([] when the day already matched)
    skipped: dict[str, str] = field(default_factory=dict)  # backup id -> why it was not used (for a file or all)
    quarantine: bool = False
    sources: dict[str, str] = field(default_factory=dict)  # dataset written -> backup id it came from
    unrestored: dict[str, str] = field(default_factory=dict)  # dataset -> why no backup could restore it
    kept_newer: int = 0  # raw lines stored here and in no backup, kept (the datasets rebuilt with them)
    not_kept: str = ""  # why lines stored here could not be read and kept ("" when nothing was lost)
    reread: str = ""  # the day's manifest here was lost: which landing files will be read again (see rewind)


def open_target(layout: Layout, settings: Settings) -> BackupTarget:
    target = target_for(layout, settings)
    try:
        target.prepare(create=False)
    except ValueError as exc:
        raise TargetError(str(exc)) from None
    return target


def read_json_blob(target: BackupTarget, ref: FileRef) -> dict:
    with target.open_blob(ref.sha256) as fh:
        return json.loads(fh.read())


def _copy_verified(src, dest: Path, sha256: str, what: str) -> None:
    """Copy the open ``src`` to ``dest`` (a temp path) checking its sha256 on the way: a mismatch is an error."""
    with src, open(dest, "wb") as out:
        sha, _ = copy_hashing(src, out)
    if sha != sha256:
        raise RestoreError(f"{what} changed while it was restored (read {sha[:12]}); nothing was committed")


def copy_blob(target: BackupTarget, ref: FileRef, dest: Path) -> None:
    """Write the blob to ``dest`` (a temp path) checking its sha256 on the way: a mismatch is an error."""
    _copy_verified(target.open_blob(ref.sha256), dest, ref.sha256, f"blob {ref.sha256[:12]}")


def day_problem(target: BackupTarget, backup: Backup, day: str, checker: BlobChecker,
                files_too: bool = True) -> tuple[str | None, dict]:
    """(why ``backup`` cannot restore ``day`` or None, the day manifest it holds). ``files_too=False`` judges
    the manifest alone (its blob, its shape, the files it names held with their sha256), not the data blobs."""
    files = backup.day_files(day)
    if DAY_MANIFEST not in files:
        return "it holds no manifest of the day", {}
    if bad := checker.bad(files if files_too else {DAY_MANIFEST: files[DAY_MANIFEST]}):
        return f"{', '.join(sorted(bad))}: missing from the target, or not matching its sha256 (damaged copy)", {}
    try:
        manifest = read_json_blob(target, files[DAY_MANIFEST])
        if manifest.get("day", day) != day:
            return f"its manifest of {day} describes {manifest.get('day')!r}", {}
        entries = manifest["datasets"]
        for name, entry in entries.items():
            check_dataset(name)
            if not re.fullmatch(re.escape(name) + r"(\.[0-9a-f]{16})?\.parquet", entry["file"]):
                return f"its manifest names {entry['file']!r} for {name}", {}
            ref = files.get(entry["file"])
            if ref is None or ref.sha256 != entry["sha256"]:
                return f"{entry['file']} is not held as its manifest says", {}
    except (ValueError, KeyError, TypeError, LayoutError) as exc:
        return f"its day manifest is malformed ({exc})", {}
    return None, manifest


def install_day(store: PartitionStore, target: BackupTarget, day: str, manifest: dict,
                blobs: dict[str, FileRef]) -> None:
    """Make ``manifest`` the day's manifest, writing the datasets in ``blobs`` from the target (one commit of
    the store, :meth:`~mia_pipeline.storage.partitions.PartitionStore.install`); other entries must already be
    stored as they say."""
    store.install(day, manifest, {name: (lambda p, r=ref: copy_blob(target, r, p)) for name, ref in blobs.items()})


def dataset_ref(files: dict[str, FileRef], dataset: str) -> FileRef | None:
    """The backed-up file of ``dataset`` among a day's files (``trades.parquet``, or ``trades.<hash>.parquet``
    from partitions on object storage)."""
    pattern = re.compile(re.escape(dataset) + r"(\.[0-9a-f]{16})?\.parquet")
    return next((ref for name, ref in sorted(files.items()) if pattern.fullmatch(name)), None)


def restore_day(layout: Layout, settings: Settings, store: PartitionStore, day: str,
                target: BackupTarget | None = None) -> DayRestore:
    """Restore one day (all its datasets and raw lines; its quarantine file when missing here) as the newest
    backup with a good manifest of it holds it, file by file: a dataset whose blob is damaged comes from the
    newest older backup whose copy verifies, and damage in one file never blocks the others. A dataset no
    backup can restore stays as it is here (reported in ``unrestored``). Datasets that already match are not
    rewritten.

    Rows stored here and in no backup (landed after it) are kept: the raw lines stored here (vouched for by
    the day's manifest, or, with the manifest lost, by each Parquet page's checksum) are merged with the
    backup's, and the day's datasets rebuilt from the union, all in the same one commit. Raw lines here that
    cannot be read are reported in ``not_kept``. Runs under the ingest lock: a collector's pass waits for it.

    Raises :class:`RestoreInputError` when no backup holds the day, :class:`RestoreError` when nothing could
    be restored and something is damaged, or when what was written does not verify."""
    with locked(layout.ingest_lock_file):
        return _restore_day(layout, settings, store, day, target or open_target(layout, settings))


def _restore_day(layout: Layout, settings: Settings, store: PartitionStore, day: str,
                 target: BackupTarget) -> DayRestore:
    with target.lock(exclusive=False):
        good, damaged = list_backups(target)
        holding = [b for b in good if day in b.days()]
        if not holding:
            every = sorted({d for b in good for d in b.days()})
            held = f"they hold {len(every)} day(s), {every[0]} to {every[-1]}" if every else "they hold no day"
            if damaged and not good:
                raise RestoreError(f"no usable backup in {target.location}: every manifest is damaged")
            raise RestoreInputError(f"no backup in {target.location} holds {day}; {held}")
        checker = BlobChecker(target)
        skipped = {name: f"manifest damaged: {why}" for name, why in damaged.items()}
        plans = []  # (backup, its manifest of the day), newest first
        for backup in holding:
            problem, manifest = day_problem(target, backup, day, checker, files_too=False)
            if problem:
                skipped[f"{backup.kind}/{backup.id}"] = problem
            else:
                plans.append((backup, manifest))
        if not plans:
            raise RestoreError(f"every backup holding {day} is damaged: "
                               + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
        base_backup, base = plans[0]
        result = DayRestore(day, f"{base_backup.kind}/{base_backup.id}", skipped=skipped)
        local = _local_entries(store, day)
        manifest = json.loads(json.dumps(base))
        blobs: dict[str, FileRef] = {}
        raw_since = base_backup.created_at
        for name in base["datasets"]:
            chosen = _newest_good_copy(plans, day, name, checker, skipped, target)
            if chosen is None:
                result.unrestored[name] = "every backup's copy is missing or damaged"
                if name in local:  # what is here stays (damaged or not): nothing is dropped for lack of a copy
                    manifest["datasets"][name] = local[name][0]
                else:
                    del manifest["datasets"][name]
                continue
            backup, entry, ref = chosen
            manifest["datasets"][name] = entry
            if not (name in local and local[name][0].get("sha256") == entry["sha256"] and local[name][1]):
                blobs[name] = ref
                result.sources[name] = f"{backup.kind}/{backup.id}"
                if name == RAW_EVENTS:  # a later backup may have carried these same lines forward
                    raw_since = min(b.created_at for b, m in plans
                                    if m["datasets"].get(RAW_EVENTS, {}).get("sha256") == entry["sha256"])
        if result.unrestored and not blobs:
            raise RestoreError(f"every backup holding {day} is damaged: "
                               + "; ".join(f"{name}: {why}" for name, why in sorted(result.unrestored.items()))
                               + "; " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
        fetch = {name: (lambda p, r=ref: copy_blob(target, r, p)) for name, ref in blobs.items()}
        with tempfile.TemporaryDirectory(prefix=".restore-", dir=_scratch_parent(layout)) as scratch:
            if RAW_EVENTS in blobs:
                _keep_newer_rows(store, target, day, manifest, blobs, fetch, Path(scratch), result,
                                 frozenset(settings.symbols), raw_since)
            if fetch or set(local) != set(manifest["datasets"]):
                store.install(day, manifest, fetch)
        result.datasets = sorted(fetch)
        result.quarantine = _restore_quarantine(layout, target, base_backup, day)
        problems = [p for p in store.verify(day) if not any(f"/{n}:" in p for n in result.unrestored)]
        if problems:
            raise RestoreError(f"{day} restored from {result.backup_id} but does not verify: {problems[0]}")
        return result


def _scratch_parent(layout: Layout) -> Path:
    parent = layout.root / "live"
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _local_raw(store: PartitionStore, day: str) -> tuple[pa.Table | None, str, bool]:
    """(the raw lines stored here for ``day``, or None; why lines that are here cannot be used, or ""; whether
    the day's manifest is lost or damaged and no raw lines file could be found without it)."""
    try:
        entry = store.entry(day, RAW_EVENTS)
        if entry is None and store.manifest(day)["datasets"]:
            return None, "", False  # the manifest says the day has no raw lines here
        if entry is not None and store.verify_dataset(day, RAW_EVENTS) is None:
            return store.read(day, RAW_EVENTS), "", False
    except (StorageError, LayoutError, OSError):
        pass  # the manifest is damaged or lost: judge the file by its own page checksums
    if store.layout.store is not None:  # on object storage a file without its manifest cannot be found
        return None, "", True
    path = store.layout.dataset_file(day, RAW_EVENTS)
    if not path.exists():
        return None, "", True
    try:
        return read_self_checked(path).cast(RAW_SCHEMA), "", False
    except (StorageError, pa.ArrowException, ValueError) as exc:
        return None, (f"the raw lines stored here cannot be used ({exc}); lines that landed after the backup, if "
                      "any, are not in the restored day"), False


def _keep_newer_rows(store: PartitionStore, target: BackupTarget, day: str, manifest: dict,
                     blobs: dict[str, FileRef], fetch: dict, scratch: Path, result: DayRestore,
                     known_symbols: frozenset[str], since: str) -> None:
    """Raw lines stored here that the restored raw lines lack are merged in, and every dataset of the day is
    rebuilt from the union (written to ``scratch``, then installed by the same commit: ``manifest`` and
    ``fetch`` are updated in place). When the raw lines here cannot be read, the landing zone's offsets go
    back to where the restored raw lines end (``since``: when that backup began), before anything is
    installed, so the next collection pass lands again what the landing files still hold: offsets are never
    ahead of what is stored."""
    here, why, lost = _local_raw(store, day)
    if here is None and not (why or lost):
        return
    copy_blob(target, blobs[RAW_EVENTS], scratch / "raw.parquet")
    restored = pq.read_table(scratch / "raw.parquet").cast(RAW_SCHEMA)
    if why or lost:
        reread, lost_files, direct = _rewound(store.layout, restored, since)
        not_kept = "; ".join(x for x in (why, lost_files, direct) if x)
        if why:
            result.not_kept = not_kept + (f"; {reread}" if reread else "")
        else:  # nothing here to merge: what landed after the backup, if anything, is read again
            result.not_kept = not_kept
            result.reread = (reread or "no landing file was committed since the backup") + (
                "" if direct else "; rows that a Sierra import or recording, or an IB backfill, landed directly "
                "after the backup are in no landing file: run it again for the day (idempotent)")
        return
    if here.num_rows == 0:
        return
    newer = rows_not_in(here, restored)
    if newer.num_rows == 0:
        return
    merged = pa.concat_tables([restored, newer])
    writes = {ds: t for ds, t in tables_from_raw(merged, day, known_symbols).items()
              if t.num_rows or ds in manifest["datasets"]}
    writes[RAW_EVENTS] = merged
    side = PartitionStore(Layout(scratch / "root"), compression=store.compression)
    for name, entry in side.write_many(day, writes).items():
        path = side.committed_file(day, name)
        manifest["datasets"][name] = asdict(entry)
        fetch[name] = lambda p, src=path, sha=entry.sha256: _copy_verified(open(src, "rb"), p, sha, str(src))
        result.sources[name] = f"{result.backup_id} + {newer.num_rows} newer raw line(s) kept from here"
    result.unrestored = {n: w for n, w in result.unrestored.items() if n not in writes}
    result.kept_newer = newer.num_rows


def _rewound(layout: Layout, restored: pa.Table, since: str) -> tuple[str, str, str]:
    """Landing offsets moved back to what ``restored`` holds (see :func:`landing.rewind`). Returns what it
    did, said: (files to be read again, landing files gone since, sources that landed rows directly and
    cannot be read again from here), each "" when there is nothing to say."""
    end = pc.add(restored["offset"], pc.cast(pc.binary_length(restored["line"]), pa.int64()))
    ends = pa.table({"file": restored["file"], "end": end}).group_by("file").aggregate([("end", "max")])
    held = dict(zip(ends["file"].to_pylist(), ends["end_max"].to_pylist(), strict=True))  # a file's last line's end
    done = landing.rewind(layout, since, held)
    reread = (f"{len(done.moved)} landing file(s) committed since the backup will be read again from where it "
              "ends: the next collection pass lands what they still hold (duplicates dropped)") if done.moved else ""
    gone = (f"{len(done.gone)} landing file(s) committed since the backup are gone, what they held after it is "
            f"lost: {', '.join(done.gone[:5])}") if done.gone else ""
    direct = sorted(n for n in held if ":" in n or "/" in n)  # sierra:<file>, ibkr-backfill/<series>
    said = (f"rows that {', '.join(direct[:5])} landed after the backup, if any, are in no landing file: run that "
            "import, `mia record sierra` or `mia backfill ibkr` for the day again (idempotent)") if direct else ""
    return reread, gone, said


def _local_entries(store: PartitionStore, day: str) -> dict[str, tuple[dict, bool]]:
    """``{dataset: (its entry here, whether its file verifies)}``; nothing when the manifest is unreadable."""
    try:
        entries = store.manifest(day)["datasets"]
    except StorageError:
        return {}
    return {name: (entry, store.verify_dataset(day, name) is None) for name, entry in entries.items()}


def _newest_good_copy(plans, day: str, name: str, checker: BlobChecker, skipped: dict[str, str], target):
    """(backup, entry, blob) of the newest backup whose copy of ``name`` re-reads to its sha256 and belongs to
    ``day`` (:func:`foreign_rows`), or None."""
    for backup, manifest in plans:
        entry = manifest["datasets"].get(name)
        if entry is None:
            continue
        ref = backup.day_files(day)[entry["file"]]
        if not checker.ok(ref):
            skipped.setdefault(f"{backup.kind}/{backup.id}", f"{entry['file']}: missing from the target, or not "
                               "matching its sha256 (damaged copy)")
        elif why := foreign_rows(target, ref, name, day):
            skipped.setdefault(f"{backup.kind}/{backup.id}", f"{entry['file']}: {why} (not restored)")
        else:
            return backup, entry, ref
    return None


def foreign_rows(target: BackupTarget, ref: FileRef, dataset: str, day: str) -> str | None:
    """Why the blob cannot be ``day``'s ``dataset`` (the blocking checks of a partition, before anything is
    published: every row's time inside the day, keys unique, readable), or None. A backup manifest naming
    another day's blob for this one is caught here, whatever its checksum says."""
    keys = ("file", "offset") if dataset == RAW_EVENTS else DATASET_KEYS.get(dataset, ())
    try:
        with target.open_blob(ref.sha256) as fh, tempfile.TemporaryFile() as local:
            seekable = fh.seekable() if hasattr(fh, "seekable") else False
            if not seekable:  # an object store's stream: a local copy to read the columns from
                shutil.copyfileobj(fh, local, 1 << 20)
                local.seek(0)
            pf = pq.ParquetFile(fh if seekable else local)
            tops = [c for c in dict.fromkeys(("ts", *(k.split(".", 1)[0] for k in keys)))
                    if c in pf.schema_arrow.names]
            table = pf.read(columns=tops)
    except (OSError, pa.ArrowException, ValueError) as exc:
        return f"not readable Parquet ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    if table.num_rows == 0:
        return None
    if "ts" not in table.column_names:  # not a partition of the event contract (every dataset has ts):
        return None                     # nothing to place in time, and nothing a reader of days would serve
    lo = pa.scalar(datetime.fromisoformat(day).replace(tzinfo=UTC), pa.timestamp("ms", tz="UTC"))
    hi = pa.scalar(datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1), pa.timestamp("ms", tz="UTC"))
    ts = table.column("ts").cast(pa.timestamp("ms", tz="UTC"))
    outside = pc.sum(pc.or_(pc.less(ts, lo), pc.greater_equal(ts, hi))).as_py() or 0
    if outside:
        first = pc.min(ts).as_py()
        return f"{outside} of its {table.num_rows} rows are outside {day} (UTC), e.g. {first:%Y-%m-%d %H:%M}"
    if keys and all(k.split(".", 1)[0] in table.column_names for k in keys):
        distinct = key_columns(table, keys).group_by(list(keys)).aggregate([]).num_rows
        if distinct != table.num_rows:
            return f"{table.num_rows - distinct} of its rows repeat a key ({', '.join(keys)})"
    return None


def _restore_quarantine(layout: Layout, target: BackupTarget, backup: Backup, day: str) -> bool:
    """The day's rejects come back when they are missing here (present ones are newer: kept)."""
    path = layout.quarantine_file(day)
    ref = backup.files.get(path.relative_to(layout.root).as_posix())
    if ref is None or path.exists() or not BlobChecker(target).ok(ref):
        return False
    atomic_write(path, lambda p: copy_blob(target, ref, p), mode=QUARANTINE_MODE)
    return True
