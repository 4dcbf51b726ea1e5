"""Land rows that arrive already typed (bulk history from a broker API) without a JSON round trip.

``land_rows(layout, store, kind, rows, origin=...)`` takes one event kind's rows as an Arrow table in
that kind's *parse* schema (``schemas.contract.KIND_PARSE_SCHEMAS[kind]``: envelope + payload, the
event timestamp typed; build it with :func:`parse_table`) and sends them down the landing zone's
rules; :func:`land_feeds` does the same for whole days of pieces from several sources (Sierra files):

1. ``schemas.validate.finalize``: the same value rules, typing and ``content_hash`` as parsed lines
   (a bar with low > high is rejected with ``inconsistent_bar``, exactly as from a JSON line);
2. per UTC day, under the ingest lock, :func:`~mia_pipeline.collection.typed_day.land_day`: manifest
   verification (repair or refusal of a damaged day), dedup by key (a re-run lands nothing new; a
   key stored with other content is a ``duplicate_conflict``), raw lines merged, one atomic commit
   for the day, streamed piece by piece;
3. rejects and conflicts to quarantine with their reason.

The raw lines kept for each row are its event as one JSON line (written, never parsed back here),
filed under ``file = origin`` and ``offset = the row's position in origin`` (default its timestamp in ms): `mia rebuild` and the
``daily_datasets`` asset rebuild the day from them like any landed event, and landing the same rows
twice stores them once. Returns the ingestion's own :class:`~mia_pipeline.collection.ingest.IngestReport`
(``landed``, ``duplicates``, ``days``, ``quarantined``, ``damaged``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.collection.ingest import DamagedDay, Ingestor, IngestReport
from mia_pipeline.collection.merge import split_by_day
from mia_pipeline.collection.typed_day import Feed, Piece, land_day
from mia_pipeline.layout import Layout
from mia_pipeline.schemas.contract import KIND_PARSE_SCHEMAS, KIND_TO_DATASET
from mia_pipeline.storage import PartitionStore
from mia_pipeline.storage.atomic import locked


def parse_table(kind: str, columns: dict[str, pa.Array | list], ts_ms: np.ndarray) -> pa.Table:
    """A table in ``kind``'s parse schema from payload columns and epoch-ms timestamps.

    ``columns`` holds the envelope (``event_id``, ``source``) and payload fields by name; missing
    ones are null; ``kind``, ``schema_version`` and ``timestamp`` are filled in. ``timestamp`` stays a
    ``timestamp[ms, UTC]`` column (validation takes it as it is: no text round trip)."""
    schema = KIND_PARSE_SCHEMAS[kind]
    n = len(ts_ms)
    stamp = pa.array(np.asarray(ts_ms, dtype=np.int64), pa.timestamp("ms", tz="UTC"))
    filled = {"kind": pa.repeat(pa.scalar(kind), n), "schema_version": pa.repeat(pa.scalar(1, pa.int64()), n),
              "timestamp": stamp}
    arrays, fields = [], []
    for f in schema:
        value = filled.get(f.name, columns.get(f.name))
        if f.name == "timestamp":
            f = f.with_type(stamp.type)
        arrays.append(pa.nulls(n, f.type) if value is None else pa.array(value, f.type) if isinstance(value, list)
                      else value.cast(f.type))
        fields.append(f)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema.metadata))


def split_rows(rows: pa.Table, offsets: np.ndarray) -> list[tuple[str, pa.Table, np.ndarray]]:
    """``[(UTC day, its rows, their offsets)]`` of parse rows (by their ``timestamp``), days in order."""
    if rows.num_rows == 0:
        return []
    if not pa.types.is_timestamp(rows.schema.field("timestamp").type):
        raise TypeError("rows need a timestamp[ms, UTC] `timestamp` column: build them with parse_table")
    marked = rows.append_column("_key", pa.array(np.asarray(offsets, dtype=np.int64)))
    out = []
    for day, part in split_by_day(marked, "timestamp"):
        out.append((day, part.drop_columns(["_key"]), part.column("_key").to_numpy()))
    return out


def land_feeds(layout: Layout, store: PartitionStore, days: Iterable[tuple[str, list[Feed]]], *,
               known_symbols: frozenset[str] | None = None, now_ms: int | None = None,
               rejects: list[dict] | None = None) -> IngestReport:
    """Land each day's feeds in one commit per day (streamed: see :mod:`~mia_pipeline.collection.typed_day`),
    days one after the other, under the ingest lock; then quarantine what was refused (with ``rejects``:
    source records refused before typing, e.g. damaged Sierra records)."""
    report = IngestReport()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    ingestor = Ingestor(layout, store, known_symbols)
    rejects = list(rejects or [])
    with locked(layout.ingest_lock_file):  # one writer of the daily partitions at a time, as ingestion
        for day, feeds in days:
            try:
                land_day(ingestor, day, feeds, report, now_ms=now_ms, rejects=rejects)
            except DamagedDay as exc:
                report.damaged[day] = str(exc)
        ingestor._quarantine(rejects, datetime.fromtimestamp(now_ms / 1000, UTC).date().isoformat(), report)
    return report


def land_rows(layout: Layout, store: PartitionStore, kind: str, rows: pa.Table, *, origin: str,
              offsets: np.ndarray | None = None, residuals: dict[int, dict] | None = None,
              known_symbols: frozenset[str] | None = None, now_ms: int | None = None) -> IngestReport:
    """Validate, deduplicate and commit ``rows`` (``kind``'s parse schema) into their daily partitions.

    ``offsets[i]`` is row i's position in ``origin`` (its raw-line key ``(origin, offset)``; default: its
    timestamp in ms, unique when ``origin`` holds one row per instant, like a bar series);
    ``residuals[i]``: extra fields of row i, kept in ``extra``."""
    if KIND_TO_DATASET[kind] is None:
        raise ValueError(f"{kind} events have no daily dataset to land in")
    report_lines = rows.num_rows
    if offsets is None:
        ts = rows.column("timestamp")
        offsets = (pc.cast(ts, pa.int64()).to_numpy() if pa.types.is_timestamp(ts.type)
                   else np.arange(rows.num_rows, dtype=np.int64))
    index = np.arange(rows.num_rows, dtype=np.int64)
    days = []
    for day, part, idx in split_rows(rows, index):
        res = {j: residuals[int(i)] for j, i in enumerate(idx.tolist()) if int(i) in residuals} if residuals else None
        piece = Piece(part, np.asarray(offsets, dtype=np.int64)[idx], res)
        days.append((day, [Feed(kind, origin, lambda p=piece: [p])]))
    report = land_feeds(layout, store, days, known_symbols=known_symbols, now_ms=now_ms)
    report.lines = report_lines
    return report
