"""Byte-level work on a buffer of JSON lines, vectorized: offsets, screening, kind sniffing.

Nothing here parses JSON. A line is ``data[off[i]:off[i+1]]`` including its ``\\n``; its *content*
excludes that ``\\n``. A final line without ``\\n`` is still a line (callers are expected to hold
back a partial write, see DESIGN.md).
"""

from __future__ import annotations

import mmap

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.schemas import native
from mia_pipeline.schemas.contract import EVENT_KINDS

_WS = b" \t\r"
#: what the functions here read: bytes, bytearray or an mmap (anything with the buffer protocol,
#: slicing to bytes and ``find``)
Buffer = bytes | bytearray | mmap.mmap


def line_offsets(data: Buffer, lo: int = 0, hi: int | None = None, compiled: bool | None = None) -> np.ndarray:
    """Start offset of every line of ``data[lo:hi]``, plus ``hi``: ``len == n_lines + 1``.

    Offsets are positions in ``data`` (a block of a larger buffer keeps its absolute offsets).
    ``compiled``: use ``_native/mia_lines.c`` (default: when available) or numpy; same result."""
    hi = len(data) if hi is None else hi
    if not 0 <= lo <= hi <= len(data):
        raise ValueError(f"line_offsets: window [{lo}, {hi}) is outside a buffer of {len(data)} bytes")
    arr = np.frombuffer(data, dtype=np.uint8)
    if native.use(compiled):
        lib = native._lib()
        count = lib.ml_count_newlines(arr.ctypes.data, lo, hi) if hi > lo else 0
        ends = np.empty(count, dtype=np.int64)
        if count:
            lib.ml_line_ends(arr.ctypes.data, lo, hi, ends.ctypes.data)
    else:
        step = 1 << 22  # scan in cache-sized pieces: no buffer-sized temporary
        parts = [np.flatnonzero(arr[s: min(s + step, hi)] == 10) + (s + 1) for s in range(lo, hi, step)]
        ends = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    if hi > lo and (len(ends) == 0 or ends[-1] != hi):
        ends = np.append(ends, hi)
    off = np.empty(len(ends) + 1, dtype=np.int64)
    off[0] = lo
    off[1:] = ends
    return off


def content_lengths(data: Buffer, off: np.ndarray) -> np.ndarray:
    """Length of each line without its terminating newline."""
    lengths = np.diff(off)
    if len(lengths) and data[off[-1] - 1: off[-1]] == b"\n":
        return lengths - 1
    lengths = lengths - 1
    if len(lengths):
        lengths[-1] += 1  # last line has no newline
    return lengths


def blank_mask(data: Buffer, off: np.ndarray, clen: np.ndarray) -> np.ndarray:
    """Lines that are empty or only JSON whitespace (space, tab, CR)."""
    blank = clen == 0
    if not len(clen):
        return blank
    arr = np.frombuffer(data, dtype=np.uint8)
    starts = off[:-1]
    first = np.where(clen > 0, arr[np.minimum(starts, max(len(arr) - 1, 0))], 0)
    maybe = np.flatnonzero((clen > 0) & np.isin(first, np.frombuffer(_WS, dtype=np.uint8)))
    for i in maybe:  # rare: lines starting with whitespace
        if not data[starts[i]:starts[i] + clen[i]].strip(_WS):
            blank[i] = True
    return blank


def non_utf8_lines(data: Buffer, off: np.ndarray, lines: pa.LargeStringArray) -> np.ndarray:
    """Indices of lines that are not valid UTF-8 (fast path: ASCII block, then one C++ validation)."""
    block = np.frombuffer(data, dtype=np.uint8)[off[0]: off[-1]]
    if not len(block) or block.max() < 0x80:
        return np.empty(0, dtype=np.int64)
    try:
        lines.validate(full=True)
        return np.empty(0, dtype=np.int64)
    except pa.ArrowInvalid:
        pass
    candidates = np.unique(np.searchsorted(off, np.flatnonzero(block >= 0x80) + off[0], side="right") - 1)
    bad = []
    for i in candidates:
        try:
            data[off[i]:off[i + 1]].decode("utf-8")
        except UnicodeDecodeError:
            bad.append(i)
    return np.asarray(bad, dtype=np.int64)


