"""Land rows that arrive already typed (bulk history from a broker API) without a JSON round trip.

``land_rows(layout, store, kind, rows, origin=...)`` takes one event kind's rows as an Arrow table in
that kind's *parse* schema (``schemas.contract.KIND_PARSE_SCHEMAS[kind]``: envelope + payload, the
event timestamp as an ISO-8601 UTC string; build it with :func:`parse_table`) and sends them down
the landing zone's own path:

1. ``schemas.validate.finalize``: the same value rules, typing and ``content_hash`` as parsed lines
   (a bar with low > high is rejected with ``inconsistent_bar``, exactly as from a JSON line);
2. per UTC day, under the ingest lock, ``Ingestor._land_day``: manifest verification (repair or
   refusal of a damaged day), dedup by key (a re-run lands nothing new; a key stored with other
   content is a ``duplicate_conflict``), raw lines merged, one atomic commit for the day;
3. rejects and conflicts to quarantine with their reason.

The raw lines kept for each row are its event as one JSON line (written, never parsed back here),
filed under ``file = origin`` and ``offset = the row's timestamp in ms``: `mia rebuild` and the
``daily_datasets`` asset rebuild the day from them like any landed event, and landing the same rows
twice stores them once. Returns the ingestion's own :class:`~mia_pipeline.collection.ingest.IngestReport`
(``landed``, ``duplicates``, ``days``, ``quarantined``, ``damaged``).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.collection.ingest import DamagedDay, Ingestor, IngestReport
from mia_pipeline.collection.merge import split_by_day
from mia_pipeline.collection.raw import RAW_SCHEMA
from mia_pipeline.collection.typed_lines import event_lines
from mia_pipeline.layout import Layout
from mia_pipeline.schemas.contract import KIND_PARSE_SCHEMAS, KIND_TO_DATASET
from mia_pipeline.schemas.validate import finalize
from mia_pipeline.storage import PartitionStore
from mia_pipeline.storage.atomic import locked

MAX_FUTURE_MS = 300_000  # as parse_lines: an event more than 5 min ahead of now is refused


def parse_table(kind: str, columns: dict[str, pa.Array | list], ts_ms: np.ndarray) -> pa.Table:
    """A table in ``kind``'s parse schema from payload columns and epoch-ms timestamps.

    ``columns`` holds the envelope (``event_id``, ``source``) and payload fields by name; missing
    ones are null; ``kind``, ``schema_version`` and ``timestamp`` are filled in."""
    schema = KIND_PARSE_SCHEMAS[kind]
    n = len(ts_ms)
    stamps = pc.strftime(pa.array(np.asarray(ts_ms, dtype=np.int64), pa.timestamp("ms", tz="UTC")),
                         format="%Y-%m-%dT%H:%M:%S.%fZ")
    filled = {"kind": pa.repeat(pa.scalar(kind), n), "schema_version": pa.repeat(pa.scalar(1, pa.int64()), n),
              "timestamp": pc.utf8_replace_slice(stamps, 23, 26, "")}  # %f gives microseconds: keep ms
    arrays = []
    for f in schema:
        value = filled.get(f.name, columns.get(f.name))
        arrays.append(pa.nulls(n, f.type) if value is None else pa.array(value, f.type) if isinstance(value, list)
                      else value.cast(f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def land_rows(layout: Layout, store: PartitionStore, kind: str, rows: pa.Table, *, origin: str,
              offsets: np.ndarray | None = None, residuals: dict[int, dict] | None = None,
              known_symbols: frozenset[str] | None = None, now_ms: int | None = None) -> IngestReport:
    """Validate, deduplicate and commit ``rows`` (``kind``'s parse schema) into their daily partitions.

    ``offsets[i]`` is row i's position in ``origin`` (its raw-line key ``(origin, offset)``; default: its
    timestamp in ms, unique when ``origin`` holds one row per instant, like a bar series);
    ``residuals[i]``: extra fields of row i, kept in ``extra``."""
    dataset = KIND_TO_DATASET[kind]
    if dataset is None:
        raise ValueError(f"{kind} events have no daily dataset to land in")
    report = IngestReport()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    received = pa.scalar(now_ms, pa.timestamp("ms", tz="UTC"))
    lines = np.arange(rows.num_rows, dtype=np.int64)
    typed, rejected = finalize(kind, dataset, rows, lines, residuals or {}, now_ms=now_ms,
                               max_future_ms=MAX_FUTURE_MS, known_symbols=known_symbols)
    report.lines = rows.num_rows
    kept = typed.column("_line").to_numpy()
    typed = typed.drop_columns(["_line"])
    offsets = (pc.cast(typed.column("ts"), pa.int64()) if offsets is None
               else pa.array(np.asarray(offsets, dtype=np.int64)[kept]))
    n = typed.num_rows
    origin_col = pa.repeat(pa.scalar(origin), n)
    with_provenance = (typed.append_column("_file", origin_col).append_column("_offset", offsets)
                       .append_column("_received_at", pa.repeat(received, n)))
    raw = pa.table({
        "file": origin_col, "offset": offsets, "kind": pa.repeat(pa.scalar(kind), n),
        "event_id": typed.column("event_id"), "ts": typed.column("ts"), "received_at": pa.repeat(received, n),
        "line": event_lines(dataset, typed),
    }, schema=RAW_SCHEMA)
    ingestor = Ingestor(layout, store, known_symbols)
    raw_by_day = dict(split_by_day(raw))
    conflicts: list[dict] = []
    with locked(layout.ingest_lock_file):  # one writer of the daily partitions at a time, as ingestion
        for day, day_rows in split_by_day(with_provenance):
            part = IngestReport()
            try:
                conflicts += ingestor._land_day(day, {dataset: day_rows}, raw_by_day[day], part)
            except DamagedDay as exc:
                part.damaged[day] = str(exc)
            report.absorb(part)
        bad = [_reject(rows, i, reason, detail, origin, now_ms) for i, reason, detail in rejected]
        ingestor._quarantine(bad + conflicts, datetime.fromtimestamp(now_ms / 1000, UTC).date().isoformat(), report)
    return report


def _reject(rows: pa.Table, i: int, reason: str, detail: str, origin: str, now_ms: int) -> dict:
    """A quarantine record for a row refused by validation; its line is the row as JSON (its
    ``timestamp`` files it under the event's day)."""

    row = rows.slice(i, 1).to_pylist()[0]
    line = json.dumps({k: v for k, v in row.items() if v is not None}, default=str, allow_nan=True)
    return {"file": origin, "offset": int(i), "reason": reason, "detail": detail, "line": line.encode(),
            "received_at": now_ms}
