"""The landing zone: ``data/live/streaming/*.jsonl`` files and the committed offset of each.

Writers append one event per line. A last line without its newline is a write in progress: it is
not read until its newline arrives — or until the file has not changed for ``TAIL_SETTLE_SECONDS``
(5 min): then its writer is gone (crashed between the line and its newline, or writes CR-only line
endings) and the tail is read as the file's last line, landed if it is a valid event, quarantined with
the parser's reason otherwise. Nothing waits forever. Committed offsets live in ``data/live/ingest_state.json``::

    {"files": {"paper_trading_2025-06-23.jsonl": {"offset": 18231, "inode": 1234, "committed_at": "..."}}}

A file whose inode changed, that shrank below its offset, or whose first bytes changed (a fingerprint
of up to 1 KiB is kept) was replaced or truncated: it is read again from 0 (the idempotent merges
drop what was already ingested).

Only regular files named ``*.jsonl`` (UTF-8 names, not hidden) are landing files. Anything else
there — a symlink (never followed: its target may be any file on the machine), a FIFO or socket
(opening one would block), a directory, a name that is not valid UTF-8 — is skipped with a warning
(logged once per process and name, and listed by :func:`skipped_files` for ``mia collect status``).
Files are listed with ``lstat`` and opened with ``O_NOFOLLOW``; an open file whose inode is not the
listed one (replaced in between) is not read. A UTF-8 byte-order mark at offset 0 of a file is not
part of its first line (:func:`strip_bom`), as in ``mia import``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mia_pipeline.layout import Layout
from mia_pipeline.schemas.parser import OVERSIZE_PREFIX
from mia_pipeline.storage import atomic_write_json

LANDING_GLOB = "*.jsonl"
LANDING_SUFFIX = b".jsonl"
HEAD_BYTES = 1024
TAIL_SETTLE_SECONDS = 300.0  # an unterminated last line idle this long is read as the file's last line
BOM = b"\xef\xbb\xbf"

log = logging.getLogger(__name__)
_warned: set[tuple[str, str]] = set()


class StateFileError(ValueError):
    """A state file under ``data/live`` is not what this program writes (damaged from outside)."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(
            f"{path} is damaged ({problem}); move it aside and start clean with "
            "`mia collect start --reset-state` (re-ingesting is safe: merges are idempotent)")


@dataclass(frozen=True)
class Skipped:
    """An entry of the landing zone that is not read, and why."""

    name: str  # printable: a name that is not UTF-8 is shown with its bad bytes escaped
    reason: str


@dataclass(frozen=True)
class Pending:
    """Complete, not yet committed bytes of one landing-zone file: ``[start, end)``."""

    name: str
    path: Path
    start: int
    end: int
    inode: int
    oversize: bool = False  # one line longer than a whole batch: never read into memory, quarantined
    unterminated: bool = False  # a settled last line without its newline (read with one appended)

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def buffer_size(self) -> int:
        """Bytes this piece takes in a parse buffer (its newline added when it has none)."""
        return self.size + self.unterminated


def load_state(layout: Layout, strict: bool = False) -> dict:
    """The committed offsets. A damaged file (outside damage: it is written atomically) raises
    :class:`StateFileError` when ``strict``; otherwise it is read as empty, which is safe because every
    merge is idempotent (it costs a re-read, never a duplicate)."""
    path = layout.ingest_state_file
    try:
        state = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {"files": {}}
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        if strict:
            raise StateFileError(path, f"not JSON: {str(exc)[:120]}") from None
        return {"files": {}}
    if not _well_formed(state):
        if strict:
            raise StateFileError(path, 'expected {"files": {name: {"offset": N, "inode": N, "head": "..."}}}')
        return {"files": {}}
    state.setdefault("files", {})
    return state


def _well_formed(state) -> bool:
    if not isinstance(state, dict) or not isinstance(state.get("files", {}), dict):
        return False
    for rec in state.get("files", {}).values():
        if not isinstance(rec, dict):
            return False
        if not isinstance(rec.get("offset", 0), int) or rec.get("offset", 0) < 0:
            return False
        if not isinstance(rec.get("inode"), int | None) or not isinstance(rec.get("head"), str | None):
            return False
        if not isinstance(rec.get("lines", 0), int):
            return False
    return True


