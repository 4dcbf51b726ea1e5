"""Atomic folder publish: fill a temp folder beside the target, fsync it, swap it in.

    with publish_folder(layout.ml_ready_dir / "2025-06-22_2025-06-28") as tmp:
        write_parquet(features, tmp / "features_dataset.parquet")   # ... every file of the set
    # here the folder holds the new set; on an exception inside the block it still holds the old one

The temp folder is ``.<name>.<token>.tmp`` in the target's parent (same file system, so the swap is a
rename). On leaving the block every file is fsynced, then the folder; the target is renamed aside to
``.<name>.<token>.old``, the temp folder renamed into its place, and the parent fsynced. A crash between
the two renames leaves no target but the ``.old`` folder, which the next publish (or :func:`recover`)
renames back: a reader, or a process restarted after SIGKILL, finds the previous complete folder or the
new complete one, never a mix. (Python has no atomic folder exchange — ``renameat2(RENAME_EXCHANGE)``
would need ctypes, and the project ships no native code of its own.)

``durable=False`` keeps that atomicity but skips the fsyncs: for folders whose loss in a power cut is
harmless (a scratch build that is rebuilt anyway). Published datasets and sessions are durable.

:func:`publish_files` is the same commit for a *set of files* inside a shared folder (an export of one
tag among others): the files are renamed in one by one, the last one named last (a manifest); any
failure restores every previous file and removes the new ones. A SIGKILL in the middle of those renames
can leave a mix, which the last file (written last, naming every file with its sha256) lets a reader detect.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from mia_pipeline.storage.atomic import TMP_SUFFIX, fsync_dir

OLD_SUFFIX = ".old"
STALE_AFTER_S = 3600.0          # a temp folder this old belongs to a crashed run, not a concurrent one


def sync_tree(folder: Path) -> None:
    """fsync every file under ``folder``, then each folder (deepest first)."""
    dirs = []
    for root, _, files in os.walk(folder):
        dirs.append(Path(root))
        for name in files:
            fd = os.open(Path(root) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for d in reversed(dirs):
        fsync_dir(d)


def recover(target: Path, stale_after_s: float = STALE_AFTER_S) -> None:
    """Undo what a crashed publish of ``target`` left: put a renamed-aside ``.old`` folder back when the
    target is missing, delete other ``.old`` folders, and temp folders older than ``stale_after_s``."""
    target = Path(target)
    olds = sorted(_leftovers(target, OLD_SUFFIX), key=lambda p: p.stat().st_mtime)
    if olds and not target.exists():
        os.replace(olds.pop(), target)
    for p in olds:
        shutil.rmtree(p, ignore_errors=True)
    now = time.time()
    for p in _leftovers(target, TMP_SUFFIX):
        if now - p.stat().st_mtime > stale_after_s:
            shutil.rmtree(p, ignore_errors=True)


def _leftovers(target: Path, suffix: str) -> list[Path]:
    """``.<name>.<token><suffix>`` folders of ``target`` (not those of a sibling named ``<name>.x``)."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{12}}{re.escape(suffix)}")
    return [p for p in target.parent.glob(f".{target.name}.*{suffix}") if pattern.fullmatch(p.name) and p.is_dir()]


@contextlib.contextmanager
def staging(parent: Path, name: str) -> Iterator[Path]:
    """A new empty temp folder ``.<name>.<token>.tmp`` in ``parent``, removed when the block ends."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{name}.{secrets.token_hex(6)}{TMP_SUFFIX}"
    tmp.mkdir()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def swap_in(tmp: Path, target: Path, durable: bool = True) -> None:
    """Make the complete folder ``tmp`` the ``target`` folder (the previous one ends up in ``tmp``)."""
    if durable:
        sync_tree(tmp)
    if target.exists():
        old = target.with_name(f".{target.name}.{secrets.token_hex(6)}{OLD_SUFFIX}")
        os.replace(target, old)
        os.replace(tmp, target)
        os.replace(old, tmp)           # so that leaving staging() deletes it
    else:
        os.replace(tmp, target)
    if durable:
        fsync_dir(target.parent)


@contextlib.contextmanager
def publish_folder(target: Path, durable: bool = True) -> Iterator[Path]:
    """Fill the yielded temp folder; when the block ends without an exception it replaces ``target``
    as a whole. On an exception ``target`` is left as it was and the temp folder is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    with staging(target.parent, target.name) as tmp:
        yield tmp
        swap_in(tmp, target, durable)


def _move(src: Path, dst: Path) -> None:
    os.replace(src, dst)


def publish_files(tmp: Path, folder: Path, names: list[str], retire: Iterable[str] = (),
                  durable: bool = True) -> None:
    """Rename ``names`` from ``tmp`` into ``folder`` in that order (the last one last) and delete the
    other ``retire`` files (an earlier set's); on any failure put every previous file back and remove
    the new ones. ``tmp`` is a :func:`staging` folder in ``folder``."""
    if durable:
        sync_tree(tmp)
    old = tmp / f".previous{TMP_SUFFIX}"
    old.mkdir()
    kept, placed = [], []
    try:
        for name in retire:
            if (folder / name).is_file():
                try:
                    os.link(folder / name, old / name)  # keep the previous version to restore
                except OSError:
                    shutil.copy2(folder / name, old / name)
                kept.append(name)
        for name in names:
            _move(tmp / name, folder / name)
            placed.append(name)
        for name in set(kept) - set(names):
            (folder / name).unlink()
        if durable:
            fsync_dir(folder)
    except BaseException:
        for name in placed:
            (folder / name).unlink(missing_ok=True)
        for name in kept:
            os.replace(old / name, folder / name)
        raise


REMOVING = ".removing-"


def remove_tree(path: Path) -> None:
    """Delete a folder so that no reader ever sees it half-deleted: renamed out of sight (a dot name
    no reader lists) first, then removed; :func:`sweep_removed` finishes one a crash interrupted."""
    if not path.exists():
        return
    hidden = path.with_name(f".{path.name}{REMOVING}{secrets.token_hex(4)}")
    path.rename(hidden)
    shutil.rmtree(hidden)


def sweep_removed(parent: Path) -> None:
    if parent.is_dir():
        for p in parent.glob(f".*{REMOVING}*"):
            shutil.rmtree(p, ignore_errors=True)
