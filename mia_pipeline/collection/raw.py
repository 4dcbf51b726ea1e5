"""Raw lines kept per day (``raw_events``): what any day's datasets can be rebuilt from.

Columns: ``file, offset`` (where the line was read; the merge key), ``kind, event_id, ts``,
``received_at`` and ``line`` (the original bytes, newline included).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mia_pipeline.collection.merge import concat

RAW_SCHEMA = pa.schema([
    ("file", pa.string()),
    ("offset", pa.int64()),
    ("kind", pa.string()),
    ("event_id", pa.string()),
    ("ts", pa.timestamp("ms", tz="UTC")),
    ("received_at", pa.timestamp("ms", tz="UTC")),
    ("line", pa.large_binary()),
])


def _lines_array(data: bytes, offsets: np.ndarray) -> pa.Array:
    """Every line of ``data`` (newline included) as a zero-copy binary array."""
    return pa.Array.from_buffers(
        pa.large_binary(), len(offsets) - 1,
        [None, pa.py_buffer(np.ascontiguousarray(offsets, dtype=np.int64)), pa.py_buffer(data)],
    )


def raw_in_line_order(data: bytes, names: pa.Array, chunk_of: np.ndarray, file_offset: np.ndarray,
                       offsets: np.ndarray, metas: list[pa.Table], received) -> pa.Table:
    """Raw rows of the valid lines, in line order, the line bytes sliced zero-copy."""
    meta = concat(metas)
    line_idx = meta.column("_line").to_numpy()
    if (np.diff(line_idx) < 0).any():
        order = np.argsort(line_idx, kind="stable")
        meta = meta.take(pa.array(order))
        line_idx = line_idx[order]
    lines = _lines_array(data, offsets)
    # Valid lines come in runs between rejected/blank ones: slice each run (no copy).
    breaks = np.flatnonzero(np.diff(line_idx) != 1) + 1
    run_starts = np.concatenate([[0], breaks])
    run_ends = np.concatenate([breaks, [len(line_idx)]])
    line_col = pa.chunked_array(
        [lines.slice(int(line_idx[a]), int(b - a)) for a, b in zip(run_starts, run_ends, strict=True)],
        type=pa.large_binary(),
    )
    n = len(line_idx)
    return pa.table({
        "file": names.take(pa.array(chunk_of[line_idx])),
        "offset": pa.array(file_offset[line_idx]),
        "kind": meta.column("kind"),
        "event_id": meta.column("event_id"),
        "ts": meta.column("ts"),
        "received_at": pa.repeat(received, n),
        "line": line_col,
    }, schema=RAW_SCHEMA)
