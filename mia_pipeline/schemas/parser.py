"""``parse_lines``: a buffer of complete JSON lines → typed Arrow tables per dataset + rejects.

Pipeline (only the last-resort step looks at single lines in Python):

1. offsets of every line (numpy on the bytes); blank lines dropped; oversize lines and lines that
   are not UTF-8 rejected up front (an ASCII buffer is checked in one call);
2. each line's kind sniffed from its first bytes (``{"kind":"market_tick"``…, regex for the rest);
   lines that are not one object (first/last byte) go to ``json.loads``, lines nested deeper than
   ``lines.MAX_DEPTH`` are rejected: Arrow's reader never sees them (:func:`lines.screen`, it can
   crash the process on them);
3. per kind, Arrow's JSON reader over all its lines with the kind's explicit schema; a failing run
   is bisected down to single lines, which ``json.loads`` examines to name the reason
   (:mod:`~mia_pipeline.schemas.fastpath`, :mod:`~mia_pipeline.schemas.slowpath`);
4. per kind, vectorized rules and conversion to the stored schema
   (:mod:`~mia_pipeline.schemas.validate`).

No exception escapes for bad input: every non-blank line ends up as exactly one row or one reject.
"""

from __future__ import annotations

import mmap
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.schemas import lines as L
from mia_pipeline.schemas.contract import EVENT_KINDS, KIND_PARSE_SCHEMAS, KIND_TO_DATASET, TABLE_SCHEMAS
from mia_pipeline.schemas.fastpath import parse_kind
from mia_pipeline.schemas.slowpath import LineError, conform_event, loads_line, residual_of
from mia_pipeline.schemas.validate import finalize

PARALLEL_BYTES = 8 << 20  # smaller buffers are parsed as one block


@dataclass(frozen=True)
class Reject:
    """One line that did not become a row.

    ``line``: 0-based line index in the buffer; ``reason``: a key of ``REASONS``; ``detail``: what
    exactly (field path, value); ``raw``: the line's bytes without its trailing newline.
    """

    line: int
    reason: str
    detail: str
    raw: bytes


@dataclass
class ParseResult:
    """Output of :func:`parse_lines`.

    ``tables``: one table per dataset name and ``"system_status"`` (always all seven keys, possibly
    empty), each in ``TABLE_SCHEMAS[name]`` plus an int64 ``_line`` column, rows in line order.
    ``rejects``: sorted by line. ``line_offsets``: start offset of each line plus ``len(data)``.
    """

    tables: dict[str, pa.Table]
    rejects: list[Reject]
    line_offsets: np.ndarray
    n_lines: int
    n_blank: int = 0
    stats: dict[str, int] = field(default_factory=dict)


OVERSIZE_PREFIX = 1 << 16  # bytes of an oversize line kept in quarantine (its length is in the detail)


def table_name(kind: str) -> str:
    return KIND_TO_DATASET[kind] or kind


def empty_table(name: str) -> pa.Table:
    return TABLE_SCHEMAS[name].append(pa.field("_line", pa.int64())).empty_table()


def _without_lines(fast, lines: list[int]):
    """Drop rows of the given line numbers from a KindParse (they go to the slow path instead)."""
    drop = np.asarray(lines, dtype=np.int64)
    keep = [~np.isin(ln, drop) for ln in fast.lines]
    fast.tables = [t.filter(pa.array(k)) for t, k in zip(fast.tables, keep, strict=True)]
    fast.lines = [ln[k] for ln, k in zip(fast.lines, keep, strict=True)]
    return fast


