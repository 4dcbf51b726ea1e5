"""Backup manifests: what one backup holds, how it is written and read back, which backups are good.

A manifest (``<target>/<kind>/<id>.json``) lists every file of the backup by its path relative to the
data root, with the sha256 of its content (the blob's name) and the size and stat it had::

    {"format": 1, "id": "20261201T020000123456Z", "kind": "daily", "mode": "full",
     "created_at": "...", "finished_at": "...", "data_root": "/srv/mia/data", "config_file": "/srv/mia.yaml",
     "files": {"snapshots/daily/2025-06-23/trades.parquet":
                   {"sha256": "ab12…", "size": 18231, "mtime_ns": 1750…, "ino": 4123}, ...},
     "damaged": {"snapshots/daily/2025-06-24/signals.parquet": "sha256 … does not match its manifest"},
     "checksum": "<sha256 of this JSON without the checksum key>"}

The manifest is written only after every blob it names was written and re-read (verified); a manifest
whose checksum does not match (a flipped byte) is never used. The settings file is stored under
``config/<its name>``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from mia_pipeline.layout import BACKUP_KINDS, Layout, LayoutError, is_object_url, parse_day
from mia_pipeline.lifecycle.blobstore import (
    BackupTarget,
    LocalTarget,
    ObjectTarget,
    TargetError,
    TargetSetupError,
    check_sha,
)
from mia_pipeline.settings import Settings

MANIFEST_FORMAT = 1
DAILY_PREFIX = "snapshots/daily/"
DAY_MANIFEST = "_manifest.json"
# backup mode -> the kind it is filed and rotated under
MODES = {"incremental": "hourly", "full": "daily", "archive": "weekly"}


class DamagedManifest(ValueError):
    """A backup manifest that cannot be trusted (not JSON, wrong shape, checksum mismatch)."""


@dataclass(frozen=True)
class FileRef:
    sha256: str
    size: int
    mtime_ns: int = 0
    ino: int = 0


@dataclass
class Backup:
    id: str
    kind: str
    mode: str
    created_at: str
    finished_at: str
    data_root: str
    files: dict[str, FileRef] = field(default_factory=dict)
    damaged: dict[str, str] = field(default_factory=dict)
    config_file: str | None = None

    def day_files(self, day: str) -> dict[str, FileRef]:
        """{file name: ref} of one day folder (``trades.parquet``, ``_manifest.json``, …)."""
        prefix = f"{DAILY_PREFIX}{day}/"
        return {rel[len(prefix):]: ref for rel, ref in self.files.items() if rel.startswith(prefix)}

    def days(self) -> list[str]:
        return sorted({rel.split("/")[2] for rel in self.files if rel.startswith(DAILY_PREFIX)
                       and rel.endswith("/" + DAY_MANIFEST)})

    @property
    def bytes(self) -> int:
        return sum(r.size for r in self.files.values())


def _checksum(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def encode_manifest(b: Backup) -> bytes:
    body = {
        "format": MANIFEST_FORMAT, "id": b.id, "kind": b.kind, "mode": b.mode, "created_at": b.created_at,
        "finished_at": b.finished_at, "data_root": b.data_root, "config_file": b.config_file,
        "damaged": dict(sorted(b.damaged.items())),
        "files": {rel: {"sha256": r.sha256, "size": r.size, "mtime_ns": r.mtime_ns, "ino": r.ino}
                  for rel, r in sorted(b.files.items())},
    }
    body["checksum"] = _checksum(body)
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def decode_manifest(data: bytes, kind: str, backup_id: str) -> Backup:
    """The backup a manifest describes; :class:`DamagedManifest` when it cannot be trusted."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedManifest(f"not valid JSON ({exc})") from None
    if not isinstance(body, dict) or not isinstance(body.get("files"), dict):
        raise DamagedManifest("not a backup manifest (no `files` object)")
    checksum = body.pop("checksum", None)
    if checksum != _checksum(body):
        raise DamagedManifest("checksum mismatch: the manifest was changed after it was written")
    if body.get("format") != MANIFEST_FORMAT or body.get("id") != backup_id or body.get("kind") != kind:
        raise DamagedManifest(f"format/id/kind {body.get('format')}/{body.get('id')}/{body.get('kind')} do not "
                              f"match {MANIFEST_FORMAT}/{backup_id}/{kind}")
    try:
        files = {str(rel): FileRef(check_sha(r["sha256"]), int(r["size"]), int(r.get("mtime_ns", 0)),
                                   int(r.get("ino", 0))) for rel, r in body["files"].items()}
    except (TypeError, KeyError, ValueError, TargetError) as exc:
        raise DamagedManifest(f"malformed file entry ({exc})") from None
    if bad := next((rel for rel in files if _unsafe_path(rel)), None):
        raise DamagedManifest(f"it names {bad!r}, not a path of a data root (an absolute path, '..', or a day "
                              "folder that is no date): the manifest was tampered with or damaged")
    return Backup(id=backup_id, kind=kind, mode=str(body.get("mode")), created_at=str(body.get("created_at")),
                  finished_at=str(body.get("finished_at")), data_root=str(body.get("data_root")), files=files,
                  damaged=dict(body.get("damaged") or {}), config_file=body.get("config_file"))


