"""Backup target storage: content-addressed blobs plus one manifest per backup, behind a small interface.

A target on a local disk or mount (:class:`LocalTarget`) looks like::

    <target>/
      mia-backup.json              marker: this folder is a mia backup target (format, created_at)
      .lock                        flock: backups hold it exclusively, restores shared
      blobs/ab/ab12…ef             file contents, named by their sha256 (written once, never changed)
      blobs/.tmp/                  blob writes in progress (temp file, fsync, rename)
      hourly|daily|weekly/<id>.json  one manifest per backup, written last (the backup's commit point)

Blobs are immutable: a file whose content is already stored costs nothing to back up again, which is
why a "full" backup costs only new content. :class:`BackupTarget` is all the backup and restore code
uses; :class:`ObjectTarget` is the same layout on object storage (``backup.target: s3://bucket/prefix``).

Errors: :class:`TargetSetupError` (the configured target is not usable as set: a bad setting) and
:class:`TargetError` (the target exists but cannot be used now: missing mount, damaged marker).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from mia_pipeline.layout import BACKUP_KINDS
from mia_pipeline.storage.atomic import atomic_write_bytes, fsync_dir, temp_path_for
from mia_pipeline.storage.objects import STAGING, ObjectStore, ObjectStoreError, parse_s3_url

MARKER = "mia-backup.json"
TARGET_FORMAT = 1
CHUNK = 4 << 20
_HEX = frozenset("0123456789abcdef")
GC_GRACE_S = 6 * 3600.0  # unreferenced blobs younger than this are kept on object storage (see ObjectTarget)
BACKUP_ID_RE = re.compile(r"\d{8}T\d{12}Z")  # UTC time to the microsecond: ids sort by time


class TargetError(RuntimeError):
    """The backup target cannot be used now (missing mount, damaged marker…); the message says what to do."""


class TargetEmpty(TargetError):
    """The target is usable but holds no backup yet."""


class TargetSetupError(ValueError):
    """The configured backup target is not a folder a backup can go to (a bad setting)."""


class TargetUnreachable(OSError, TargetError):
    """The object store behind a target failed (server down, request refused): an I/O error, as a disk's is."""


def check_sha(sha: str) -> str:
    if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= _HEX:
        raise TargetError(f"{sha!r} is not a sha256 (64 lowercase hex digits); the backup manifest is damaged")
    return sha


