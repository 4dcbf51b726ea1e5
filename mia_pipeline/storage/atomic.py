"""Atomic file writes: temp file in the same folder, fsync, rename, fsync the folder.

A reader (or a process restarted after SIGKILL) sees either the previous file or the new one,
never a partial file. Temp files are named ``.<name>.<token>.tmp`` so they are easy to sweep.

``mode`` (e.g. ``0o600`` for quarantine and raw lines, which hold other people's bytes verbatim)
creates the temp file with those permission bits before anything is written to it, so the data is
never readable by others, not even for a moment; the renamed file keeps them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}{TMP_SUFFIX}")


def write_temp(target: Path, writer: Callable[[Path], None], durable: bool = True, mode: int | None = None) -> Path:
    """Run ``writer(tmp)`` on a temp path beside ``target``, fsync it (if durable), return the temp path.

    ``mode``: permission bits of the file (e.g. ``0o600``), set when the temp file is created (empty,
    before ``writer`` truncates and fills it) and again after, whatever the umask; None: the umask's."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(target)
    try:
        if mode is not None:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode))
            os.chmod(tmp, mode)
        writer(tmp)
        if mode is not None:
            os.chmod(tmp, mode)  # in case the writer replaced the file instead of truncating it
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def commit_temp(tmp: Path, target: Path, durable: bool = True) -> None:
    os.replace(tmp, target)
    if durable:
        fsync_dir(target.parent)


def atomic_write(target: Path, writer: Callable[[Path], None], durable: bool = True, mode: int | None = None) -> None:
    """Write ``target`` atomically with ``writer(tmp_path)``.

    ``durable=False`` keeps the atomicity (old or new, never partial) but skips the fsyncs: for
    writes whose loss in a power cut is harmless (e.g. tidying a manifest that is already committed).
    ``mode``: permission bits of the new file (see :func:`write_temp`).
    """
    tmp = write_temp(target, writer, durable, mode)
    try:
        commit_temp(tmp, target, durable)
    except BaseException:
        tmp.unlink(missing_ok=True)  # the rename failed (target is a folder, ...): leave no temp file behind
        raise


def atomic_write_bytes(target: Path, data: bytes, durable: bool = True, mode: int | None = None) -> None:
    atomic_write(target, lambda p: p.write_bytes(data), durable, mode)


def atomic_write_json(target: Path, obj: Any, durable: bool = True, mode: int | None = None) -> None:
    atomic_write_bytes(target, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode(), durable,
                       mode)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


_HELD = threading.local()  # lock files this thread holds through `locked` (absolute path -> depth)


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Exclusive advisory lock (flock) held for the ``with`` block; released if the process dies.

    Re-entrant within a thread: a command that already holds ``lock_file`` (a restore inside a repair,
    both under the ingest lock) goes on instead of waiting for itself forever. Other threads and other
    processes wait as before."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(lock_file)
    held = _HELD.__dict__.setdefault("depth", {})
    if held.get(key):
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    for _ in range(1000):
        try:
            fh = open(lock_file, "a+")
        except FileNotFoundError:  # its folder was removed (cleanup, archive) between mkdir and open
            lock_file.parent.mkdir(parents=True, exist_ok=True)
            continue
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            same = os.stat(lock_file).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the folder was removed (and maybe made again) while we waited: that lock guards nothing
            fh.close()
            lock_file.parent.mkdir(parents=True, exist_ok=True)
            continue
        break
    else:
        raise OSError(f"{lock_file} keeps being removed while it is locked; is a cleanup looping?")
    with fh:
        held[key] = 1
        try:
            yield
        finally:
            held.pop(key, None)
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def sweep_temp_files(folder: Path, keep: set[str] = frozenset()) -> list[Path]:
    """Delete leftover temp files of crashed writers in ``folder`` (except names in ``keep``)."""
    removed = []
    if folder.is_dir():
        for p in folder.glob(f".*{TMP_SUFFIX}"):
            if p.name not in keep:
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed
