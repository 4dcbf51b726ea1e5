"""Byte-level work on a buffer of JSON lines, vectorized: offsets, screening, kind sniffing.

Nothing here parses JSON. A line is ``data[off[i]:off[i+1]]`` including its ``\\n``; its *content*
excludes that ``\\n``. A final line without ``\\n`` is still a line (callers are expected to hold
back a partial write, see DESIGN.md).
"""

from __future__ import annotations

import mmap
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.schemas.contract import EVENT_KINDS

_WS = b" \t\r"
#: what the functions here read: bytes, bytearray or an mmap (anything with the buffer protocol,
#: slicing to bytes and ``find``)
Buffer = bytes | bytearray | mmap.mmap


def line_offsets(data: Buffer, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Start offset of every line of ``data[lo:hi]``, plus ``hi``: ``len == n_lines + 1``.

    Offsets are positions in ``data`` (a block of a larger buffer keeps its absolute offsets)."""
    hi = len(data) if hi is None else hi
    if not 0 <= lo <= hi <= len(data):
        raise ValueError(f"line_offsets: window [{lo}, {hi}) is outside a buffer of {len(data)} bytes")
    arr = np.frombuffer(data, dtype=np.uint8)
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
                lines: pa.LargeStringArray) -> np.ndarray:
    """Guess each line's kind (index into EVENT_KINDS, -1 = unknown) without parsing JSON.

    Writers put ``"kind"`` first (``{"kind":"market_tick",...`` or ``{"kind": "market_tick", ...``),
    so three 8-byte words per line settle almost every line; the rest go through one regex over
    their text. A guess is only a routing hint: the parsed ``kind`` is checked afterwards and a
    line whose guess was wrong takes the slow path.
    """
    out = np.full(len(idx), -1, dtype=np.int16)
    if not len(idx):
        return out
    arr = np.frombuffer(data, dtype=np.uint8)
    starts = off[idx]
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


#: deepest nesting of objects/arrays a line may have (events use 4 levels; see :func:`screen`)
MAX_DEPTH = 64
_OPENERS = np.zeros(256, dtype=np.uint8)
_OPENERS[[ord("{"), ord("[")]] = 1
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_SCREEN_BYTES = 1 << 24  # bytes screened at once (bounds the temporaries)


def _exact_depth(text: bytes) -> int:
    """Deepest nesting of ``{``/``[`` outside strings (an unterminated string ends the line)."""
    rest = np.frombuffer(_STRING.sub(b"", text), dtype=np.uint8)
    step = (rest == ord("{")).astype(np.int64) + (rest == ord("[")) - (rest == ord("}")) - (rest == ord("]"))
    return int(np.cumsum(step).max()) if len(step) else 0


def screen(data: Buffer, off: np.ndarray, clen: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of the lines ``idx`` Arrow's JSON reader must not see: ``(not_one_object, too_deep)``.

    ``not_one_object``: the first non-blank byte is not ``{`` or the last is not ``}`` (e.g.
    ``null{"kind":"trade"}``): such lines go to ``json.loads``, which names the reason.
    ``too_deep``: nesting deeper than :data:`MAX_DEPTH` (counted outside strings).

    Upstream note: pyarrow 26.0.1's JSON reader (``pyarrow.json.read_json`` with an explicit schema)
    crashes the process with SIGSEGV on a line like ``null{"kind":"trade"}`` and on an object nested
    10,000 deep; deep nesting (~1,000) also breaks its chunking. Neither can be caught, so such lines
    are screened out here, before any block is given to the reader. Remove once fixed upstream.

    Vectorized: one pass of byte lookups over the buffer; only lines with more than ``MAX_DEPTH``
    opening brackets anywhere (strings included) are measured exactly, in Python.
    """
    n = len(idx)
    bad_shape = np.zeros(n, dtype=bool)
    too_deep = np.zeros(n, dtype=bool)
    if not n:
        return bad_shape, too_deep
    arr = np.frombuffer(data, dtype=np.uint8)
    starts, lens = off[idx], clen[idx]
    first = arr[starts]
    last = arr[starts + np.maximum(lens - 1, 0)]
    odd = np.flatnonzero((first != ord("{")) | (last != ord("}")))
    for j in odd.tolist():  # rare: leading/trailing blanks (or not an object at all)
        text = bytes(data[starts[j]: starts[j] + lens[j]]).strip(_WS)
        bad_shape[j] = not (text.startswith(b"{") and text.endswith(b"}"))
    line_starts = off[:-1]
    openers = np.empty(len(line_starts), dtype=np.int64)
    i = 0
    while i < len(line_starts):  # groups of whole lines of about _SCREEN_BYTES
        a = int(line_starts[i])
        j = max(int(np.searchsorted(line_starts, a + _SCREEN_BYTES, side="right")), i + 1)
        b = int(off[j])
        counts = np.add.reduceat(_OPENERS[arr[a:b]], line_starts[i:j] - a, dtype=np.int64)
        openers[i:j] = counts
        i = j
    many = np.flatnonzero(openers[idx] > MAX_DEPTH)
    for j in many.tolist():
        too_deep[j] = _exact_depth(bytes(data[starts[j]: starts[j] + lens[j]])) > MAX_DEPTH
    return bad_shape, too_deep