def save_state(layout: Layout, state: dict) -> None:
    atomic_write_json(layout.ingest_state_file, state)


def _warn_once(name: str, reason: str) -> None:
    if (name, reason) not in _warned:
        _warned.add((name, reason))
        log.warning("landing zone: skipping %s: %s", name, reason)


def _scan(layout: Layout) -> tuple[list[tuple[str, Path, os.stat_result]], list[Skipped]]:
    """(regular landing files as (name, path, lstat), skipped entries), sorted by name.

    Lists with ``scandir`` on bytes (a name that is not UTF-8 stays intact and is never decoded into a
    path) and ``lstat`` (a symlink is seen as a symlink, never followed)."""
    folder = layout.streaming_dir
    files, skipped = [], []
    try:
        entries = os.scandir(os.fsencode(folder))
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    with entries:
        for entry in entries:
            raw = entry.name
            if not raw.endswith(LANDING_SUFFIX):
                continue  # not a landing file (temp files of atomic writers end in .tmp)
            if raw.startswith(b"."):
                skipped.append(Skipped(raw.decode("utf-8", "backslashreplace"),
                                       "a hidden file (a name starting with '.' is never a landing file; rename it)"))
                continue
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                skipped.append(Skipped(raw.decode("utf-8", "backslashreplace"), "file name is not valid UTF-8"))
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed since it was listed
            if not stat.S_ISREG(st.st_mode):
                skipped.append(Skipped(name, _not_regular(st.st_mode)))
                continue
            files.append((name, folder / name, st))
    for s in skipped:
        _warn_once(s.name, s.reason)
    return sorted(files, key=lambda f: f[0]), sorted(skipped, key=lambda s: s.name)


