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

_MS3 = pa.array([f"{i:03d}" for i in range(1000)])


def iso_ms(col: pa.Array) -> pa.Array:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` of each timestamp: ``strftime`` runs once per distinct second (a day of
    ticks has at most 86,400 of them, against millions of rows), the milliseconds come from a table."""
    ms = pc.cast(col.cast(pa.timestamp("ms", tz="UTC")), pa.int64())
    values = pc.fill_null(ms, 0).to_numpy()
    seconds = np.floor_divide(values, 1000)
    uniq, inverse = np.unique(seconds, return_inverse=True)
    text = pc.strftime(pa.array(uniq, pa.timestamp("s", tz="UTC")), format="%Y-%m-%dT%H:%M:%S")
    out = pc.binary_join_element_wise(text.take(pa.array(inverse)), ".", _MS3.take(pa.array(values - seconds * 1000)),
                                      "Z", "")
    return out if ms.null_count == 0 else pc.if_else(ms.is_valid(), out, pa.scalar(None, pa.string()))


def _needs_escape(col: pa.Array) -> bool:
    """Whether any string holds a byte JSON must escape (``"``, ``\\``, control characters), read
    straight off the Arrow data buffer."""
    if len(col) == 0 or col.null_count == len(col):
        return False
    _, offsets, data = col.buffers()
    ends = np.frombuffer(offsets, dtype=np.int32)[col.offset: col.offset + len(col) + 1]
    raw = np.frombuffer(data, dtype=np.uint8)[ends[0]: ends[-1]]
    return bool(((raw < 0x20) | (raw == 0x22) | (raw == 0x5C) | (raw == 0x7F)).any())


def _text(col: pa.Array) -> pa.Array | None:
    """JSON text of each value of a flat column (null stays null); None when the type is not flat."""
    t = col.type
    if pa.types.is_timestamp(t):
        return pc.binary_join_element_wise('"', iso_ms(col), '"', "")
    if pa.types.is_string(t):
        return None if _needs_escape(col) else pc.binary_join_element_wise('"', col, '"', "")
    if pa.types.is_boolean(t):
        return pc.if_else(col, "true", "false")
    if pa.types.is_integer(t):
        return col.cast(pa.string())
    if pa.types.is_floating(t):
        text = col.cast(pa.string())
        # Python writes 6000.0 where Arrow writes 6000: keep the float spelling (same value either way).
        # Arrow spells a whole number below 1e16 without a point or exponent; anything else keeps its text.
        whole = pc.and_(pc.equal(pc.floor(col), col), pc.less(pc.abs(col), 1e16))
        return pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    return None


def _pieces(key: str, col: pa.Array) -> list | None:
    """The pieces spelling ``,"key":value`` in each row (a null value: a null piece, left out of the
    line), fewest copies first: a column of few distinct values (prices, sizes, symbols) is spelled
    once per distinct value and taken; a column of unique strings or times is joined with its key
    where the line is built."""
    prefix = f',"{key}":'
    t = col.type
    if pa.types.is_timestamp(t):
        return [prefix + '"', iso_ms(col), '"'] if col.null_count == 0 else [_joined(prefix, _text(col))]
    if pa.types.is_string(t) and col.null_count == 0 and len(col) > 4096 and not _needs_escape(col):
        if pc.count_distinct(col.slice(0, 4096)).as_py() > 1024:  # ids: no repetition to exploit
            return [prefix + '"', col, '"']
    if len(col) > 4096 and (pa.types.is_string(t) or pa.types.is_integer(t) or pa.types.is_floating(t)):
        encoded = pc.dictionary_encode(col)
        if len(encoded.dictionary) * 4 < len(col):
            spelled = _text(encoded.dictionary)
            if spelled is None:
                return None
            return [_joined(prefix, spelled).take(encoded.indices)]
    text = _text(col)
    return None if text is None else [_joined(prefix, text)]


def _joined(prefix: str, text: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(prefix, text, "")


def event_lines(dataset: str, typed: pa.Table) -> pa.Array:
    """One ``\\n``-terminated JSON line per row of ``typed`` (stored schema of ``dataset``), as large_binary.

    One join builds each line: ``{"kind":...`` then ``,"field":value`` per field (a null value drops its
    whole piece, as ``events_to_json`` leaves nulls out) then ``}\\n``."""
    extra = typed.column("extra") if "extra" in typed.column_names else None
    if extra is not None and extra.null_count < len(extra):
        return _slow(dataset, typed)
    pieces = []
    for name in TABLE_SCHEMAS[dataset].names:
        if name in ("extra", "content_hash") or name not in typed.column_names:
            continue
        col = typed.column(name).combine_chunks()
        if col.null_count == len(col):
            continue  # left out of every line
        found = _pieces("timestamp" if name == "ts" else name, col)
        if found is None:
            return _slow(dataset, typed)
        pieces += found
    head = '{"kind":"' + TABLE_TO_KIND[dataset] + '"'
    lines = pc.binary_join_element_wise(head, *pieces, "}\n", "", null_handling="skip")
    return lines.cast(pa.large_binary())


def _slow(dataset: str, typed: pa.Table) -> pa.Array:
    """One ``json.dumps`` per row (``events_to_json``), as large_binary lines."""
    data = events_to_json(dataset, typed)
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    return pa.Array.from_buffers(pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
