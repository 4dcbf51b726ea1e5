"""Writing events to the landing zone (``data/live/streaming/``) without ever exposing half a line.

- History: a whole day is written to a temp file beside the target, fsynced, then renamed over
  ``paper_trading_<YYYY-MM-DD>.jsonl`` (readers see the old file or the new one; the landing-zone
  reader notices the new inode and re-reads it, and its merges are idempotent).
- Realtime: each batch of complete lines goes out in one ``write`` on an ``O_APPEND`` descriptor,
  followed by ``fsync``. A reader can at worst see the batch's last line without its newline, which
  the landing-zone contract treats as a write in progress. If the file already ends in an
  unterminated line (a writer killed mid-write), a newline is written first so that the fragment
  becomes one bad line for quarantine instead of corrupting the next event.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

from mia_pipeline.layout import parse_day
from mia_pipeline.storage.atomic import atomic_write_bytes

FILE_PREFIX = "paper_trading_"


def day_file(out_dir: Path, day: date | str) -> Path:
    return Path(out_dir) / f"{FILE_PREFIX}{parse_day(day).isoformat()}.jsonl"


def encode(event: dict) -> bytes:
    """One compact JSON line (UTF-8, key order kept, newline-terminated). NaN is refused."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode() + b"\n"


def write_day(out_dir: Path, day: date, lines: list[bytes]) -> Path:
    """Replace the day's file atomically with ``lines``; returns its path."""
    target = day_file(out_dir, day)
    atomic_write_bytes(target, b"".join(lines))
    return target


class Appender:
    """Appends line batches to landing-zone files, one open descriptor per file."""

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}

    def append(self, path: Path, lines: list[bytes]) -> int:
        """Append complete lines as one write + fsync; returns the bytes written."""
        if not lines:
            return 0
        fd = self._fds.get(path)
        data = b"".join(lines)
        if fd is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._fds[path] = fd
            if _ends_unterminated(path):
                data = b"\n" + data
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
        return len(data)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _ends_unterminated(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"
