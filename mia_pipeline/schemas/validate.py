"""Vectorized value rules and the conversion of parsed rows to the stored (typed) schema.

Input: one kind's rows in its parse schema (timestamps still strings), their line numbers and the
unknown keys captured per line. Output: the typed table (stored schema + ``_line``) of the rows that
pass every rule, and ``(line, reason, detail)`` for the others. Rules run in a fixed order and the
first failing one names the reason: the rows of the rule table (:mod:`mia_pipeline.quality.rules`) that
have a ``reason`` (a key of ``contract.REASONS``), in :func:`~mia_pipeline.quality.rules.ingest_rules` order.
"""

from __future__ import annotations

import decimal
import functools
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.quality import rules as rule_table  # (a module: rules imports schemas.contract)
from mia_pipeline.schemas import timestamps
from mia_pipeline.schemas.contract import (
    KIND_PARSE_SCHEMAS,
    PAYLOADS,
    SYMBOL_FIELD,
    TABLE_SCHEMAS,
)
from mia_pipeline.schemas.hashing import record_hash


def _field_paths(t: pa.DataType, wanted, prefix: str = "") -> list[str]:
    """Dotted paths of the fields of a payload type whose type satisfies ``wanted`` (structs walked)."""
    out = []
    for f in t:
        path = f"{prefix}{f.name}"
        if wanted(f.type):
            out.append(path)
        elif pa.types.is_struct(f.type):
            out.extend(_field_paths(f.type, wanted, path + "."))
    return out


def ts_paths(t: pa.DataType) -> list[str]:
    """Dotted paths of the timestamp fields inside a payload type."""
    return _field_paths(t, pa.types.is_timestamp)


def float_paths(t: pa.DataType) -> list[str]:
    """Dotted paths of float64 fields and list<float64> fields."""
    return _field_paths(t, lambda x: pa.types.is_floating(x) or (pa.types.is_list(x) and pa.types.is_floating(x.value_type)))


def decimal_paths(t: pa.DataType) -> list[str]:
    """Dotted paths of decimal fields."""
    return _field_paths(t, pa.types.is_decimal)


@functools.lru_cache(maxsize=64)
def _paths(payload: pa.StructType) -> tuple[list[str], list[str], list[str]]:
    """(timestamp, float, decimal) paths of a payload (derived on use: the contract can grow)."""
    return ts_paths(payload), float_paths(payload), decimal_paths(payload)


def column(table: pa.Table, name: str) -> pa.Array:
    """One column as a single array (also for a table with no chunks)."""
    col = table.column(name)
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def leaf(table: pa.Table, path: str) -> pa.Array:
    """The array at a dotted path; a null parent makes the child null."""
    head, *rest = path.split(".")
    arr = column(table, head)
    for name in rest:
        arr = pc.struct_field(arr, name)
    return arr


def _np(mask) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


class _Verdicts:
    """First failing rule per row."""

    def __init__(self, n: int):
        self.reason: list[str | None] = [None] * n
        self.detail: dict[int, str] = {}
        self.bad = np.zeros(n, dtype=bool)

    def flag(self, mask: np.ndarray | pa.Array, code: str, detail) -> None:
        """Rows where ``mask`` is true (an Arrow mask: null counts as false) fail with ``code``
        unless an earlier rule failed them. Clean columns, the usual case, stay in Arrow."""
        if isinstance(mask, pa.Array | pa.ChunkedArray):
            if not pc.any(mask).as_py():
                return
            mask = _np(mask)
        elif not mask.any():
            return
        new = mask & ~self.bad
        for i in np.flatnonzero(new).tolist():
            self.reason[i] = code
            self.detail[i] = detail(i) if callable(detail) else detail
        self.bad |= new


def _set_path(d: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[last] = value


def _required(t: pa.Table, v: _Verdicts, r) -> None:
    arr = leaf(t, r.columns[0])
    missing = pc.is_null(arr)
    if pa.types.is_string(arr.type):
        missing = pc.or_kleene(missing, pc.equal(pc.binary_length(arr), 0))
    v.flag(missing, r.reason, r.columns[0])


def _timestamps(t: pa.Table, v: _Verdicts, paths: list[str], ts_ms: dict[str, np.ndarray]) -> None:
    for path in paths:
        arr = leaf(t, path)
        ms, ok, errors, noncanonical = timestamps.parse_column(arr)
        for code in ("bad_timestamp", "timestamp_no_zone"):
            rows = np.zeros(len(arr), dtype=bool)
            rows[[i for i, c in errors.items() if c == code]] = True
            v.flag(rows, code, lambda i, a=arr, p=path: f"{p}: {a[i].as_py()!r}"[:200])
        v.flag(ok & ((ms < timestamps.MIN_MS) | (ms >= timestamps.MAX_MS)), "out_of_range",
               lambda i, a=arr, p=path: f"{p}: {a[i].as_py()!r} is outside 1970-2100"[:200])
        ts_ms[path] = ms
        ts_ms[path + "#ok"] = ok
        ts_ms[path + "#respell"] = noncanonical & ok


def _decimals(t: pa.Table, v: _Verdicts, paths: list[str], code: str) -> None:
    for path in paths:  # Arrow's reader lets an integer part wider than the precision through
        arr = leaf(t, path)
        limit = decimal.Decimal(10) ** (arr.type.precision - arr.type.scale)
        wide = [x is not None and abs(x) >= limit for x in arr.to_pylist()] if arr.null_count < len(arr) else []
        if any(wide):
            v.flag(np.asarray(wide), code, lambda i, a=arr, p=path: f"{p}: {a[i].as_py()} does not fit {a.type}")


def _finite(t: pa.Table, v: _Verdicts, paths: list[str], code: str) -> None:
    for path in paths:
        arr = leaf(t, path)
        if pa.types.is_list(arr.type):
            flat = pc.list_flatten(arr)
            bad_items = pc.invert(pc.is_finite(flat))
            rows = np.zeros(len(arr), dtype=bool)
            if pc.any(bad_items).as_py():
                rows[pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)[_np(bad_items)]] = True
        else:
            rows = pc.invert(pc.is_finite(arr))
        v.flag(rows, code, path)


