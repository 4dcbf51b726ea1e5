"""Quarantine: rejected events kept with their reason and original line, per day.

``data/snapshots/quarantine/YYYY-MM-DD/rejects.parquet`` — columns ``file, offset, reason, detail,
line (the original bytes), received_at``. Day = UTC date of the event's timestamp when it can be
read, else the day it was received. Merges are idempotent on ``(file, offset, reason)``, across days for
a line filed under the day it was received (:func:`quarantined_elsewhere`).

The file holds lines verbatim, whatever a writer put in them: it is created 0600 (owner only).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mia_pipeline.collection.merge import concat
from mia_pipeline.layout import Layout
from mia_pipeline.storage import atomic_write
from mia_pipeline.storage.atomic import locked

log = logging.getLogger(__name__)

QUARANTINE_MODE = 0o600  # owner only: rejected lines are kept verbatim
QUARANTINE_SCHEMA = pa.schema([
    ("file", pa.string()),
    ("offset", pa.int64()),
    ("reason", pa.string()),
    ("detail", pa.string()),
    ("line", pa.binary()),
    ("received_at", pa.timestamp("ms", tz="UTC")),
])


def reject_day(raw: bytes, default_day: str) -> str:
    """UTC day of a rejected line's timestamp when it has a readable one (rejects are rare: Python is fine)."""
    try:
        ts = json.loads(raw).get("timestamp")
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        if when.tzinfo is None:
            return default_day
        return when.astimezone(UTC).date().isoformat()
    except Exception:  # noqa: BLE001 - any unreadable line goes to the receiving day
        return default_day


def write_rejects(layout: Layout, day: str, rows: pa.Table) -> pa.Table:
    """Merge ``rows`` (QUARANTINE_SCHEMA) into the day's quarantine; returns the rows newly added."""
    path = layout.quarantine_file(day)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path.parent / ".lock"):
        existing = _readable(path)
        combined = concat([existing, rows.cast(QUARANTINE_SCHEMA)]) if existing is not None else rows
        key = combined.select(["file", "offset", "reason"]).to_pandas()
        keep = ~key.duplicated(keep="first").to_numpy()
        n_old = existing.num_rows if existing is not None else 0
        merged = combined.filter(pa.array(keep))
        if merged.num_rows > n_old:
            atomic_write(path, lambda p: pq.write_table(merged, p, compression="zstd"), mode=QUARANTINE_MODE)
    return combined.slice(n_old).filter(pa.array(keep[n_old:]))


def quarantined_elsewhere(layout: Layout, day: str) -> set[tuple[str, int, str]]:
    """``(file, offset, reason)`` of every reject kept on another day than ``day``: a line without a readable
    timestamp is filed under the day it was received, so reading it again on a later day (a reset or
    rewound ingest state) must not quarantine it twice. Rejects are few: reading their keys is cheap."""
    seen: set[tuple[str, int, str]] = set()
    for other in layout.quarantine_days():
        path = layout.quarantine_file(other)
        if other == day or not path.exists():
            continue
        try:
            keys = pq.read_table(path, columns=["file", "offset", "reason"])
        except (OSError, pa.ArrowException):
            continue  # damaged: set aside by the next write of that day, reported by check-integrity
        seen.update(zip(*(keys.column(c).to_pylist() for c in ("file", "offset", "reason")), strict=True))
    return seen


DAMAGED_MARK = ".damaged-"


def _readable(path: Path) -> pa.Table | None:
    """The day's rejects, or None. A file that no longer reads (damage from outside) is moved aside
    as ``rejects.parquet.damaged-<time>`` (its bytes kept, reported by `mia check-integrity`) so that
    new rejects still land: one damaged file never stops ingestion."""
    if not path.exists():
        return None
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        aside = path.with_name(f"{path.name}{DAMAGED_MARK}{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(path, aside)
        log.warning("quarantine file %s is damaged (%s): moved aside to %s", path, exc, aside.name)
        return None


def read_rejects(layout: Layout, day: str) -> pa.Table:
    """The day's rejects (empty when there are none or the file is damaged: check-integrity says so)."""
    path = layout.quarantine_file(day)
    try:
        return pq.read_table(path) if path.exists() else QUARANTINE_SCHEMA.empty_table()
    except (OSError, pa.ArrowException) as exc:
        log.warning("quarantine file %s is damaged (%s); run `mia check-integrity`", path, exc)
        return QUARANTINE_SCHEMA.empty_table()


def counts_by_reason(layout: Layout, days: list[str] | None = None) -> dict[str, Counter]:
    """``{day: Counter(reason -> n)}`` over the quarantine."""
    out = {}
    for day in days if days is not None else layout.quarantine_days():
        t = read_rejects(layout, day)
        if t.num_rows:
            vc = pc.value_counts(t.column("reason"))
            out[day] = Counter({v["values"].as_py(): v["counts"].as_py() for v in vc})
    return out
