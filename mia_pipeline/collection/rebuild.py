"""Rebuild a day's datasets from its raw lines (``raw_events``), e.g. after a schema change or damage."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.collection.merge import merge_rows, split_by_day
from mia_pipeline.layout import DATASETS, RAW_EVENTS, parse_day
from mia_pipeline.schemas import DATASET_KEYS, DATASET_SCHEMAS, parse_lines
from mia_pipeline.storage import PartitionStore, StorageError, sha256_file


class RebuildError(RuntimeError):
    """Nothing to rebuild from (no raw lines stored for the day)."""


class RawLinesDamaged(RebuildError):
    """The day's raw lines do not match their manifest: rebuilding would commit damage as valid."""


def _joined(lines: pa.LargeBinaryArray) -> bytes:
    """The lines (each stored with its newline) back to back, straight from the Arrow buffers."""
    if len(lines) == 0:
        return b""
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[lines.offset: lines.offset + len(lines) + 1]
    return data_buf.to_pybytes()[offsets[0]: offsets[-1]]


def tables_from_raw(raw: pa.Table, day: str, known_symbols: frozenset[str] | None = None,
                    datasets=DATASETS) -> dict[str, pa.Table]:
    """Each of ``datasets`` of ``day`` as the raw lines ``raw`` (``raw_events`` rows) give it: the lines replayed
    in arrival order (received_at, file, offset), so "first version wins" holds as it did when they landed."""
    order = pc.sort_indices(raw, [("received_at", "ascending"), ("file", "ascending"), ("offset", "ascending")])
    raw = raw.take(order)
    data = _joined(raw.column("line").combine_chunks())
    # "Far in the future" is judged against when the lines were received, not against today.
    now_ms = pc.max(raw.column("received_at")).cast(pa.int64()).as_py() if raw.num_rows else 0
    result = parse_lines(data, now_ms=now_ms, known_symbols=known_symbols)
    out: dict[str, pa.Table] = {}
    for dataset in datasets:
        table = result.tables.get(dataset)
        rows = DATASET_SCHEMAS[dataset].empty_table()
        if table is not None and table.num_rows:
            table = table.drop_columns(["_line"])
            same_day = [t for d, t in split_by_day(table) if d == day]
            if same_day:
                rows = merge_rows(None, same_day[0], DATASET_KEYS[dataset]).table
        out[dataset] = rows
    return out


def rebuild_day(store: PartitionStore, day, known_symbols: frozenset[str] | None = None,
                datasets=DATASETS) -> Counter:
    """Replace ``datasets`` (default: all) of ``day`` with what its raw lines give, in one commit.

    Returns rows per dataset written. Lines are replayed in their original arrival order, so "first
    version wins" holds as it did. The raw lines are verified against the manifest first: damaged
    raw lines raise :class:`RebuildError` and nothing is written.
    """
    day = parse_day(day).isoformat()
    if orphans := store.orphan_files(day):
        raise RawLinesDamaged(f"the manifest of {day} was lost ({', '.join(orphans)} are there, nothing vouches "
                              "for them); nothing was rebuilt: restore the manifest from a backup")
    try:
        entry = store.entry(day, RAW_EVENTS)
        path = store.committed_file(day, RAW_EVENTS)
    except StorageError as exc:
        raise RawLinesDamaged(f"{exc}; nothing was rebuilt") from None
    if entry is None or path is None:
        raise RebuildError(f"no raw events stored for {day}: nothing to rebuild from (is the date right?)")
    if not path.exists() or sha256_file(path) != entry.sha256:
        raise RawLinesDamaged(f"the raw lines of {day} do not match their manifest (missing or sha256 mismatch); "
                           "nothing was rebuilt: restore the day from a backup, or run `mia check-integrity`")
    tables = tables_from_raw(store.read(day, RAW_EVENTS), day, known_symbols, datasets)
    writes = {ds: t for ds, t in tables.items() if t.num_rows or store.entry(day, ds) is not None}
    # Compare-and-swap on the raw lines read: a concurrent ingest's newer rows are never replaced by older ones.
    store.write_many(day, writes, expect_sha256={RAW_EVENTS: entry.sha256})
    return Counter({ds: t.num_rows for ds, t in writes.items()})