_COMPARE = {"gt0": lambda a: pc.less_equal(a, 0), "ge0": lambda a: pc.less(a, 0),
            "unit": lambda a: pc.or_(pc.less(a, 0), pc.greater(a, 1))}


def _value(t: pa.Table, v: _Verdicts, r) -> None:
    """One value row of the rule table (see ``quality.rules.TESTS``)."""
    if r.test in _COMPARE:
        arr = leaf(t, r.columns[0])
        v.flag(_COMPARE[r.test](arr), r.reason, lambda i, a=arr, p=r.columns[0]: f"{p} = {a[i].as_py()!r}")
    elif r.test == "in_set":
        arr, allowed = leaf(t, r.columns[0]), r.values
        bad = pc.and_(pc.is_valid(arr), pc.invert(pc.is_in(arr, value_set=pa.array(allowed))))
        v.flag(bad, r.reason, lambda i, a=arr, p=r.columns[0]: f"{p} = {a[i].as_py()!r}; allowed: {', '.join(allowed)}"[:300])
    elif r.test == "any_not_null":
        none = np.ones(t.num_rows, dtype=bool)
        for path in r.columns:
            none &= ~pc.is_valid(leaf(t, path)).to_numpy(zero_copy_only=False)
        v.flag(none, r.reason, " or ".join(r.columns))
    elif r.test == "a_ge_b":
        a, b = (leaf(t, p) for p in r.columns)
        v.flag(pc.less(a, b), r.reason, lambda i: f"ask {a[i].as_py()} < bid {b[i].as_py()}")
    elif r.test == "ohlc":
        o, h, lo, c = (leaf(t, p) for p in r.columns)
        bad = pc.or_(pc.or_(pc.greater(lo, h), pc.or_(pc.greater(o, h), pc.less(o, lo))),
                     pc.or_(pc.greater(c, h), pc.less(c, lo)))
        v.flag(bad, r.reason, lambda i: f"o/h/l/c = {o[i]}/{h[i]}/{lo[i]}/{c[i]}")
    elif r.test == "vector_len":
        arr, n = leaf(t, r.columns[0]), r.values[0]
        wrong = pc.not_equal(pc.list_value_length(arr), n)
        if pc.any(pc.is_null(pc.list_flatten(arr))).as_py():
            nulls = _np(pc.is_null(pc.list_flatten(arr)))
            rows = np.zeros(len(arr), dtype=bool)
            rows[pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)[nulls]] = True
            wrong = pc.or_(wrong, pa.array(rows))
        v.flag(wrong, r.reason, lambda i, a=arr, p=r.columns[0]: f"{p} has {len(a[i].as_py())} values, expected {n} numbers")
    else:
        raise ValueError(f"rule {r.rule}: no ingestion form for test {r.test!r}")


