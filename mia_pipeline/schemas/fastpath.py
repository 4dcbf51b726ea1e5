"""The vectorized path: Arrow's JSON reader over whole runs of same-kind lines, bisecting on failure.

Each kind's lines are gathered into one buffer (an Arrow ``take`` on the zero-copy line array) and
parsed with that kind's explicit schema — parsing per kind is ~3x faster than one union schema.
``unexpected_field_behavior="infer"`` keeps unknown keys as extra (inferred) columns, so the rows
that carry them are found without looking at the text; those columns are then dropped and the rows'
unknown keys are captured by the slow path into ``extra``.

A run that fails to parse (bad syntax, wrong type, duplicate key, two values on one line, …) is
narrowed down without reading it line by line: runs of up to ``HINT_LINES`` lines are read as a
single block, so the reader's error names the failing row — the good prefix is re-read, the bad
line goes to the slow path (``json.loads``, which names the reason) and the rest continues. Errors
without a row (e.g. ``1.0`` for an int64 field) split the run in ``FANOUT`` parts. Runs of at most
``PY_RUN`` lines go to the slow path whole: an Arrow read costs ~0.2 ms, a ``json.loads`` ~20 µs.
A hint is only an optimisation: every line still ends up parsed by Arrow or by ``json.loads``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from mia_pipeline.schemas.contract import KIND_PARSE_SCHEMAS

CHUNK_LINES = 1 << 16  # first split of a kind's lines (read on all threads)
HINT_LINES = 4096  # runs up to this size are read as one block on one thread: errors name their row
PY_RUN = 32  # below this many lines, json.loads per line is cheaper than another Arrow read
FANOUT = 16  # a failing run without a row hint is split in this many parts
_MAX_BLOCK = 1 << 30
_ROW = re.compile(r"in row (\d+)")


@dataclass
class KindParse:
    """Fast-path output for one kind: parsed tables (parse schema), their line numbers, and leftovers."""

    tables: list[pa.Table] = field(default_factory=list)
    lines: list[np.ndarray] = field(default_factory=list)  # line index of each row, per table
    with_unknown_keys: list[np.ndarray] = field(default_factory=list)  # lines needing `extra`
    slow_lines: list[int] = field(default_factory=list)  # lines the reader could not take


def _read(buf: pa.Buffer, schema: pa.Schema, one_block: bool) -> tuple[pa.Table | None, str]:
    """Arrow JSON read; ``(table, "")`` or ``(None, error message)``."""
    if one_block:
        ro = pj.ReadOptions(use_threads=False, block_size=max(1 << 16, buf.size + 1))
    else:
        ro = pj.ReadOptions(use_threads=True, block_size=1 << 20)
    po = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    try:
        return pj.read_json(pa.BufferReader(buf), read_options=ro, parse_options=po), ""
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        return None, str(exc)


def _unknown_mask(col: pa.ChunkedArray | pa.Array, expected: pa.DataType) -> np.ndarray | None:
    """Rows where an inferred (unknown) nested field is non-null; None if the type matches."""
    if col.type == expected:
        return None
    if not (pa.types.is_struct(col.type) and pa.types.is_struct(expected)):
        return np.ones(len(col), dtype=bool)  # cannot happen with an explicit schema; be safe
    mask = np.zeros(len(col), dtype=bool)
    known = {f.name: f.type for f in expected}
    for i, f in enumerate(col.type):
        child = pc.struct_field(col, [i])
        if f.name not in known:
            # Arrow cannot tell "key: null" from "no key": every row where the parent object is
            # present may carry it (a null-valued unknown key is kept in `extra` like any other).
            mask |= pc.is_valid(col).to_numpy(zero_copy_only=False)
        else:
            sub = _unknown_mask(child, known[f.name])
            if sub is not None:
                mask |= sub
    return mask


def _cast_down(col: pa.Array, expected: pa.DataType) -> pa.Array:
    """Drop inferred fields from a struct column (recursively), keeping the declared ones."""
    if col.type == expected:
        return col
    children = [_cast_down(pc.struct_field(col, [col.type.get_field_index(f.name)]), f.type) for f in expected]
    return pa.StructArray.from_arrays(children, fields=list(expected), mask=pc.is_null(col))


def _conform_table(t: pa.Table, schema: pa.Schema) -> tuple[pa.Table, np.ndarray | None]:
    """Table in exactly ``schema`` plus the mask of rows that had unknown keys (None: no row had)."""
    if t.schema == schema:
        return t, None
    t = t.combine_chunks()
    mask = np.zeros(t.num_rows, dtype=bool)
    for name in t.column_names:
        col = t.column(name).chunk(0) if t.column(name).num_chunks == 1 else t.column(name).combine_chunks()
        if name not in schema.names:
            mask[:] = True  # some row had this key, perhaps with null: let every row's `extra` be read
        else:
            sub = _unknown_mask(col, schema.field(name).type)
            if sub is not None:
                mask |= sub
    cols = []
    for f in schema:
        col = t.column(f.name)
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
        cols.append(_cast_down(col, f.type))
    return pa.Table.from_arrays(cols, schema=schema), (mask if mask.any() else None)


def _segment_buffer(lines: pa.LargeStringArray, offsets: np.ndarray, start: int, stop: int) -> pa.Buffer:
    return lines.buffers()[2].slice(int(offsets[start]), int(offsets[stop] - offsets[start]))


def parse_kind(kind: str, lines: pa.LargeStringArray, line_idx: np.ndarray) -> KindParse:
    """Parse ``lines`` (all sniffed as ``kind``; ``line_idx`` are their line numbers)."""
    out = KindParse()
    if not len(lines):
        return out
    schema = KIND_PARSE_SCHEMAS[kind]
    # `take` produced a fresh array: offsets start at 0 relative to its own data buffer
    width = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    offsets = np.frombuffer(lines.buffers()[1], dtype=width)[lines.offset: lines.offset + len(lines) + 1].astype(np.int64)
    stack = [(s, min(s + CHUNK_LINES, len(lines))) for s in range(0, len(lines), CHUNK_LINES)][::-1]
    while stack:
        start, stop = stack.pop()
        m = stop - start
        if m == 0:
            continue
        buf = _segment_buffer(lines, offsets, start, stop)
        one_block = m <= HINT_LINES and buf.size < _MAX_BLOCK
        t, error = _read(buf, schema, one_block)
        if t is not None and t.num_rows == m:
            accept_table(out, kind, t, line_idx[start:stop])
            continue
        hint = _ROW.search(error) if one_block else None
        row = int(hint.group(1)) if hint else -1
        if m <= PY_RUN:
            out.slow_lines.extend(line_idx[start:stop].tolist())
        elif 0 <= row < PY_RUN:  # bad line near the start: json.loads the first PY_RUN lines
            out.slow_lines.extend(line_idx[start:start + PY_RUN].tolist())
            stack.append((start + PY_RUN, stop))
        elif PY_RUN <= row < m:  # good prefix, one bad line, then the rest
            out.slow_lines.append(int(line_idx[start + row]))
            stack.extend([(start + row + 1, stop), (start, start + row)])
        else:  # no usable hint (conversion error, several values on a line, multi-block read)
            parts = FANOUT if one_block else -(-m // HINT_LINES)
            bounds = np.linspace(start, stop, min(parts, m) + 1).astype(int)
            stack.extend(zip(bounds[-2::-1].tolist(), bounds[:0:-1].tolist(), strict=True))
    return out


def accept_table(out: KindParse, kind: str, t: pa.Table, rows: np.ndarray) -> None:
    """Add a parsed table (rows = their line numbers) to ``out``: extra inferred columns are
    dropped and their rows noted; rows whose ``kind`` is not the sniffed one go to the slow path."""
    t, unknown = _conform_table(t, KIND_PARSE_SCHEMAS[kind])
    wrong_kind = pc.invert(pc.fill_null(pc.equal(t.column("kind"), kind), False))
    if pc.any(wrong_kind).as_py():  # the sniffed kind was a nested key or a duplicate
        bad = wrong_kind.to_numpy(zero_copy_only=False)
        out.slow_lines.extend(rows[bad].tolist())
        t, rows = t.filter(pc.invert(wrong_kind)), rows[~bad]
        unknown = unknown[~bad] if unknown is not None else None
    out.tables.append(t)
    out.lines.append(rows)
    if unknown is not None:
        out.with_unknown_keys.append(rows[unknown])