def parse_lines(data: bytes, *, now_ms: int, known_symbols: frozenset[str] | None = None,
                max_line_bytes: int = 1_000_000, max_future_ms: int = 300_000, threads: int = 2) -> ParseResult:
    """Parse and validate a buffer of complete JSON lines (each ending with ``\\n``).

    ``now_ms``: the ingestion clock (epoch ms, UTC); events later than ``now_ms + max_future_ms``
    (default 5 minutes of writer clock skew) are rejected as ``timestamp_in_future``.
    ``known_symbols``: when given, events whose symbol is not in it are ``unknown_symbol``.
    ``max_line_bytes``: longer lines (newline excluded) are ``oversize_line``.
    ``threads``: a buffer of at least ``PARALLEL_BYTES`` is cut at newlines into this many blocks
    parsed concurrently (Arrow and numpy release the GIL); the result is the same as one block's.
    A final line without newline is parsed like the others: hold partial writes back before calling.
    """
    if not isinstance(data, (bytes, bytearray, mmap.mmap)):
        data = bytes(data)
    opts = {"now_ms": now_ms, "known_symbols": known_symbols, "max_line_bytes": max_line_bytes,
            "max_future_ms": max_future_ms}
    cuts = _cut_points(data, threads) if len(data) >= PARALLEL_BYTES else [0, len(data)]
    if len(cuts) == 2:
        return _parse_block(data, 0, len(data), **opts)
    with ThreadPoolExecutor(max_workers=len(cuts) - 1) as pool:
        parts = [pool.submit(_parse_block, data, a, b, **opts)
                 for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        return _combine([p.result() for p in parts])


def _cut_points(data: bytes, parts: int) -> list[int]:
    """Offsets that cut ``data`` into about ``parts`` blocks of whole lines: [0, ..., len(data)]."""
    cuts = [0]
    for k in range(1, parts):
        nl = data.find(b"\n", max(cuts[-1], len(data) * k // parts))
        if nl < 0 or nl + 1 >= len(data):
            break
        cuts.append(nl + 1)
    return cuts + [len(data)]


def _combine(results: list[ParseResult]) -> ParseResult:
    """One ParseResult from the results of consecutive blocks (line numbers made global)."""
    first_line = np.cumsum([0] + [r.n_lines for r in results])
    tables = {}
    for name in results[0].tables:
        parts = []
        for r, base in zip(results, first_line, strict=False):
            t = r.tables[name]
            if t.num_rows:
                at = t.schema.get_field_index("_line")
                parts.append(t.set_column(at, "_line", pc.add(t.column("_line"), int(base))))
        tables[name] = pa.concat_tables(parts) if parts else results[0].tables[name]
    rejects = [Reject(x.line + int(base), x.reason, x.detail, x.raw)
               for r, base in zip(results, first_line, strict=False) for x in r.rejects]
    offsets = np.concatenate([r.line_offsets[:-1] for r in results] + [results[-1].line_offsets[-1:]])
    stats: dict[str, int] = defaultdict(int)
    for r in results:
        for k, v in r.stats.items():
            stats[k] += v
    return ParseResult(tables=tables, rejects=rejects, line_offsets=offsets, n_lines=int(first_line[-1]),
                       n_blank=sum(r.n_blank for r in results), stats=dict(stats))


def _parse_block(data: L.Buffer, lo: int, hi: int, *, now_ms: int, known_symbols: frozenset[str] | None, max_line_bytes: int,
                 max_future_ms: int) -> ParseResult:
    """parse_lines on ``data[lo:hi]`` (line numbers from 0 in the block, offsets absolute)."""
    off = L.line_offsets(data, lo, hi)
    n = len(off) - 1
    clen = L.content_lengths(data, off)
    blank = L.blank_mask(data, off, clen)
    rejects: list[tuple[int, str, str]] = []
    oversize = ~blank & (clen > max_line_bytes)
    rejects += [(int(i), "oversize_line", f"{clen[i]:,} bytes > max_line_bytes {max_line_bytes:,}; its first "
                                          f"{OVERSIZE_PREFIX:,} bytes are kept here")
                for i in np.flatnonzero(oversize)]
    lines = L.lines_array(data, off)
    skip = blank | oversize
    bad_utf = [i for i in L.non_utf8_lines(data, off, lines).tolist() if not skip[i]]
    rejects += [(i, "non_utf8", "invalid UTF-8 byte sequence") for i in bad_utf]
    skip[bad_utf] = True
    candidates = np.flatnonzero(~skip)
    not_one_object, too_deep = L.screen(data, off, clen, candidates)
    rejects += [(int(i), "nesting_too_deep", f"objects/arrays nested deeper than {L.MAX_DEPTH} levels")
                for i in candidates[too_deep]]
    slow_lines = candidates[not_one_object & ~too_deep].tolist()
    candidates = candidates[~(not_one_object | too_deep)]
    sniffed = L.sniff_kinds(data, off, clen, candidates, lines)

    def raw(i: int) -> bytes:
        return data[off[i]: off[i] + clen[i]]

    gather = L.gatherable(data, off, lines)
    parsed: dict[str, list[tuple[pa.Table, np.ndarray]]] = defaultdict(list)
    residuals: dict[str, dict[int, dict]] = defaultdict(dict)
    slow_lines += candidates[sniffed < 0].tolist()
    for k, kind in enumerate(EVENT_KINDS):
        idx = candidates[sniffed == k]
        if not len(idx):
            continue
        sub = lines if len(idx) == n else gather.take(pa.array(idx))
        fast = parse_kind(kind, sub, idx)
        unreadable = []  # Arrow read it but json.loads cannot: not expected, handled anyway
        for line in (x for arr in fast.with_unknown_keys for x in arr.tolist()):
            try:
                res = residual_of(raw(line), kind)
            except LineError:
                unreadable.append(line)
                continue
            if res:
                residuals[kind][line] = res
        if unreadable:
            fast = _without_lines(fast, unreadable)
            slow_lines += unreadable
        parsed[kind] += [(t, ln) for t, ln in zip(fast.tables, fast.lines, strict=True) if t.num_rows]
        slow_lines += fast.slow_lines

    slow_rows: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for line in sorted(slow_lines):
        try:
            kind, row, res = conform_event(loads_line(raw(line)))
        except LineError as err:
            rejects.append((line, err.code, err.detail))
            continue
        slow_rows[kind].append((line, row))
        if res:
            residuals[kind][line] = res
    for kind, items in slow_rows.items():
        t = pa.Table.from_pylist([r for _, r in items], schema=KIND_PARSE_SCHEMAS[kind])
        parsed[kind].append((t, np.asarray([i for i, _ in items], dtype=np.int64)))

    tables = {table_name(k): empty_table(table_name(k)) for k in EVENT_KINDS}
    for kind, parts in parsed.items():
        if not parts:
            continue
        t = pa.concat_tables([p for p, _ in parts]) if len(parts) > 1 else parts[0][0]
        line_no = np.concatenate([ln for _, ln in parts]) if len(parts) > 1 else parts[0][1]
        if len(parts) > 1 and np.any(np.diff(line_no) < 0):
            order = np.argsort(line_no, kind="stable")
            t, line_no = t.take(pa.array(order)), line_no[order]
        typed, bad = finalize(kind, table_name(kind), t, line_no, residuals.get(kind, {}), now_ms=now_ms,
                              max_future_ms=max_future_ms, known_symbols=known_symbols)
        tables[table_name(kind)] = typed
        rejects += bad
    rejects.sort(key=lambda r: r[0])
    return ParseResult(
        tables=tables,
        rejects=[Reject(line, code, detail, bytes(raw(line)[:OVERSIZE_PREFIX] if code == "oversize_line" else raw(line)))
                 for line, code, detail in rejects],
        line_offsets=off,
        n_lines=n,
        n_blank=int(blank.sum()),
        stats={"slow_lines": len(slow_lines), "lines_with_unknown_keys": sum(len(r) for r in residuals.values())},
    )
