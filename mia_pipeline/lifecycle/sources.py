"""What a backup covers, as consistent snapshots: every file with its path relative to the data root.

- ``snapshots/daily/<day>/``: every dataset file (raw lines ``raw_events`` included) and the day's
  manifest. Each day is read under the day's lock (the one writers hold), and its files are opened
  before the lock is released: a writer renaming a new version in afterwards does not change what an
  open file reads, so the backup holds one committed version of the day, manifest and files together.
  The manifest is stored with ``staged`` cleared (a staged file is stored under its final name).
- ``snapshots/quarantine/``, ``snapshots/archive/``, ``processed/``: every regular file, except
  dot-files (locks, temp files of writes in progress) and symbolic links (never followed).
- the settings file, when one is used, as ``config/<its name>``.

The landing zone (``live/streaming``) is not covered: it is a queue, and the lines it delivered are
kept per day as ``raw_events``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mia_pipeline.layout import Layout, LayoutError
from mia_pipeline.storage import PartitionStore, StorageError, archive_index

CONFIG_PREFIX = "config/"


@dataclass
class Item:
    """One file to back up: its path in the backup, an open reader and what vouches for it."""

    rel: str
    fh: BinaryIO
    size: int
    mtime_ns: int = 0
    ino: int = 0
    expected: str | None = None  # the sha256 a day manifest vouches for

    @classmethod
    def of_file(cls, rel: str, fh: BinaryIO, expected: str | None = None) -> Item:
        st = os.fstat(fh.fileno())
        return cls(rel, fh, st.st_size, st.st_mtime_ns, st.st_ino, expected)

    @classmethod
    def of_bytes(cls, rel: str, data: bytes) -> Item:
        return cls(rel, io.BytesIO(data), len(data))

    def close(self) -> None:
        self.fh.close()


@dataclass
class DaySnapshot:
    day: str
    items: list[Item] = field(default_factory=list)
    problem: str | None = None  # the whole day cannot be read as committed (damaged/lost manifest)

    def close(self) -> None:
        for item in self.items:
            item.close()


class LazyObject:
    """A reader of an object on object storage, opened on the first read (a backup opens many at once and
    reads few: most are already in the target)."""

    def __init__(self, objects, rel: str):
        self.objects, self.rel, self._fh = objects, rel, None

    def _open(self):
        if self._fh is None:
            self._fh = self.objects.open_input(self.rel)
        return self._fh

    def read(self, n: int = -1) -> bytes:
        return self._open().read(n) if n is not None and n >= 0 else self._open().read()

    def readinto(self, buf) -> int:
        return self._open().readinto(buf)

    def seek(self, offset: int, whence: int = 0) -> int:
        """Back to the start (the only seek a backup makes: to read an object again)."""
        if (offset, whence) != (0, 0):
            raise io.UnsupportedOperation("an object stream is read from its start only")
        self.close()
        return 0

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _committed_item(store: PartitionStore, day: str, name: str, rel: str, entry) -> Item:
    """The committed file, opened now under the day's lock; on object storage, a lazy reader of the object on
    the server (never a local copy: the server's bytes are what is backed up). Objects are named by their
    content and outlive a rewrite by an hour, so no lock is needed to read one version."""
    if store.layout.store is None:
        return Item.of_file(rel, open(store.committed_file(day, name), "rb"), entry.sha256)  # noqa: SIM115
    if not store.objects.exists(store._rel(day, entry.file)):
        raise FileNotFoundError(entry.file)
    return Item(rel, LazyObject(store.objects, store._rel(day, entry.file)), entry.bytes, expected=entry.sha256)


def archive_object_items(layout: Layout) -> list[Item]:
    """Partitions on object storage: every object of the archive's months (``snapshots/archive/...`` in the
    backup, as a local archive is), each month file with the sha256 its month manifest vouches for."""
    if layout.store is None:
        return []
    store = archive_index.objects(layout)
    items = []
    for month, files in sorted(archive_index.month_objects(layout).items()):
        try:
            manifest = archive_index.read_month_manifest(layout, month)
            shas = {e["file"]: e["sha256"] for e in manifest["datasets"].values()}
        except archive_index.ArchiveDamaged:
            shas = {}
        for name, size in sorted(files.items()):
            rel = archive_index.month_rel(month, name)
            items.append(Item(f"snapshots/{rel}", LazyObject(store, rel), size, expected=shas.get(name)))
    return items


@contextlib.contextmanager
def _day_lock(store: PartitionStore, day: str) -> Iterator[None]:
    """The writers' lock of the day; on a read-only data folder, none (nobody can write there either)."""
    try:
        cm = store.day_lock(day)
        cm.__enter__()
    except OSError:
        yield
        return
    try:
        yield
    finally:
        cm.__exit__(None, None, None)


def snapshot_day(layout: Layout, store: PartitionStore, day: str) -> DaySnapshot:
    """Open one committed version of the day's files (see the module docstring). Files the manifest
    names that are missing are reported as a problem of the day (the caller decides)."""
    snap = DaySnapshot(day)
    prefix = f"snapshots/daily/{day}/"
    with _day_lock(store, day):
        try:
            if orphans := store.orphan_files(day):
                snap.problem = f"the day's manifest is lost ({', '.join(orphans)} are not vouched for)"
                return snap
            manifest = store.manifest(day)
            entries = {name: store.entry(day, name) for name in manifest["datasets"]}
        except (StorageError, LayoutError) as exc:
            snap.problem = str(exc)
            return snap
        clean = json.loads(json.dumps(manifest))
        for name, entry in entries.items():
            clean["datasets"][name]["staged"] = None
            try:
                snap.items.append(_committed_item(store, day, name, prefix + entry.file, entry))
            except FileNotFoundError:
                snap.problem = f"{entry.file} is missing (the manifest names it)"
                snap.close()
                snap.items = []
                return snap
    data = (json.dumps(clean, indent=2, sort_keys=True, default=str) + "\n").encode()
    snap.items.append(Item.of_bytes(prefix + "_manifest.json", data))
    return snap


def tree_files(layout: Layout) -> Iterator[tuple[str, Path]]:
    """(path in the backup, path now) of quarantine, archive and processed files."""
    for top in (layout.quarantine_dir, layout.archive_dir, layout.processed_dir):
        if not top.is_dir():
            continue
        for folder, dirs, files in os.walk(top, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = Path(folder) / name
                if name.startswith(".") or path.is_symlink() or not path.is_file():
                    continue
                yield path.relative_to(layout.root).as_posix(), path


def open_tree_item(rel: str, path: Path) -> Item | None:
    """An open item, or None when the file went away since it was listed (it is no longer data)."""
    try:
        return Item.of_file(rel, open(path, "rb"))  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        return None


def config_item(config_file: Path | None) -> Item | None:
    if config_file is None or not config_file.is_file():
        return None
    return Item.of_file(CONFIG_PREFIX + config_file.name, open(config_file, "rb"))  # noqa: SIM115


def settings_file(config: str | Path | None, env: dict | None = None) -> Path | None:
    """The settings file in use, found as :func:`mia_pipeline.settings.load_settings` finds it:
    ``config``, else ``$MIA_CONFIG``, else ``./mia.yaml`` when present."""
    env = os.environ if env is None else env
    if config:
        return Path(config).absolute()
    if env.get("MIA_CONFIG"):
        return Path(env["MIA_CONFIG"]).absolute()
    return Path("mia.yaml").absolute() if Path("mia.yaml").is_file() else None
