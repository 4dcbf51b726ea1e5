"""``content_hash``: a stable 64-bit fingerprint of a typed record, computed column-wise in numpy.

Definition (stable across runs, machines and library versions — it uses no library hash):

    content_hash = hex16(mix(Σ over non-null leaves of mix(path_hash(path) ^ value_bits)))

``value_bits``: the 64 bits of the value (float64 / int64 / epoch-ms / 0-1 for booleans); for a
string, a word-wise splitmix chain over its UTF-8 bytes (:func:`_bytes_hash`).

where a *leaf* is a scalar field at a dotted ``path`` (struct children recurse, a non-null struct
adds a marker term, a list adds its length and each item with its position), ``mix`` is the
splitmix64 finaliser and the sum wraps modulo 2**64. Consequences the ingestion layer relies on:

- the hash covers every stored column except ``event_id`` and ``content_hash`` (so two events with
  the same id compare by content) and does not depend on key order or whitespace of the JSON line;
- a null field contributes nothing, so a column added in a later schema version (null in old rows)
  does not change the hash of old records;
- re-hashing a stored partition with :func:`record_hash` reproduces the column.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EXCLUDED = ("event_id", "content_hash", "_line")
_U = np.uint64
_M1, _M2, _GOLD = _U(0xBF58476D1CE4E5B9), _U(0x94D049BB133111EB), _U(0x9E3779B97F4A7C15)
_STRUCT, _LIST, _NULL_ITEM = _U(0x5354525543540001), _U(0x4C4953540002), _U(0x4E554C4C0003)
_MAX_CELLS = 1 << 22  # bytes gathered at once when hashing strings
_ZERO = _U(0)


def mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = np.asarray(z, dtype=_U)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> _U(30))) * _M1
        z = (z ^ (z >> _U(27))) * _M2
    return z ^ (z >> _U(31))


def _bytes_hash(arr: pa.Array) -> np.ndarray:
    """Hash of each value of a string/binary array without nulls (word-wise chain of ``mix``)."""
    arr = arr.cast(pa.large_binary())
    n = len(arr)
    out = np.empty(n, dtype=_U)
    if n == 0:
        return out
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset: arr.offset + n + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8) if arr.buffers()[2] is not None else np.zeros(1, np.uint8)
    if not len(data):
        data = np.zeros(1, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    words = (lengths + 7) // 8
    for w in np.unique(words):
        rows = np.flatnonzero(words == w)
        step = max(1, _MAX_CELLS // max(1, int(w) * 8))
        for c in range(0, len(rows), step):
            r = rows[c: c + step]
            h = mix(lengths[r].astype(_U) ^ _GOLD)
            if w:
                pos = np.arange(int(w) * 8)
                idx = starts[r, None] + pos[None, :]
                cells = np.where(pos[None, :] < lengths[r, None], data[np.minimum(idx, len(data) - 1)], 0)
                mat = np.ascontiguousarray(cells.astype(np.uint8)).view("<u8")
                for j in range(int(w)):
                    h = mix(h ^ mat[:, j].astype(_U))
            out[r] = h
    return out


def _scalar_hash(arr: pa.Array, key: np.uint64 = _ZERO) -> np.ndarray:
    """``mix(value bits ^ key)`` per row (garbage where null: callers mask)."""
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        enc = pc.dictionary_encode(arr)
        uniq = mix(_bytes_hash(enc.dictionary) ^ key)
        codes = enc.indices.fill_null(0).to_numpy(zero_copy_only=False)
        return uniq[codes] if len(uniq) else np.zeros(len(arr), dtype=_U)
    if pa.types.is_boolean(t):
        vals = arr.fill_null(False).to_numpy(zero_copy_only=False).astype(_U)
    elif pa.types.is_floating(t):
        vals = arr.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False).view(_U)
    elif pa.types.is_integer(t) or pa.types.is_timestamp(t):
        vals = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).view(_U)
    else:
        raise TypeError(f"content_hash: no rule for Arrow type {t}")
    return mix(vals ^ key)


@functools.lru_cache(maxsize=4096)
def _path_hash(path: str) -> np.uint64:
    return _bytes_hash(pa.array([path], pa.string()))[0]


def _valid(arr: pa.Array) -> np.ndarray | None:
    """Validity mask, or None when the array has no nulls."""
    return pc.is_valid(arr).to_numpy(zero_copy_only=False) if arr.null_count else None


def _masked(values: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    return values if valid is None else np.where(valid, values, _U(0))


def _accumulate(arr: pa.Array, path: str) -> np.ndarray:
    """Sum (mod 2**64) of this field's contributions per row; null rows contribute 0."""
    n = len(arr)
    if arr.null_count == n:
        return np.zeros(n, dtype=_U)
    valid = _valid(arr)
    ph = _path_hash(path)
    if pa.types.is_struct(arr.type):
        total = _masked(np.full(n, mix(np.array([ph ^ _STRUCT], dtype=_U))[0], dtype=_U), valid)
        for i, f in enumerate(arr.type):
            with np.errstate(over="ignore"):
                total = total + _accumulate(pc.struct_field(arr, [i]), f"{path}.{f.name}")
        return total
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        arr = arr.cast(pa.large_list(arr.type.value_type))
        flat = pc.list_flatten(arr)
        lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        ends = np.cumsum(lengths)
        parent_start = np.repeat(ends - lengths, lengths)
        pos = np.arange(len(flat), dtype=np.int64) - parent_start
        item = _scalar_hash(flat) if len(flat) else np.zeros(0, _U)
        if flat.null_count:
            item = np.where(_valid(flat), item, _NULL_ITEM)
        with np.errstate(over="ignore"):
            terms = mix(item ^ mix(pos.astype(_U) + ph))
            cs = np.concatenate([np.zeros(1, _U), np.cumsum(terms, dtype=_U)])
            sums = cs[ends] - cs[ends - lengths]
            row = mix(sums ^ mix(lengths.astype(_U) ^ ph ^ _LIST))
        return _masked(row, valid)
    return _masked(_scalar_hash(arr, ph), valid)


def record_hash(table: pa.Table, exclude: tuple[str, ...] = EXCLUDED) -> pa.Array:
    """``content_hash`` of every row: 16 lowercase hex characters (see module docstring)."""
    n = table.num_rows
    total = np.zeros(n, dtype=_U)
    for name in table.column_names:
        if name in exclude:
            continue
        col = table.column(name)
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        with np.errstate(over="ignore"):
            total = total + _accumulate(col, name)
    return hex16(mix(total))


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex16(values: np.ndarray) -> pa.Array:
    """uint64 → fixed 16-char lowercase hex strings, vectorized."""
    be = np.asarray(values, dtype=_U).astype(">u8").view(np.uint8).reshape(-1, 8)
    chars = np.empty((len(be), 16), dtype=np.uint8)
    chars[:, 0::2] = _HEX[be >> 4]
    chars[:, 1::2] = _HEX[be & 0x0F]
    offsets = np.arange(0, 16 * len(be) + 1, 16, dtype=np.int32)
    return pa.StringArray.from_buffers(len(be), pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))