def _check(kind: str, t: pa.Table, v: _Verdicts, *, now_ms: int, max_future_ms: int,
           known_symbols: frozenset[str] | None) -> dict[str, np.ndarray]:
    """Apply the kind's rows of the rule table in order; return the epoch-ms arrays of the timestamp
    paths (valid where ok)."""
    ts_paths_, float_paths_, decimal_paths_ = _paths(PAYLOADS[kind])
    ts_ms: dict[str, np.ndarray] = {}
    for r in rule_table.ingest_rules(kind):
        if r.test == "not_null":
            _required(t, v, r)
        elif r.test == "between":
            arr, (lo, hi) = leaf(t, r.columns[0]), r.values
            outside = pc.or_(pc.less(arr, lo), pc.greater(arr, hi))
            if pa.types.is_floating(arr.type):  # NaN/inf are the `finite` rule's (non_finite_number)
                outside = pc.and_(outside, pc.is_finite(arr))
            v.flag(outside, r.reason,
                   lambda i, a=arr, p=r.columns[0]: f"{p} {a[i].as_py()}")
        elif r.test == "timestamps":
            _timestamps(t, v, ["timestamp"] + ts_paths_, ts_ms)
        elif r.test == "not_future":
            limit = now_ms + max_future_ms
            v.flag(ts_ms["timestamp"] > limit, r.reason,
                   lambda i: f"timestamp {timestamps.format_ms(ts_ms['timestamp'][i])} is after now + {max_future_ms} ms")
        elif r.test == "decimal_fits":
            _decimals(t, v, decimal_paths_, r.reason)
        elif r.test == "finite":
            _finite(t, v, float_paths_, r.reason)
        elif r.test == "known_symbol":
            if known_symbols is not None and kind in SYMBOL_FIELD:
                arr = leaf(t, SYMBOL_FIELD[kind])
                bad = pc.invert(pc.is_in(arr, value_set=pa.array(sorted(known_symbols), pa.string())))
                v.flag(bad, r.reason, lambda i, a=arr: f"symbol {a[i].as_py()!r}")
        else:
            _value(t, v, r)
    return ts_ms


def _typed(arr: pa.Array, parse_type: pa.DataType, stored_type: pa.DataType, path: str,
           ts_ms: dict[str, np.ndarray]) -> pa.Array:
    if parse_type == stored_type:
        return arr
    if pa.types.is_timestamp(stored_type):
        return pa.array(ts_ms[path], type=pa.int64(), mask=~ts_ms[path + "#ok"]).cast(stored_type)
    children = [_typed(pc.struct_field(arr, [i]), pf.type, sf.type, f"{path}.{sf.name}", ts_ms)
                for i, (pf, sf) in enumerate(zip(parse_type, stored_type, strict=True))]
    return pa.StructArray.from_arrays(children, fields=list(stored_type), mask=pc.is_null(arr))


def finalize(kind: str, table_name: str, t: pa.Table, lines: np.ndarray, residuals: dict[int, dict], *,
             now_ms: int, max_future_ms: int, known_symbols: frozenset[str] | None
             ) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Validate one kind's parsed rows; build the stored table (+ ``_line``) of the good ones."""
    t = t.combine_chunks()
    v = _Verdicts(t.num_rows)
    ts_ms = _check(kind, t, v, now_ms=now_ms, max_future_ms=max_future_ms, known_symbols=known_symbols)
    rejects = [(int(lines[i]), v.reason[i], v.detail[i]) for i in np.flatnonzero(v.bad).tolist()]
    good = ~v.bad
    schema = TABLE_SCHEMAS[table_name]
    parse_schema = KIND_PARSE_SCHEMAS[kind]
    extra = _extra_column(t, lines, residuals, ts_ms, good)
    cols = {
        "ts": pa.array(ts_ms["timestamp"], type=pa.int64()).cast(schema.field("ts").type),
        "event_id": column(t, "event_id"),
        "source": column(t, "source"),
        "schema_version": pc.cast(pc.if_else(v.bad, 1, column(t, "schema_version")), pa.int32()),
    }
    for f in PAYLOADS[kind]:
        cols[f.name] = _typed(column(t, f.name), parse_schema.field(f.name).type, f.type, f.name, ts_ms)
    cols["extra"] = extra
    out = pa.Table.from_arrays([cols[n] for n in schema.names if n != "content_hash"],
                               names=[n for n in schema.names if n != "content_hash"])
    keep = pa.array(good)
    out = out.filter(keep) if v.bad.any() else out
    out = out.append_column("content_hash", record_hash(out))
    out = out.append_column("_line", pa.array(lines[good], type=pa.int64()))
    return out.cast(schema.append(pa.field("_line", pa.int64()))), rejects


def _extra_column(t: pa.Table, lines: np.ndarray, residuals: dict[int, dict], ts_ms: dict[str, np.ndarray],
                  good: np.ndarray) -> pa.Array:
    """JSON of each row's unknown keys and respelled timestamps (null when there is nothing)."""
    rows: dict[int, dict] = {}
    if residuals:
        pos = {int(line): i for i, line in enumerate(lines.tolist())}
        for line, res in residuals.items():
            if line in pos:
                rows[pos[line]] = res
    for key, mask in ts_ms.items():
        if key.endswith("#respell"):
            path = key[: -len("#respell")]
            rows_to_fix = np.flatnonzero(mask & good)
            if len(rows_to_fix):
                texts = leaf(t, path).take(pa.array(rows_to_fix)).to_pylist()
                for i, text in zip(rows_to_fix.tolist(), texts, strict=True):
                    _set_path(rows.setdefault(i, {}), path, text)
    if not rows:
        return pa.nulls(t.num_rows, pa.string())
    values = np.full(t.num_rows, None, dtype=object)
    for i, res in rows.items():
        values[i] = json.dumps(res, separators=(",", ":"), ensure_ascii=False)
    return pa.array(values, type=pa.string())