def _drop_cache(fd: int) -> None:
    """Ask the kernel to forget the file's cached pages, so the next read comes from the disk."""
    with contextlib.suppress(AttributeError, OSError):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def copy_hashing(src: BinaryIO, dst: BinaryIO | None) -> tuple[str, int]:
    """Read ``src`` to its end in big chunks (writing them to ``dst`` unless None); (sha256, bytes)."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    n = 0
    while k := src.readinto(buf):
        h.update(view[:k])
        if dst is not None:
            dst.write(view[:k])
        n += k
    return h.hexdigest(), n


def hash_stream(src: BinaryIO) -> tuple[str, int]:
    return copy_hashing(src, None)


def check_marker(location: str, data: bytes, kind: str) -> None:
    """Raise TargetError unless ``data`` is a marker of the target format this mia reads."""
    try:
        info = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TargetError(f"backup target {location}: {MARKER} is damaged ({exc}); restore it or point "
                          f"backup.target at another {kind}") from None
    if not isinstance(info, dict) or info.get("format") != TARGET_FORMAT:
        raise TargetError(f"backup target {location}: {MARKER} has format {info!r}, this mia reads format "
                          f"{TARGET_FORMAT}")


class BackupTarget(Protocol):
    """What backup and restore need from a place that stores backups."""

    location: str

    def prepare(self, create: bool) -> None: ...
    def lock(self, exclusive: bool) -> contextlib.AbstractContextManager[None]: ...
    def has_blob(self, sha: str, size: int | None = None) -> bool: ...
    def put_stream(self, src: BinaryIO, expected: str | None = None) -> tuple[str, int, bool]: ...
    def open_blob(self, sha: str) -> BinaryIO: ...
    def verify_blob(self, sha: str) -> bool: ...
    def delete_blob(self, sha: str) -> None: ...
    def blob_shas(self) -> set[str]: ...
    def collectable_blobs(self, referenced: set[str]) -> set[str]: ...
    def put_manifest(self, kind: str, backup_id: str, data: bytes) -> None: ...
    def manifest_ids(self, kind: str) -> list[str]: ...
    def get_manifest(self, kind: str, backup_id: str) -> bytes: ...
    def delete_manifest(self, kind: str, backup_id: str) -> None: ...
    def sweep(self) -> int: ...


class LocalTarget:
    """A backup target in a folder (another disk, a mount, or ``<data root>/backups``)."""

    def __init__(self, root: Path, default: bool = False):
        self.root = Path(root).absolute()
        self.default = default  # the built-in <data root>/backups: created on first use
        self.location = str(self.root)

    # ------------------------------------------------------------------ setup and locking
    @property
    def blobs_dir(self) -> Path:
        return self.root / "blobs"

    @property
    def tmp_dir(self) -> Path:
        return self.blobs_dir / ".tmp"

    def blob_path(self, sha: str) -> Path:
        sha = check_sha(sha)
        return self.blobs_dir / sha[:2] / sha

    def manifest_path(self, kind: str, backup_id: str) -> Path:
        if kind not in BACKUP_KINDS:
            raise TargetError(f"unknown backup kind {kind!r}; kinds: {', '.join(BACKUP_KINDS)}")
        if not isinstance(backup_id, str) or not BACKUP_ID_RE.fullmatch(backup_id):
            raise TargetError(f"{backup_id!r} is not a backup id (like 20261201T130000123456Z)")
        return self.root / kind / f"{backup_id}.json"

    def prepare(self, create: bool) -> None:
        """Check the target (and, with ``create``, initialize an empty one). Raises TargetError /
        TargetSetupError. A configured target must exist already: a missing folder is usually a disk
        that is not mounted, and writing there would fill the system disk instead."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise TargetSetupError(f"backup target {root} is a file, not a folder; set backup.target "
                                   "(or MIA_BACKUP_TARGET) to a folder")
        if not root.is_dir():
            if self.default and not create:
                raise TargetEmpty(f"no backup yet in {root}; run `mia backup --full` first")
            if not (create and self.default):
                raise TargetError(f"backup target {root} does not exist: mount the backup disk (or create the "
                                  "folder), or set backup.target / MIA_BACKUP_TARGET to an existing folder")
            root.mkdir(parents=True, exist_ok=True)
        self._no_links()
        marker = root / MARKER
        if marker.is_file():
            try:
                check_marker(self.location, marker.read_bytes(), "folder")
            except OSError as exc:
                raise TargetError(f"backup target {root}: {MARKER} cannot be read ({exc}); restore it or point "
                                  "backup.target at another folder") from None
            return
        if self._lost_marker():
            # Every entry is a target's own and backups are there: only the marker was lost. The backups stay
            # reachable; a writer puts the marker back.
            if create:
                atomic_write_bytes(marker, json.dumps({"format": TARGET_FORMAT, "created_at": datetime.now(UTC)
                                                       .isoformat(timespec="seconds"), "recreated": True}).encode()
                                   + b"\n")
            return
        if not create:
            raise TargetEmpty(f"backup target {root} holds no backup yet (no {MARKER}); run `mia backup --full` "
                              "first")
        if any(p.name not in BACKUP_KINDS for p in root.iterdir()):
            raise TargetSetupError(f"backup target {root} is not empty and is not a mia backup target; point "
                                   "backup.target (or MIA_BACKUP_TARGET) at an empty folder or an existing target")
        for d in (self.tmp_dir, *(root / k for k in BACKUP_KINDS)):
            d.mkdir(parents=True, exist_ok=True)
        (root / ".lock").touch()
        created = datetime.now(UTC).isoformat(timespec="seconds")
        atomic_write_bytes(marker, json.dumps({"format": TARGET_FORMAT, "created_at": created}).encode() + b"\n")

    def _lost_marker(self) -> bool:
        """A target whose marker file was deleted: only its own entries, and at least one backup manifest."""
        own = {*BACKUP_KINDS, "blobs", ".lock"}
        entries = list(self.root.iterdir())
        return (bool(entries) and all(p.name in own for p in entries)
                and any(self.manifest_ids(kind) for kind in BACKUP_KINDS))

    def _no_links(self) -> None:
        """Nothing under the target is followed through a symbolic link: a linked ``blobs/``, shard folder,
        ``hourly/`` … would make rotation delete, or backups write, outside the target."""
        shards = [d for d in self.blobs_dir.iterdir()] if self.blobs_dir.is_dir() and not self.blobs_dir.is_symlink() \
            else []
        for path in (self.root / MARKER, self.root / ".lock", self.blobs_dir, self.tmp_dir,
                     *(self.root / k for k in BACKUP_KINDS), *shards):
            if path.is_symlink():
                raise TargetSetupError(f"backup target {self.root}: {path.relative_to(self.root)} is a symbolic link "
                                       f"(to {os.readlink(path)}); a backup target holds only its own files, nothing "
                                       "is followed through a link: replace it with a real folder or file")

    @contextlib.contextmanager
    def lock(self, exclusive: bool) -> Iterator[None]:
        """Backups lock exclusively (rotation deletes blobs); restores share. A read-only target with no
        lock file is read without one (nothing can delete from it)."""
        path = self.root / ".lock"
        try:
            fd = os.open(path, (os.O_RDWR | os.O_CREAT) if exclusive else os.O_RDONLY, 0o644)
        except OSError:
            if exclusive:
                raise
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ blobs
    def has_blob(self, sha: str, size: int | None = None) -> bool:
        try:
            st = self.blob_path(sha).stat()
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def put_stream(self, src: BinaryIO, expected: str | None = None) -> tuple[str, int, bool]:
        """Store what ``src`` holds; (sha256, size, stored). Nothing is stored when the content does not
        hash to ``expected`` (damaged source) or is stored already. A new blob is written to a temp file,
        fsynced and renamed: a crash leaves a temp file (swept later), never a partial blob."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = temp_path_for(self.tmp_dir / "blob")
        try:
            with open(tmp, "xb") as out:
                sha, size = copy_hashing(src, out)
                if (expected is not None and sha != expected) or self.has_blob(sha, size):
                    tmp.unlink()
                    return sha, size, False
                out.flush()
                os.fsync(out.fileno())
                _drop_cache(out.fileno())  # the verification re-read must come from the disk
            final = self.blob_path(sha)
            final.parent.mkdir(exist_ok=True)
            if final.parent.is_symlink():
                raise TargetSetupError(f"backup target {self.root}: {final.parent.relative_to(self.root)} is a symbolic "
                                       "link; nothing is written through a link")
            os.replace(tmp, final)
            fsync_dir(final.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return sha, size, True

    def open_blob(self, sha: str) -> BinaryIO:
        return open(self.blob_path(sha), "rb")

    def verify_blob(self, sha: str) -> bool:
        """Re-read the blob (from the disk, not the page cache where possible) and check its sha256."""
        try:
            with self.open_blob(sha) as fh:
                _drop_cache(fh.fileno())
                return hash_stream(fh)[0] == sha
        except FileNotFoundError:
            return False

    def delete_blob(self, sha: str) -> None:
        path = self.blob_path(sha)
        if path.parent.is_symlink():  # never delete through a link (a file outside the target)
            raise TargetSetupError(f"backup target {self.root}: {path.parent.relative_to(self.root)} is a symbolic "
                                   "link; nothing is deleted through a link")
        path.unlink(missing_ok=True)

    def collectable_blobs(self, referenced: set[str]) -> set[str]:
        """Blobs no manifest names (the exclusive lock keeps every other backup of this target out)."""
        return self.blob_shas() - referenced

    def blob_shas(self) -> set[str]:
        if not self.blobs_dir.is_dir():
            return set()
        return {p.name for d in self.blobs_dir.iterdir() if len(d.name) == 2 and d.is_dir() and not d.is_symlink()
                for p in d.iterdir() if len(p.name) == 64}

    # ------------------------------------------------------------------ manifests
    def put_manifest(self, kind: str, backup_id: str, data: bytes) -> None:
        path = self.manifest_path(kind, backup_id)
        if path.parent.is_symlink():
            raise TargetSetupError(f"backup target {self.root}: {kind}/ is a symbolic link; nothing is written "
                                   "through a link")
        atomic_write_bytes(path, data)

    def manifest_ids(self, kind: str) -> list[str]:
        folder = self.root / kind
        if kind not in BACKUP_KINDS or not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.json") if BACKUP_ID_RE.fullmatch(p.stem))

    def get_manifest(self, kind: str, backup_id: str) -> bytes:
        return self.manifest_path(kind, backup_id).read_bytes()

    def delete_manifest(self, kind: str, backup_id: str) -> None:
        path = self.manifest_path(kind, backup_id)
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)

    def sweep(self) -> int:
        """Remove temp files of interrupted writes (blobs and manifests). Call with the exclusive lock."""
        n = 0
        for folder in (self.tmp_dir, *(self.root / k for k in BACKUP_KINDS)):
            if folder.is_dir():
                for p in folder.glob(".*.tmp"):
                    p.unlink(missing_ok=True)
                    n += 1
        return n


class ObjectTarget:
    """A backup target on object storage (``s3://bucket/prefix``), laid out as :class:`LocalTarget` is::

        <prefix>/mia-backup.json   blobs/ab/ab12…ef   hourly|daily|weekly/<id>.json   .staging/

    Every object is published whole (see :mod:`mia_pipeline.storage.objects`: staging key, size check,
    server-side copy): a blob appears under its sha256 only with that content's bytes, a manifest only
    complete. The manifest is still written last: a backup killed part way left blobs no manifest names,
    which a later rotation deletes once they are older than :data:`GC_GRACE_S`. S3 has no lock: the backup
    lock is a file of the data root (``lock_dir``) and serializes only that root's backups; the grace
    period keeps the blobs of a backup in flight from another root or host from being collected."""

    def __init__(self, url: str, lock_dir: Path, store=None):
        self.store = store or ObjectStore(parse_s3_url(url))
        self.location = self.store.url
        self.lock_file = Path(lock_dir) / f".backup-target-{hashlib.sha256(self.location.encode()).hexdigest()[:16]}.lock"

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except ObjectStoreError as exc:
            raise TargetUnreachable(f"backup target {exc}") from None
        except ValueError as exc:  # the S3 client's own settings (AWS_ENDPOINT_URL) are malformed
            if isinstance(exc, TargetSetupError):
                raise
            raise TargetSetupError(f"backup target {self.location}: {exc}") from None

    @staticmethod
    def _blob_key(sha: str) -> str:
        sha = check_sha(sha)
        return f"blobs/{sha[:2]}/{sha}"

    @staticmethod
    def _manifest_key(kind: str, backup_id: str) -> str:
        if kind not in BACKUP_KINDS:
            raise TargetError(f"unknown backup kind {kind!r}; kinds: {', '.join(BACKUP_KINDS)}")
        if not isinstance(backup_id, str) or not BACKUP_ID_RE.fullmatch(backup_id):
            raise TargetError(f"{backup_id!r} is not a backup id (like 20261201T130000123456Z)")
        return f"{kind}/{backup_id}.json"

    def prepare(self, create: bool) -> None:
        """Check the bucket and the marker (and, with ``create``, start an empty target: the prefix must
        hold nothing else). The bucket itself must exist: creating buckets is the operator's job."""
        with self._errors():
            self.store.check_bucket()
            if self.store.exists(MARKER):
                check_marker(self.location, self.store.get_bytes(MARKER), "prefix")
                return
            if not create:
                raise TargetEmpty(f"backup target {self.location} holds no backup yet (no {MARKER}); run "
                                  "`mia backup --full` first")
            others = [k for k in self.store.list() if not k.startswith(STAGING + "/")]
            if MARKER in others:  # a concurrent first backup made it a target meanwhile
                return self.prepare(create=False)
            if others:
                raise TargetSetupError(f"backup target {self.location} is not empty and is not a mia backup target "
                                       f"(it holds {others[0]}…); point backup.target (or MIA_BACKUP_TARGET) at an "
                                       "empty prefix or an existing target")
            created = datetime.now(UTC).isoformat(timespec="seconds")
            self.store.put_bytes(MARKER, json.dumps({"format": TARGET_FORMAT, "created_at": created}).encode() + b"\n")

    @contextlib.contextmanager
    def lock(self, exclusive: bool) -> Iterator[None]:
        """Held on this host only (S3 has no lock): backups exclusively, restores shared."""
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield

    # ------------------------------------------------------------------ blobs
    def has_blob(self, sha: str, size: int | None = None) -> bool:
        with self._errors():
            got = self.store.size(self._blob_key(sha))
        return got is not None and (size is None or got == size)

    def put_stream(self, src: BinaryIO, expected: str | None = None) -> tuple[str, int, bool]:
        """Store what ``src`` holds; (sha256, size, stored). Uploaded to a staging key while hashed, then
        published under its sha256 unless it does not hash to ``expected`` or is stored already."""
        h = hashlib.sha256()
        with self._errors(), self.store.staged(src, on_chunk=h.update) as (staging, size):
            sha = h.hexdigest()
            if (expected is not None and sha != expected) or self.has_blob(sha, size):
                return sha, size, False
            self.store.publish(staging, self._blob_key(sha))
        return sha, size, True

    def open_blob(self, sha: str) -> BinaryIO:
        with self._errors():
            return self.store.open_input(self._blob_key(sha))

    def verify_blob(self, sha: str) -> bool:
        """Read the blob back from the server and check its sha256."""
        try:
            with self.open_blob(sha) as fh, self._errors():
                return hash_stream(fh)[0] == sha
        except FileNotFoundError:
            return False

    def delete_blob(self, sha: str) -> None:
        with self._errors():
            self.store.delete(self._blob_key(sha))

    def blob_shas(self) -> set[str]:
        return set(self._blobs())

    def _blobs(self) -> dict[str, float]:
        """{sha256: upload time (epoch s)} of the objects ``blobs/ab/ab12…``; other keys are not blobs."""
        with self._errors():
            infos = self.store.list("blobs")
        out = {}
        for key, info in infos.items():
            p = key.split("/")
            if len(p) == 3 and len(p[2]) == 64 and set(p[2]) <= _HEX and p[1] == p[2][:2]:
                out[p[2]] = info.mtime.timestamp() if info.mtime else 0.0
        return out

    def collectable_blobs(self, referenced: set[str]) -> set[str]:
        """Blobs no manifest names that are older than :data:`GC_GRACE_S`. S3 has no lock: a backup from
        another data root or host may be uploading the younger ones, its manifest not written yet."""
        cutoff = time.time() - GC_GRACE_S
        return {sha for sha, at in self._blobs().items() if at < cutoff} - referenced

    # ------------------------------------------------------------------ manifests
    def put_manifest(self, kind: str, backup_id: str, data: bytes) -> None:
        with self._errors():
            self.store.put_bytes(self._manifest_key(kind, backup_id), data)

    def manifest_ids(self, kind: str) -> list[str]:
        if kind not in BACKUP_KINDS:
            return []
        with self._errors():
            keys = self.store.list(kind)
        ids = (k[len(kind) + 1:-len(".json")] for k in keys if k.endswith(".json") and k.count("/") == 1)
        return sorted(i for i in ids if BACKUP_ID_RE.fullmatch(i))

    def get_manifest(self, kind: str, backup_id: str) -> bytes:
        with self._errors():
            return self.store.get_bytes(self._manifest_key(kind, backup_id))

    def delete_manifest(self, kind: str, backup_id: str) -> None:
        with self._errors():
            self.store.delete(self._manifest_key(kind, backup_id))

    def sweep(self) -> int:
        """Delete staging objects of dead writers (older than an hour: a writer on another host may be
        uploading the younger ones). Call with the exclusive lock."""
        with self._errors():
            return self.store.sweep_staging()