def _not_regular(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link (never followed)"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe; never opened)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def landing_files(layout: Layout) -> list[Path]:
    """Regular ``*.jsonl`` files of the landing zone, sorted; other entries are skipped with a warning."""
    return [path for _, path, _ in _scan(layout)[0]]


def skipped_files(layout: Layout) -> list[Skipped]:
    """Entries of the landing zone that look like landing files but are not read (and why)."""
    return _scan(layout)[1]


def open_landing(path: Path, inode: int | None = None):
    """``path`` opened for binary reading without following a symlink (``O_NOFOLLOW``; ``O_NONBLOCK``
    so that a FIFO swapped in since the listing cannot block). Raises ``OSError`` when it is not a
    regular file, or not the file of inode ``inode`` (replaced since it was listed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is {_not_regular(st.st_mode)}, not a landing file")
        if inode and st.st_ino != inode:
            raise OSError(f"{path} was replaced since it was listed; run the ingestion again")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def strip_bom(data: bytes, start: int) -> int:
    """Offset of the first byte to read: past a UTF-8 BOM when ``data`` begins at offset 0 with one."""
    return start + len(BOM) if start == 0 and data[:len(BOM)] == BOM else start


_TAIL = 1 << 16
_SPLIT_READ = 8 << 20  # largest single ``readinto`` (bounds one system call, not the buffer)


def _after_last_newline(fh, lo_bound: int, hi: int) -> int | None:
    """Offset just past the last newline in ``[lo_bound, hi)`` of ``fh`` (read backwards in 64 KiB
    windows), or None when there is none."""
    while hi > lo_bound:
        lo = max(lo_bound, hi - _TAIL)
        fh.seek(lo)
        nl = fh.read(hi - lo).rfind(b"\n")
        if nl >= 0:
            return lo + nl + 1
        hi = lo
    return None


def complete_end(path: Path, start: int, size: int) -> int:
    """Offset just past the last newline in ``path[start:size]`` (== start if there is none)."""
    with open_landing(path) as fh:
        end = _after_last_newline(fh, start, size)
    return start if end is None else end


def _cut(fh, start: int, size: int, end: int) -> tuple[int, bool]:
    """(bytes from ``start`` up to the last newline before ``start + size``, False); a line longer than
    ``size`` is one piece on its own, up to its newline or ``end``: (its length, True)."""
    last = _after_last_newline(fh, start, start + size)
    if last is not None:
        return last - start, False
    return _line_end(fh, start + size, end) - start, True


def _line_end(fh, pos: int, end: int) -> int:
    """Offset just past the first newline at or after ``pos`` (``end`` when there is none)."""
    fh.seek(pos)
    while pos < end:
        block = fh.read(min(_TAIL, end - pos))
        if not block:
            break
        nl = block.find(b"\n")
        if nl >= 0:
            return pos + nl + 1
        pos += len(block)
    return end


def pieces(todo: list[Pending], batch_bytes: int):
    """Ranges of at most ~batch_bytes of each file's pending bytes, each cut after a newline."""
    for p in todo:
        if p.unterminated:  # one line, no newline inside: whole, or oversize
            yield p if p.size <= batch_bytes else Pending(p.name, p.path, p.start, p.end, p.inode, True, True)
            continue
        with open_landing(p.path, p.inode) as fh:
            pos = p.start
            while pos < p.end:
                size, oversize = (p.end - pos, False) if p.end - pos <= batch_bytes else _cut(fh, pos, batch_bytes,
                                                                                              p.end)
                yield Pending(p.name, p.path, pos, pos + size, p.inode, oversize)
                pos += size


def count_lines(p: Pending) -> int:
    """Lines in a pending piece, counted in 8 MiB reads (a large lag is never held in memory)."""
    n = int(p.unterminated)
    with open_landing(p.path, p.inode) as fh:
        fh.seek(p.start)
        left = p.size
        while left > 0:
            block = fh.read(min(_SPLIT_READ, left))
            if not block:
                break
            n += block.count(b"\n")
            left -= len(block)
    return n


def read_prefix(p: Pending, n: int = OVERSIZE_PREFIX) -> bytes:
    """The first ``n`` bytes of a piece (an oversize line is never read whole)."""
    with open_landing(p.path, p.inode) as fh:
        fh.seek(p.start)
        return fh.read(min(n, p.size))


def read_pieces(ranges: list[Pending]) -> bytearray | bytes:
    """The ranges' bytes back to back in one buffer (sequential ``readinto`` steps, no join copy); an
    unterminated piece is followed by the newline it lacks.

    A file cut short or replaced (other inode) since it was listed raises ``OSError``: nothing is
    committed and the next ingestion reads it again."""
    total = sum(p.buffer_size for p in ranges)
    if not total:
        return b""
    buf = bytearray(total)
    at = 0
    with memoryview(buf) as view:
        for p in ranges:
            with open_landing(p.path, p.inode) as fh:
                fh.seek(p.start)
                got = 0
                while got < p.size:
                    n = fh.readinto(view[at + got: at + min(p.size, got + _SPLIT_READ)])
                    if not n:
                        raise OSError(f"{p.path} shrank while being read (expected {p.size} bytes from offset "
                                      f"{p.start}); nothing was committed, run the ingestion again")
                    got += n
            if p.unterminated:
                buf[at + p.size] = 0x0A
            at += p.buffer_size
    return buf


def head_fingerprint(path: Path, offset: int) -> str:
    with open_landing(path) as fh:
        return hashlib.sha256(fh.read(min(offset, HEAD_BYTES))).hexdigest()[:16]


def committed_offset(state: dict, name: str, inode: int, size: int, path: Path | None = None) -> int:
    rec = state["files"].get(name)
    if not rec:
        return 0
    offset = int(rec.get("offset", 0))
    if rec.get("inode") not in (None, inode) or offset > size:
        return 0  # replaced or truncated: read again; merges are idempotent
    if path is not None and rec.get("head") and head_fingerprint(path, offset) != rec["head"]:
        return 0  # same name and inode, other content: replaced in place
    return offset


def pending(layout: Layout, state: dict | None = None, until: dict[str, int] | None = None,
            now: float | None = None) -> list[Pending]:
    """Uncommitted complete byte ranges of every landing file (optionally capped by ``until``), each
    followed by its settled unterminated last line, if any (see ``TAIL_SETTLE_SECONDS``).

    A range that starts at offset 0 starts after a UTF-8 BOM, if the file has one."""
    state = load_state(layout) if state is None else state
    now = time.time() if now is None else now
    out = []
    for name, path, st in _scan(layout)[0]:
        try:
            start = committed_offset(state, name, st.st_ino, st.st_size, path)
            size = st.st_size if until is None else min(st.st_size, until.get(name, 0))
            if size <= start:
                continue
            if start == 0:
                with open_landing(path, st.st_ino) as fh:
                    start = strip_bom(fh.read(len(BOM)), 0)
            end = complete_end(path, start, size)
        except OSError as exc:  # removed, or replaced by something else, since it was listed
            _warn_once(name, f"cannot be read now ({exc})")
            continue
        if end > start:
            out.append(Pending(name, path, start, end, st.st_ino))
        if end < size == st.st_size and now - st.st_mtime >= TAIL_SETTLE_SECONDS:
            out.append(Pending(name, path, end, size, st.st_ino, unterminated=True))
    return out


def commit(layout: Layout, state: dict, done: list[Pending], events: dict[str, int] | None = None) -> dict:
    """Record ``done`` ranges as committed (atomic). Returns the new state."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    files = dict(state["files"])
    for p in done:
        prev = files.get(p.name, {})
        files[p.name] = {
            "offset": p.end,
            "inode": p.inode,
            "head": head_fingerprint(p.path, p.end),
            "committed_at": now,
            "lines": int(prev.get("lines", 0)) + int((events or {}).get(p.name, 0)),
        }
    new_state = {**state, "files": files, "updated_at": now}
    save_state(layout, new_state)
    return new_state


REWIND_MARGIN_S = 2.0  # committed_at is kept to the second: a commit in the backup's first second counts as after


@dataclass(frozen=True)
class Rewound:
    """Offsets moved back by :func:`rewind`: ``moved`` {file: (offset before, after)}; ``gone``: files
    committed since that are no longer in the landing zone (what they held after ``since`` cannot be read)."""

    moved: dict[str, tuple[int, int]]
    gone: list[str]


def rewind(layout: Layout, since: str, held: dict[str, int]) -> Rewound:
    """Move committed offsets back so that every line committed at or after ``since`` (an ISO time) is read
    again, except what is already held: ``held[file]`` = the end of the file's last line a restored copy
    holds; the offset goes back to that end (one byte less when the file has no newline there: a settled
    last line is stored with a newline the file did not have), or to 0. A file replaced since its
    offset was committed goes back to 0. Lines read again are deduplicated by the merges (quarantined ones
    are not counted twice), so this only costs a re-read. Call under the ingest lock."""
    state = load_state(layout)
    cutoff = datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp() - REWIND_MARGIN_S
    files = dict(state["files"])
    moved, gone = {}, []
    for name, rec in state["files"].items():
        try:
            committed = datetime.fromisoformat(str(rec.get("committed_at"))).timestamp()
        except ValueError:
            committed = float("inf")  # no time recorded: it may be after
        offset = int(rec.get("offset", 0))
        if committed < cutoff or offset == 0:
            continue
        path = layout.streaming_dir / name
        try:
            st = path.lstat()
            back = 0
            if committed_offset(state, name, st.st_ino, st.st_size, path) and name in held:
                end = held[name]
                back = end if _newline_at(path, end - 1) else end - 1
            back = min(back, offset)
            head = head_fingerprint(path, back)
        except OSError:
            gone.append(name)
            continue
        if back == offset:
            continue
        files[name] = {**rec, "offset": back, "head": head, "inode": st.st_ino} if back else \
            {"offset": 0, "inode": st.st_ino}
        moved[name] = (offset, back)
    if moved:
        save_state(layout, {**state, "files": files})
    return Rewound(moved, sorted(gone))


def _newline_at(path: Path, pos: int) -> bool:
    if pos < 0:
        return False
    with open_landing(path) as fh:
        fh.seek(pos)
        return fh.read(1) == b"\n"


def landing_lag(layout: Layout) -> dict[str, int]:
    """Bytes written to each landing file but not committed yet (incl. an unterminated last line)."""
    state = load_state(layout)
    lag = {}
    for name, path, st in _scan(layout)[0]:
        try:
            lag[name] = st.st_size - committed_offset(state, name, st.st_ino, st.st_size, path)
        except OSError:
            continue
    return lag


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
