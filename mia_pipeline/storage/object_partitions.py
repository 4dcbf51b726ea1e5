"""Daily partitions on object storage (``data_collection.storage.url: s3://bucket/prefix``).

The same API and promises as :class:`~mia_pipeline.storage.partitions.PartitionStore`; everything else
of the data root (live capture, quarantine, locks, Dagster's records, the warehouse file) stays local.
Layout of one day::

    s3://bucket/prefix/daily/2025-06-23/_manifest.json
    s3://bucket/prefix/daily/2025-06-23/trades.<sha256[:16]>.parquet   ...

S3 has no rename and no lock. The commit protocol that replaces the local one (temp file, staged
manifest, rename), under the day's lock on this host (``ROOT/live/.store-locks/<day>.lock``):

1. each dataset is written to a local temp file (``ROOT/live/.store-staging/<day>/``) and sealed (rows,
   bytes, sha256);
2. each is uploaded (to a staging key, size-checked, copied by the server to its key: see
   :mod:`mia_pipeline.storage.objects`) under a **new key named by its content**, so a new version never
   overwrites the object a reader is reading;
3. the manifest naming the new objects is published the same way: **the commit point**. A reader gets the
   previous manifest or the new one, and either names complete objects;
4. objects no manifest names any more (previous versions, uploads of a writer killed before 3) are deleted
   once they are older than :data:`GRACE_S` (a reader that read the previous manifest, warehouse views not
   refreshed since), at the day's next write or by ``mia check-integrity``.

A writer killed at any point leaves the previous manifest, hence the previous day. A day whose manifest is
lost keeps its objects (they are reported, never swept).

Reading: a committed object is downloaded once to a local cache (``ROOT/live/.store-cache/<day>/<name>``),
its sha256 checked against the manifest on the way; code that reads Parquet paths (DuckDB, memory maps)
reads that copy. The names carry the content hash, so a cached copy never goes stale; the cache keeps the
:data:`CACHE_BYTES` most recently used. Verification reads the objects themselves, never the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mia_pipeline.layout import Layout, parse_day
from mia_pipeline.storage.atomic import locked, sha256_file, sweep_temp_files, temp_path_for, write_temp
from mia_pipeline.storage.objects import ObjectStore, ObjectStoreError
from mia_pipeline.storage.partitions import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    DatasetEntry,
    PartitionStore,
    StorageError,
    _now,
)

GRACE_S = 3600.0          # an object no manifest names is kept this long before it is deleted
CACHE_BYTES = 4 << 30     # local copies kept, most recently used first
_FILE_RE = re.compile(r"(?P<dataset>[a-z][a-z0-9_]*)\.[0-9a-f]{16}\.parquet")
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


class ObjectPartitionStore(PartitionStore):
    """Daily partitions under ``layout.store`` (an ``s3://`` location); see the module docstring."""

    def __init__(self, layout: Layout, compression: str = "zstd", objects: ObjectStore | None = None):
        super().__init__(layout, compression)
        if layout.store is None:
            raise StorageError("this data root keeps its partitions under the root, not on object storage")
        self.objects = objects or ObjectStore(layout.store)
        self.cache_dir = layout.root / "live" / ".store-cache"
        self.staging_dir = layout.root / "live" / ".store-staging"
        self.locks_dir = layout.root / "live" / ".store-locks"
        self._bucket_checked = False

    @staticmethod
    def _rel(day: str, name: str = "") -> str:
        return f"daily/{day}" + (f"/{name}" if name else "")

    # ------------------------------------------------------------------ hooks of PartitionStore
    def days_present(self) -> list[str]:
        """Days with objects under ``daily/``. A listing of a bucket that does not exist is empty: so when
        there is no day, the bucket is checked (once per store) rather than taken for an empty store."""
        days = []
        for name in self.objects.folders("daily"):
            try:
                if _DAY_RE.fullmatch(name) and parse_day(name):
                    days.append(name)
            except ValueError:
                continue
        if not days and not self._bucket_checked:
            self.objects.check_bucket()
            self._bucket_checked = True
        return days

    def day_bytes(self, day: str | date) -> int:
        return sum(info.size or 0 for info in self._names(parse_day(day).isoformat()).values())

    def file_location(self, day: str | date, entry: DatasetEntry) -> str:
        return f"{self.objects.url}/{self._rel(parse_day(day).isoformat(), entry.file)}"

    def manifest_location(self, day: str | date) -> str:
        return f"{self.objects.url}/{self._rel(parse_day(day).isoformat(), MANIFEST_NAME)}"

    def _manifest_text(self, day: str | date) -> str:
        return self.objects.get_bytes(self._rel(parse_day(day).isoformat(), MANIFEST_NAME)).decode("utf-8")

    def _save_manifest(self, day: str, manifest: dict, durable: bool = True) -> None:
        manifest["updated_at"] = _now()
        self._put_manifest(day, manifest)

    def _put_manifest(self, day: str, manifest: dict) -> None:
        """Publish the manifest as it is (the same bytes as a manifest file under the data root)."""
        data = (json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n").encode()
        self.objects.put_bytes(self._rel(day, MANIFEST_NAME), data)

    def day_lock(self, day: str, create: bool = True):
        return locked(self.locks_dir / f"{day}.lock")

    def stage_path(self, day: str, dataset: str) -> Path:
        return self.staging_dir / day / f"{dataset}.parquet"

    def file_name(self, dataset: str, sha256: str) -> str:
        return f"{dataset}.{sha256[:16]}.parquet"

    def _names_ok(self, dataset: str, entry: DatasetEntry) -> bool:
        m = _FILE_RE.fullmatch(entry.file)
        return bool(m) and m["dataset"] == dataset and not entry.staged

    def manifest(self, day: str | date) -> dict:
        """As :meth:`PartitionStore.manifest`; a day whose removal began (``"removing"``) has no datasets."""
        manifest = super().manifest(day)
        if manifest.get("removing"):
            return {"format": MANIFEST_FORMAT, "day": parse_day(day).isoformat(), "datasets": {}, "removing": True}
        return manifest

    def drop_day(self, day: str | date) -> None:
        """Remove the whole day. The manifest is first rewritten as ``"removing"`` (the commit point: readers
        see no dataset from then on), then the objects are deleted, the manifest last; a crash in between is
        finished by the day's next writer, :meth:`recover` or the next removal. Day lock held."""
        day = parse_day(day).isoformat()
        if self._names(day):
            self._save_manifest(day, {"format": MANIFEST_FORMAT, "day": day, "datasets": {}, "removing": True})
            self._finish_removal(day)
        shutil.rmtree(self.cache_dir / day, ignore_errors=True)

    def _finish_removal(self, day: str) -> None:
        for name in self._names(day):
            if name != MANIFEST_NAME:
                self.objects.delete(self._rel(day, name))
        self.objects.delete(self._rel(day, MANIFEST_NAME))
        self.objects.delete_folder(self._rel(day))  # pyarrow leaves a folder marker: the day would still be listed

    def _recover_locked(self, day: str) -> dict:
        """Nothing to roll forward (the manifest's publication is the whole commit): finish a removal that
        was interrupted, sweep this host's temp files of the day and the objects no manifest has named for
        :data:`GRACE_S`. Day lock held."""
        manifest = self.manifest(day)
        if manifest.get("removing"):
            self._finish_removal(day)
            manifest = self.manifest(day)
        sweep_temp_files(self.staging_dir / day)
        self._sweep(day, manifest)
        return manifest

    def recover(self, day: str | date) -> None:
        super().recover(day)
        self.objects.sweep_staging()

    def _commit_entries(self, day: str, manifest: dict, commit) -> None:
        manifest.setdefault("created_at", _now())
        manifest.update(format=MANIFEST_FORMAT, day=day)
        for dataset, tmp in commit.temps.items():
            entry = commit.entries[dataset]
            with open(tmp, "rb") as fh:
                self.objects.put_stream(self._rel(day, entry.file), fh)
            entry.staged = None
            manifest["datasets"][dataset] = asdict(entry)
        self._save_manifest(day, manifest)  # the commit point (for every dataset at once)
        self._keep_copies(day, {ds: (tmp, commit.entries[ds].file) for ds, tmp in commit.temps.items()})
        self._sweep(day, manifest)

    def _install_locked(self, day: str, manifest: dict, fetch) -> None:
        """Each fetched dataset to a local temp file, uploaded under its content name; the manifest last."""
        temps: dict[str, Path] = {}
        try:
            for name, write in fetch.items():
                temps[name] = write_temp(self.stage_path(day, name), write, durable=False, mode=0o600)
                with open(temps[name], "rb") as fh:
                    self.objects.put_stream(self._rel(day, manifest["datasets"][name]["file"]), fh)
            self._put_manifest(day, manifest)  # the commit point: the restored manifest, byte for byte
        except BaseException:
            for tmp in temps.values():
                tmp.unlink(missing_ok=True)
            raise
        self._keep_copies(day, {name: (tmp, manifest["datasets"][name]["file"]) for name, tmp in temps.items()})
        self._sweep(day, manifest)

    def _keep_copies(self, day: str, files: dict[str, tuple[Path, str]]) -> None:
        """This host's copies of what it just committed become the cache's: no download to read them."""
        for tmp, name in files.values():
            cached = self.cache_dir / day / name
            cached.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, cached)
        self._evict()

    def _forget(self, day: str, dataset: str) -> None:
        """The object stays until it is :data:`GRACE_S` old (a reader may hold the previous manifest)."""

    def _file_of(self, day: str | date, dataset: str, entry: DatasetEntry) -> Path:
        """The local copy of the committed object (downloaded and checked on first use)."""
        day = parse_day(day).isoformat()
        cached = self.cache_dir / day / entry.file
        try:
            if cached.stat().st_size == entry.bytes:  # a copy is checked whole when it is made, by size after
                os.utime(cached)  # recently used: kept by the eviction
                return cached
            cached.unlink(missing_ok=True)  # not what was cached: fetched again
        except FileNotFoundError:
            pass
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path_for(cached)
        digest = hashlib.sha256()
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
                self.objects.copy_to(self._rel(day, entry.file), fh, digest.update)
            if digest.hexdigest() != entry.sha256:
                raise StorageError(f"{day}/{dataset}: {self.objects.url}/{self._rel(day, entry.file)} does not match "
                                   f"its manifest (sha256 {digest.hexdigest()[:12]}, manifest {entry.sha256[:12]}); "
                                   "run `mia check-integrity`")
            os.replace(tmp, cached)
        finally:
            tmp.unlink(missing_ok=True)
        self._evict(keep=cached)
        return cached

    def verify_dataset(self, day: str | date, dataset: str) -> str | None:
        """The object's problem (missing, sha256, row count), read from the store itself. A local copy that
        no longer matches is dropped (the next read downloads the object again)."""
        day = parse_day(day).isoformat()
        entry = self.entry(day, dataset)
        if entry is None:
            return None
        rel = self._rel(day, entry.file)
        digest = self.objects.sha256(rel)
        if digest is None:
            return f"{day}/{dataset}: object {entry.file} is missing from {self.objects.url}/daily/{day}"
        if digest != entry.sha256:
            return f"{day}/{dataset}: sha256 {digest[:12]} does not match manifest {entry.sha256[:12]}"
        try:
            with self.objects.open_random(rel) as fh:
                rows = pq.ParquetFile(fh).metadata.num_rows
        except ObjectStoreError:
            raise
        except (OSError, pa.ArrowException) as exc:
            return f"{day}/{dataset}: not a readable Parquet file ({exc})"
        if rows != entry.rows:
            return f"{day}/{dataset}: {rows} rows in the object, manifest says {entry.rows}"
        cached = self.cache_dir / day / entry.file
        if cached.exists():
            if sha256_file(cached) != entry.sha256:
                cached.unlink(missing_ok=True)
        return None

    def orphan_files(self, day: str | date) -> list[str]:
        names = self._names(parse_day(day).isoformat())
        if not names or MANIFEST_NAME in names:
            return []
        return sorted(n for n in names if n.endswith(".parquet"))

    def _unexpected(self, day: str, expected: set[str]) -> list[str]:
        """Objects of the day that are neither its manifest, nor a version of a dataset (named ones, and
        previous ones waiting for their grace period to end)."""
        return [n for n in self._names(day) if n != MANIFEST_NAME and n not in expected and not _FILE_RE.fullmatch(n)]

    # ------------------------------------------------------------------ own
    def _names(self, day: str) -> dict[str, object]:
        """``{object name: info}`` under the day's prefix."""
        return {rel.rsplit("/", 1)[-1]: info for rel, info in self.objects.list(self._rel(day)).items()}

    def _sweep(self, day: str, manifest: dict) -> list[str]:
        """Delete the day's versions the manifest does not name that are older than GRACE_S; returns them.
        Nothing is swept from a day without a manifest (its objects are what is left of it)."""
        names = self._names(day)
        if MANIFEST_NAME not in names:
            return []
        named = {e.get("file") for e in manifest["datasets"].values()}
        now = time.time()
        swept = []
        for name, info in names.items():
            if name in named or not _FILE_RE.fullmatch(name):
                continue
            if info.mtime is not None and now - info.mtime.timestamp() > GRACE_S:
                self.objects.delete(self._rel(day, name))
                swept.append(name)
        return swept

    def _evict(self, keep: Path | None = None) -> None:
        """Keep the cache under CACHE_BYTES, dropping the least recently used copies first."""
        if not self.cache_dir.is_dir():
            return
        files = []
        for p in self.cache_dir.glob("*/*.parquet"):
            try:
                st = p.stat()
            except FileNotFoundError:  # evicted by another process
                continue
            files.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files, key=lambda f: f[0]):
            if total <= CACHE_BYTES:
                break
            if p != keep:
                p.unlink(missing_ok=True)
                total -= size


def partition_store(layout: Layout, compression: str = "zstd") -> PartitionStore:
    """The partition store of ``layout``: under the data root, or on object storage when ``layout.store`` is set."""
    if layout.store is not None:
        return ObjectPartitionStore(layout, compression)
    return PartitionStore(layout, compression)
