"""The raw line of each row landed from a typed table (IBKR bars, Sierra Chart ticks/bars/depth), built
column-wise (a day of ES trades is ~2 M rows).

The lines say what :func:`mia_pipeline.schemas.events_to_json` says (``kind`` first, the envelope,
``timestamp`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ``, payload fields in contract order, nulls left out) and
parse back to the same typed rows and ``content_hash`` (`mia rebuild` relies on it; a test pins it),
but with Arrow string kernels instead of one ``json.dumps`` per row. Flat payloads only; a table with
``extra`` values or a string needing JSON escapes goes through ``events_to_json`` (one ``json.dumps``
per row).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.schemas import events_to_json
from mia_pipeline.schemas.contract import TABLE_SCHEMAS, TABLE_TO_KIND

_NEEDS_ESCAPE = r'["\\\x00-\x1f\x7f]'


def _value(col: pa.Array) -> pa.Array | None:
    """JSON text of each value (null stays null); None when the type is not flat."""
    t = col.type
    if pa.types.is_timestamp(t):
        text = pc.strftime(col.cast(pa.timestamp("ms", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
        return pc.binary_join_element_wise('"', text, '"', "")
    if pa.types.is_string(t):
        if pc.any(pc.match_substring_regex(col, _NEEDS_ESCAPE)).as_py():
            return None
        return pc.binary_join_element_wise('"', col, '"', "")
    if pa.types.is_boolean(t):
        return pc.if_else(col, "true", "false")
    if pa.types.is_integer(t):
        return col.cast(pa.string())
    if pa.types.is_floating(t):
        text = col.cast(pa.string())
        # Python writes 6000.0 where Arrow writes 6000: keep the float spelling (same value either way)
        return pc.if_else(pc.match_substring_regex(text, r"[.eEna]"), text, pc.binary_join_element_wise(text, ".0", ""))
    return None


def event_lines(dataset: str, typed: pa.Table) -> pa.Array:
    """One ``\\n``-terminated JSON line per row of ``typed`` (stored schema of ``dataset``), as large_binary."""
    extra = typed.column("extra") if "extra" in typed.column_names else None
    pieces = [pa.repeat(pa.scalar(f'"kind":"{TABLE_TO_KIND[dataset]}"'), typed.num_rows)]
    for name in TABLE_SCHEMAS[dataset].names:
        if name in ("extra", "content_hash") or name not in typed.column_names:
            continue
        col = typed.column(name).combine_chunks()
        text = _value(col)
        if text is None or (extra is not None and extra.null_count < len(extra)):
            return _slow(dataset, typed)
        key = "timestamp" if name == "ts" else name
        pieces.append(pc.binary_join_element_wise(f'"{key}":', text, ""))  # null value -> null piece, skipped
    body = pc.binary_join_element_wise(*pieces, ",", null_handling="skip")
    lines = pc.binary_join_element_wise("{", body, "}\n", "").cast(pa.large_binary())
    return lines


def _slow(dataset: str, typed: pa.Table) -> pa.Array:
    """One ``json.dumps`` per row (``events_to_json``), as large_binary lines."""
    data = events_to_json(dataset, typed)
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    return pa.Array.from_buffers(pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
