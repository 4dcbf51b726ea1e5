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
    if pa.types.is_dictionary(t):
        arr, t = arr.dictionary_decode(), t.value_type
    if pa.types.is_decimal(t):  # (added with decimals: no stored hash had one) its exact text
        arr, t = arr.cast(pa.string()), pa.string()
    if _is_bytes(t):
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
    elif pa.types.is_temporal(t):  # date, time, duration: their integer storage
        width = pa.int32() if t.bit_width == 32 else pa.int64()
        vals = arr.view(width).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).view(_U)
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


def _is_bytes(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
            or pa.types.is_string_view(t) or pa.types.is_binary_view(t))


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _add_scalar(total: np.ndarray, arr: pa.Array, ph: np.uint64) -> None:
    """numpy kernel: ``total += mix(value bits ^ ph)`` on valid rows."""
    with np.errstate(over="ignore"):
        total += _masked(_scalar_hash(arr, ph), _valid(arr))


def _add_list(total: np.ndarray, arr: pa.Array, ph: np.uint64) -> None:
    """numpy kernel: ``total +=`` the list term (length, items with their positions) on valid rows."""
    valid = _valid(arr)
    arr = arr.cast(pa.large_list(arr.type.value_type))
    flat = pc.list_flatten(arr)
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    ends = np.cumsum(lengths)
    parent_start = np.repeat(ends - lengths, lengths)
    pos = np.arange(len(flat), dtype=np.int64) - parent_start
    if pa.types.is_struct(flat.type) or _is_list(flat.type):  # nested items: the item's own sum
        sub = np.zeros(len(flat), dtype=_U)
        if len(flat):
            _accumulate(sub, flat, "[]")
        item = mix(sub)
    else:
        item = _scalar_hash(flat) if len(flat) else np.zeros(0, _U)
    if flat.null_count:
        item = np.where(_valid(flat), item, _NULL_ITEM)
    with np.errstate(over="ignore"):
        terms = mix(item ^ mix(pos.astype(_U) + ph))
        cs = np.concatenate([np.zeros(1, _U), np.cumsum(terms, dtype=_U)])
        sums = cs[ends] - cs[ends - lengths]
        total += _masked(mix(sums ^ mix(lengths.astype(_U) ^ ph ^ _LIST)), valid)


def _accumulate(total: np.ndarray, arr: pa.Array, path: str) -> None:
    """Add this field's contributions to ``total`` (mod 2**64); null rows contribute 0."""
    n = len(arr)
    if arr.null_count == n:
        return
    ph = _path_hash(path)
    if pa.types.is_struct(arr.type):
        with np.errstate(over="ignore"):
            total += _masked(np.full(n, mix(np.array([ph ^ _STRUCT], dtype=_U))[0], dtype=_U), _valid(arr))
        for i, f in enumerate(arr.type):
            _accumulate(total, pc.struct_field(arr, [i]), f"{path}.{f.name}")
    elif _is_list(arr.type):
        _add_list(total, arr, ph)
    else:
        _add_scalar(total, arr, ph)


def record_hash(table: pa.Table, exclude: tuple[str, ...] = EXCLUDED) -> pa.Array:
    """``content_hash`` of every row: 16 lowercase hex characters (see module docstring)."""
    total = np.zeros(table.num_rows, dtype=_U)
    for name in table.column_names:
        if name in exclude:
            continue
        col = table.column(name)
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        _accumulate(total, col, name)
    return hex16(mix(total))


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex16(values: np.ndarray) -> pa.Array:
    """uint64 → fixed 16-char lowercase hex strings, vectorized."""
    be = np.asarray(values, dtype=_U).astype(">u8").view(np.uint8).reshape(-1, 8)
    chars = np.empty((len(be), 16), dtype=np.uint8)
    chars[:, 0::2] = _HEX[be >> 4]
    chars[:, 1::2] = _HEX[be & 0x0F]
    return _hex_strings(chars, len(be))


def _hex_strings(chars: np.ndarray, n: int) -> pa.Array:
    """A string array of n values of 16 characters each, from their n*16 bytes (no copy)."""
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))