def _unsafe_path(rel: str) -> bool:
    """Whether a manifest's file path could reach outside the data root or name a day that is no date."""
    parts = rel.split("/")
    if rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in parts):
        return True
    if rel.startswith(DAILY_PREFIX):
        try:
            parse_day(parts[2])
        except (LayoutError, IndexError):
            return True
    return False


def target_for(layout: Layout, settings: Settings) -> BackupTarget:
    """The configured backup target (``backup.target``, default ``<data root>/backups``; an
    ``s3://bucket/prefix`` target is on object storage, its lock on this host under ``live/``)."""
    configured = settings.backup.target
    if configured is None:
        return LocalTarget(layout.root / "backups", default=True)
    if is_object_url(configured):
        return ObjectTarget(str(configured), layout.root / "live")
    path, root = Path(configured).absolute().resolve(), layout.root.resolve()
    own = (root / "backups").resolve()
    if (path == root or root in path.parents) and not (path == own or own in path.parents):
        raise TargetSetupError(f"backup target {configured} is inside the data root {layout.root}: a backup must not "
                               "live among the data it protects (its files would be backed up and locked twice); "
                               f"use {layout.root / 'backups'} (the default) or a folder on another disk")
    if path in root.parents:
        raise TargetSetupError(f"backup target {configured} holds the data root {layout.root}; point backup.target "
                               "(or MIA_BACKUP_TARGET) at an empty folder outside it")
    return LocalTarget(Path(configured))


def list_backups(target: BackupTarget) -> tuple[list[Backup], dict[str, str]]:
    """(good backups newest first, {"<kind>/<id>": why it is not used}) — manifests only, no blob read."""
    good, damaged = [], {}
    for kind in BACKUP_KINDS:
        for backup_id in target.manifest_ids(kind):
            try:
                good.append(decode_manifest(target.get_manifest(kind, backup_id), kind, backup_id))
            except (DamagedManifest, OSError) as exc:
                damaged[f"{kind}/{backup_id}"] = str(exc)
    good.sort(key=lambda b: b.id, reverse=True)
    return good, damaged


class BlobChecker:
    """Re-hashes blobs once per instance: several backups share most blobs."""

    def __init__(self, target: BackupTarget, deep: bool = True):
        self.target, self.deep = target, deep
        self._seen: dict[str, bool] = {}

    def ok(self, ref: FileRef) -> bool:
        if ref.sha256 not in self._seen:
            present = self.target.has_blob(ref.sha256, ref.size)
            self._seen[ref.sha256] = present and (not self.deep or self.target.verify_blob(ref.sha256))
        return self._seen[ref.sha256]

    def bad(self, refs) -> list[str]:
        return [rel for rel, ref in refs.items() if not self.ok(ref)]


def verified_backups(layout: Layout, settings: Settings, deep: bool = False) -> list[Backup]:
    """Backups (newest first) whose manifest is intact and whose every blob is present with its size;
    ``deep=True`` also re-hashes every blob. A target that does not exist or holds no backup: ``[]``."""
    target = target_for(layout, settings)
    try:
        target.prepare(create=False)
    except (TargetError, ValueError):
        return []
    try:
        with target.lock(exclusive=False):
            good, _ = list_backups(target)
            checker = BlobChecker(target, deep)
            return [b for b in good if not checker.bad(b.files)]
    except (TargetError, OSError):  # the target failed part way: nothing counts as verified
        return []


class ProvenBlobs:
    """The contents deletion may rely on: held by a verified backup AND re-hashed now (``sha in proven``).
    Presence and size are not enough: a bit-rotted blob restores nothing. Each blob is re-read once."""

    def __init__(self, target: BackupTarget | None, held: set[str]):
        self.target, self.held = target, held
        self._verdicts: dict[str, bool] = {}

    def __contains__(self, sha: object) -> bool:
        if not isinstance(sha, str) or sha not in self.held or self.target is None:
            return False
        if sha not in self._verdicts:
            try:
                self._verdicts[sha] = self.target.verify_blob(sha)
            except (TargetError, OSError, ValueError):  # unreadable now: nothing proven
                self._verdicts[sha] = False
        return self._verdicts[sha]

    @property
    def rotten(self) -> list[str]:
        """Blobs held by a backup that did not re-hash to their name."""
        return sorted(sha for sha, ok in self._verdicts.items() if not ok)


def proven_blobs(layout: Layout, settings: Settings) -> ProvenBlobs:
    """What a verified backup holds, each blob re-hashed when it is asked about (see :class:`ProvenBlobs`)."""
    held = backed_up_files(layout, settings)
    return ProvenBlobs(target_for(layout, settings) if held else None, held)


def backed_up_files(layout: Layout, settings: Settings, deep: bool = False) -> set[str]:
    """sha256 of every file held by at least one verified backup: data whose sha256 is not in this set
    has no verified backup (retention must not delete it)."""
    return {ref.sha256 for b in verified_backups(layout, settings, deep) for ref in b.files.values()}
