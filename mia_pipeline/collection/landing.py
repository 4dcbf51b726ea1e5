"""The landing zone: ``data/live/streaming/*.jsonl`` files and the committed offset of each.

Writers append one event per line. A last line without its newline is a write in progress: it is
never read until its newline arrives. Committed offsets live in ``data/live/ingest_state.json``::

    {"files": {"paper_trading_2025-06-23.jsonl": {"offset": 18231, "inode": 1234, "committed_at": "..."}}}

A file whose inode changed, that shrank below its offset, or whose first bytes changed (a fingerprint
of up to 1 KiB is kept) was replaced or truncated: it is read again from 0 (the idempotent merges
drop what was already ingested).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mia_pipeline.layout import Layout
from mia_pipeline.storage import atomic_write_json

LANDING_GLOB = "*.jsonl"
HEAD_BYTES = 1024


@dataclass(frozen=True)
class Pending:
    """Complete, not yet committed bytes of one landing-zone file: ``[start, end)``."""

    name: str
    path: Path
    start: int
    end: int
    inode: int

    @property
    def size(self) -> int:
        return self.end - self.start


def load_state(layout: Layout) -> dict:
    try:
        state = json.loads(layout.ingest_state_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"files": {}}
    except json.JSONDecodeError:
        # The file is written atomically, so this is outside damage; starting over is safe because
        # every merge is idempotent (it costs a re-read, never a duplicate).
        return {"files": {}}
    state.setdefault("files", {})
    return state


def save_state(layout: Layout, state: dict) -> None:
    atomic_write_json(layout.ingest_state_file, state)


def landing_files(layout: Layout) -> list[Path]:
    if not layout.streaming_dir.is_dir():
        return []
    return sorted(p for p in layout.streaming_dir.glob(LANDING_GLOB) if p.is_file())


def complete_end(path: Path, start: int, size: int, chunk: int = 1 << 16) -> int:
    """Offset just past the last newline in ``path[start:size]`` (== start if there is none)."""
    with open(path, "rb") as fh:
        pos = size
        while pos > start:
            lo = max(start, pos - chunk)
            fh.seek(lo)
            block = fh.read(pos - lo)
            nl = block.rfind(b"\n")
            if nl >= 0:
                return lo + nl + 1
            pos = lo
    return start


def head_fingerprint(path: Path, offset: int) -> str:
    with open(path, "rb") as fh:
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


def pending(layout: Layout, state: dict | None = None, until: dict[str, int] | None = None) -> list[Pending]:
    """Uncommitted complete byte ranges of every landing file (optionally capped by ``until``)."""
    state = load_state(layout) if state is None else state
    out = []
    for path in landing_files(layout):
        st = path.stat()
        start = committed_offset(state, path.name, st.st_ino, st.st_size, path)
        size = st.st_size if until is None else min(st.st_size, until.get(path.name, 0))
        if size <= start:
            continue
        end = complete_end(path, start, size)
        if end > start:
            out.append(Pending(path.name, path, start, end, st.st_ino))
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


def read_range(p: Pending) -> bytes:
    with open(p.path, "rb") as fh:
        fh.seek(p.start)
        return fh.read(p.size)


def landing_lag(layout: Layout) -> dict[str, int]:
    """Bytes written to each landing file but not committed yet (incl. an unterminated last line)."""
    state = load_state(layout)
    lag = {}
    for path in landing_files(layout):
        st = path.stat()
        lag[path.name] = st.st_size - committed_offset(state, path.name, st.st_ino, st.st_size, path)
    return lag


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
