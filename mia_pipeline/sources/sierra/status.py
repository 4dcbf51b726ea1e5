"""Is Sierra Chart reachable? Its Data folder, its ``.scid`` files and how fresh each one is.

:func:`sierra_status` reports, from the ``sierra:`` settings: folder not configured / missing, no
``.scid`` files, or per symbol the file, its records, its last record's time and the age of its last
write (stale when older than ``stale_after_s``). :func:`test_sierra_connection` is the guide's
``MarketDataFeed().test_sierra_connection()``: a :class:`SierraCheck` that is truthy when every
configured file is readable and fresh, and prints as a one-line summary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mia_pipeline.sources.sierra.files import configured_files
from mia_pipeline.sources.sierra.formats import (
    SC_EPOCH_OFFSET_US,
    SCID_RECORD,
    SierraFileError,
    memmap_records,
    read_header,
)


@dataclass(frozen=True)
class SierraFileStatus:
    symbol: str
    path: Path
    ok: bool
    records: int = 0
    last_record: datetime | None = None
    age_s: float | None = None       # seconds since the file was last written
    stale: bool = False              # not written for longer than stale_after_s
    problem: str = ""                # why the file cannot be read ("" when it can)

    def line(self) -> str:
        if self.problem:
            return f"{self.symbol}: {self.path.name}: {self.problem}"
        last = self.last_record.isoformat(timespec="seconds") if self.last_record else "no records"
        return (f"{self.symbol}: {self.path.name}: {self.records:,} records, last {last}, written "
                f"{_age(self.age_s)} ago" + (" (STALE)" if self.stale else ""))


@dataclass
class SierraCheck:
    ok: bool
    message: str
    files: list[SierraFileStatus] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return self.message


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def file_status(symbol: str, path: Path, stale_after_s: float, now: float | None = None) -> SierraFileStatus:
    now = time.time() if now is None else now
    try:
        header = read_header(path, "scid")
        age = max(0.0, now - path.stat().st_mtime)
        last = None
        if header.records:
            sc = int(memmap_records(header, SCID_RECORD, header.records - 1)["DateTime"][0])
            last = datetime.fromtimestamp((sc - SC_EPOCH_OFFSET_US) / 1e6, UTC)
    except (SierraFileError, OSError) as exc:
        return SierraFileStatus(symbol, path, False, problem=str(getattr(exc, "problem", exc)))
    stale = age > stale_after_s
    return SierraFileStatus(symbol, path, not stale, header.records, last, age, stale)


def sierra_status(sierra, now: float | None = None) -> SierraCheck:
    """The state of the Sierra source described by the ``sierra:`` settings section."""
    if not sierra.data_dir:
        return SierraCheck(False, "Sierra: no data folder configured (set sierra.data_dir in mia.yaml, or "
                                  "`mia record sierra --data-dir DIR`)")
    root = Path(sierra.data_dir).expanduser()
    if not root.is_dir():
        return SierraCheck(False, f"Sierra: data folder {root} is missing (Sierra Chart's Data folder, "
                                  "e.g. C:/SierraChart/Data)")
    files = configured_files(sierra, depth=False)
    if not files:
        return SierraCheck(False, f"Sierra: no .scid files in {root}")
    statuses = [file_status(f.symbol, f.scid, sierra.stale_after_s, now) if f.scid.exists() else
                SierraFileStatus(f.symbol, f.scid, False, problem="missing (check sierra.files)") for f in files]
    ok = all(s.ok for s in statuses)
    head = "Sierra: ok" if ok else "Sierra: problem"
    return SierraCheck(ok, f"{head} ({root}) — " + "; ".join(s.line() for s in statuses), statuses)


def test_sierra_connection(sierra=None) -> SierraCheck:
    """The guide's check (``feed.test_sierra_connection()``), from the settings when none are given."""
    if sierra is None:
        from mia_pipeline.settings import load_settings

        sierra = load_settings().sierra
    return sierra_status(sierra)


test_sierra_connection.__test__ = False  # a library function, not a pytest test
