"""Live tail of Sierra's ``.scid`` / ``.depth`` files: per-file record-count cursors, never mtimes.

:func:`growth` (used by the Dagster sensor) compares each file's whole-record count with a cursor and
names the UTC days its new records fall on — read from the first and last new record only (records
are time-sorted). :class:`SierraTail` (``mia record sierra``) lands what each file gained since its
cursor (see :mod:`~mia_pipeline.sources.sierra.ingest`), then saves the cursor atomically in
``data/live/sierra_tail.json``; a crash between the two re-lands records already stored, which the
key-based dedup drops. A file that shrank (Sierra rewrote it) is read again from its start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mia_pipeline.collection.ingest import IngestReport
from mia_pipeline.layout import Layout
from mia_pipeline.sources.sierra.files import SierraFiles
from mia_pipeline.sources.sierra.formats import (
    DEPTH_RECORD,
    MAX_UNIX_US,
    MIN_UNIX_US,
    SC_EPOCH_OFFSET_US,
    SCID_RECORD,
    SierraFileError,
    memmap_records,
    read_header,
)
from mia_pipeline.sources.sierra.ingest import land_depth, land_scid
from mia_pipeline.sources.sierra.landing import merge_reports
from mia_pipeline.storage import PartitionStore, atomic_write_bytes

DAY_US = 86_400_000_000


def _kind(path: Path) -> str:
    return "depth" if path.suffix.lower() == ".depth" else "scid"


def new_days(path: Path, first: int, stop: int) -> list[str]:
    """UTC days (YYYY-MM-DD) covered by records ``[first, stop)`` of a ``.scid``/``.depth`` file: from the
    first and the last record with a real time (damaged records are looked through; none -> [])."""
    header = read_header(path, _kind(path))
    stop = min(stop, header.records)
    if stop <= first:
        return []
    dtype = SCID_RECORD if _kind(path) == "scid" else DEPTH_RECORD
    ends = []
    for a, b, pick in ((first, min(stop, first + 4096), 0), (max(first, stop - 4096), stop, -1)):
        times = memmap_records(header, dtype, a, b)["DateTime"].astype(np.int64) - SC_EPOCH_OFFSET_US
        good = times[(times >= MIN_UNIX_US) & (times < MAX_UNIX_US)]
        if not len(good):
            return []
        ends.append(int(good[pick]))
    lo, hi = ends
    return [str(np.datetime64(d, "D")) for d in range(lo // DAY_US, hi // DAY_US + 1)]


def growth(paths: list[Path], cursor: dict[str, int]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """(new cursor, {file: days with new records}) for ``paths``; unreadable files are skipped
    (their cursor kept) and reported under the key ``"!" + file`` with the error as the only item."""
    out = dict(cursor)
    days: dict[str, list[str]] = {}
    for path in paths:
        key = str(path)
        try:
            count = read_header(path, _kind(path)).records
            seen = cursor.get(key, 0)
            if count < seen:  # rewritten: everything is new again
                seen = 0
            if count > seen:
                days[key] = new_days(path, seen, count)
            out[key] = count
        except SierraFileError as exc:
            days["!" + key] = [str(exc)]
    return out, days


@dataclass
class TailPass:
    report: IngestReport
    records: dict[str, int] = field(default_factory=dict)   # file -> records landed this pass
    figures: dict[str, dict] = field(default_factory=dict)  # day -> figures of this pass
    errors: dict[str, str] = field(default_factory=dict)    # file -> why it was skipped
    rewritten: list[str] = field(default_factory=list)      # files read again from the start


class SierraTail:
    """Land what the configured files gained since the last pass (``poll``)."""

    def __init__(self, layout: Layout, store: PartitionStore, files: list[SierraFiles], *,
                 known_symbols: frozenset[str] | None = None, profile: bool = True) -> None:
        self.layout, self.store, self.files = layout, store, files
        self.known_symbols, self.profile = known_symbols, profile
        self.cursor = load_cursor(layout)

    def poll(self, now_us: int | None = None) -> TailPass:
        done = TailPass(IngestReport())
        reports = []
        for entry in self.files:
            for path in [entry.scid, *entry.depth]:
                key = str(path)
                try:
                    count = read_header(path, _kind(path)).records
                    seen = self.cursor.get(key, 0)
                    if count < seen:
                        done.rewritten.append(key)
                        seen = 0
                    if count == seen:
                        continue
                    if _kind(path) == "scid":
                        landed = land_scid(self.layout, self.store, path, entry.symbol, from_record=seen,
                                           to_record=count, known_symbols=self.known_symbols,
                                           profile=self.profile, now_us=now_us)
                    else:
                        landed = land_depth(self.layout, self.store, path, entry.symbol, from_record=seen,
                                            to_record=count, known_symbols=self.known_symbols)
                except SierraFileError as exc:
                    done.errors[key] = str(exc)
                    continue
                reports.append(landed.report)
                done.records[key] = count - seen
                for day, figs in landed.figures.items():
                    done.figures.setdefault(day, {}).update(figs)
                self.cursor[key] = count
                save_cursor(self.layout, self.cursor)  # after the commit: a crash re-lands, never skips
        done.report = merge_reports(reports)
        return done


def load_cursor(layout: Layout) -> dict[str, int]:
    path = layout.sierra_tail_file
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return {str(k): int(v) for k, v in data.items()}
    except (ValueError, AttributeError, TypeError):
        # a damaged cursor only costs a re-read: every record is landed again and deduplicated
        return {}


def save_cursor(layout: Layout, cursor: dict[str, int]) -> None:
    atomic_write_bytes(layout.sierra_tail_file, json.dumps(cursor, indent=1, sort_keys=True).encode())