def lines_array(data: Buffer, off: np.ndarray) -> pa.LargeStringArray:
    """Zero-copy Arrow view of the lines (each value includes its newline). Not UTF-8 checked."""
    return pa.LargeStringArray.from_buffers(len(off) - 1, pa.py_buffer(off), pa.py_buffer(data))


def gatherable(data: Buffer, off: np.ndarray, lines: pa.LargeStringArray) -> pa.Array:
    """The same lines as a ``string`` array (32-bit offsets) when the buffer allows it.

    Arrow's ``take`` is ~50x faster on ``string`` than on ``large_string`` (measured with pyarrow
    26: 0.03 s vs 2.2 s to gather 150k lines of 620 bytes), so per-kind gathers use this view.
    """
    if off[-1] >= 2**31 - 1:
        return lines
    return pa.StringArray.from_buffers(len(off) - 1, pa.py_buffer(off.astype(np.int32)), pa.py_buffer(data))


_HEAD = int.from_bytes(b'{"kind":', "little")
_NAME_WORDS = []  # (kind index, mask, pattern) on the 8 bytes where the kind's name starts
for _k, _kind in enumerate(EVENT_KINDS):
    _name = (_kind.encode() + b'"')[:8]
    _NAME_WORDS.append((_k, (1 << (8 * len(_name))) - 1, int.from_bytes(_name, "little")))
_MASKS = np.array([m for _, m, _ in _NAME_WORDS], dtype=np.uint64)
_PATTERNS = np.array([p for _, _, p in _NAME_WORDS], dtype=np.uint64)
_KIND_RE = r'"kind"\s*:\s*"(?P<kind>[^"\\]*)"'


def _words_at(arr: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """The little-endian uint64 made of the 8 bytes at each position (positions <= len - 8)."""
    windows = np.ndarray(shape=(len(arr) - 7,), dtype="<u8", buffer=arr, strides=(1,))
    return windows[pos]


def sniff_kinds(data: Buffer, off: np.ndarray, clen: np.ndarray, idx: np.ndarray,
                lines: pa.LargeStringArray, compiled: bool | None = None) -> np.ndarray:
    """Guess each line's kind (index into EVENT_KINDS, -1 = unknown) without parsing JSON.

    Writers put ``"kind"`` first (``{"kind":"market_tick",...`` or ``{"kind": "market_tick", ...``),
    so three 8-byte words per line settle almost every line; the rest go through one regex over
    their text. A guess is only a routing hint: the parsed ``kind`` is checked afterwards and a
    line whose guess was wrong takes the slow path. ``compiled``: the word test in
    ``_native/mia_lines.c`` (default: when available) or numpy; same result.
    """
    out = np.full(len(idx), -1, dtype=np.int16)
    if not len(idx):
        return out
    arr = np.frombuffer(data, dtype=np.uint8)
    starts = off[idx]
    if native.use(compiled):
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        lens = np.ascontiguousarray(clen[idx], dtype=np.int64)
        native._lib().ml_sniff(arr.ctypes.data, starts.ctypes.data, lens.ctypes.data, len(idx), _HEAD,
                               _MASKS.ctypes.data, _PATTERNS.ctypes.data, len(_MASKS), out.ctypes.data)
    else:
        fits = clen[idx] >= 18
        if fits.any():
            s = starts[fits]
            head = _words_at(arr, s) == _HEAD
            after = arr[s + 8]
            name_at = np.where(after == ord('"'), s + 9, s + 10)
            head &= (after == ord('"')) | ((after == ord(" ")) & (arr[s + 9] == ord('"')))
            name = _words_at(arr, name_at)
            guess = np.full(len(s), -1, dtype=np.int16)
            for k, mask, pat in _NAME_WORDS:
                guess[head & ((name & np.uint64(mask)) == np.uint64(pat))] = k
            out[fits] = guess
    rest = np.flatnonzero(out < 0)
    if len(rest):
        found = pc.extract_regex(lines.take(pa.array(idx[rest])), _KIND_RE)
        names = pc.struct_field(found, [0]).to_pylist()
        lookup = {kind: k for k, kind in enumerate(EVENT_KINDS)}
        out[rest] = [lookup.get(n, -1) if n is not None else -1 for n in names]
    return out
