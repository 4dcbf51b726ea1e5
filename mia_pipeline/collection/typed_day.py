"""Land one UTC day of typed rows (ticks, depth, bars from binary sources) in one commit, streamed.

A day of ES trades is ~2 M rows (more on busy days), and one import may bring ES and NQ for the same
day. Nothing here holds a whole day: each source (a :class:`Feed`) yields its rows in time-ordered
pieces; every piece is validated (``schemas.validate.finalize``), its raw lines are built column-wise
and written out, and the dataset's stored rows are merged with the new ones window by window (a
k-way merge on ``ts``), straight into the day's new Parquet file. Memory stays at a few pieces,
whatever the day's size.

Same guarantees as :meth:`~mia_pipeline.collection.ingest.Ingestor._land_day`:

- the day's files are verified against their manifest first (repair from raw lines, or
  :class:`~mia_pipeline.collection.ingest.DamagedDay`);
- dedup by key, first version wins (stored rows before new ones; new ones in feed order, which is
  the order `mia rebuild` replays them: received_at, file, offset); a key seen again with other
  content is a ``duplicate_conflict`` for quarantine;
- raw lines merged on ``(file, offset)``: a re-run adds nothing, the day's datasets are left as they
  were (a dataset without a new row is not rewritten);
- one commit for every dataset of the day (:meth:`PartitionStore.day_write`): a crash at any point
  leaves the previous version.

Rows of a day that is (partly) archived, a stored file that is not in ``ts`` order or not in the
current schema, and a feed whose pieces go back in time are landed by the in-memory path instead
(same result, whole tables).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mia_pipeline.collection.ingest import PROVENANCE, DamagedDay, Ingestor, IngestReport
from mia_pipeline.collection.merge import concat, key_columns, merge_rows
from mia_pipeline.collection.raw import RAW_SCHEMA
from mia_pipeline.collection.typed_lines import event_lines
from mia_pipeline.layout import RAW_EVENTS
from mia_pipeline.schemas import DATASET_KEYS
from mia_pipeline.schemas.contract import KIND_TO_DATASET, TABLE_SCHEMAS, TABLE_TO_KIND
from mia_pipeline.schemas.validate import finalize
from mia_pipeline.storage.atomic import temp_path_for

PIECE_ROWS = 65536  # rows per piece read back from a stored file (and the size sources aim for)
MAX_FUTURE_MS = 300_000  # as parse_lines: an event more than 5 min ahead of now is refused


@dataclass
class Piece:
    """Rows of one kind in its parse schema (``typed_landing.parse_table``), their raw-line keys in the
    feed's origin, and extra fields per row index (kept in ``extra``)."""

    rows: pa.Table
    offsets: np.ndarray
    residuals: dict[int, dict] | None = None


@dataclass
class Feed:
    """One origin's new rows of one kind for ONE UTC day: ``pieces()`` gives them in time order (each
    piece sorted by timestamp, no piece earlier than the one before). Called again, it starts over."""

    kind: str
    origin: str
    pieces: Callable[[], Iterable[Piece]]

    @property
    def dataset(self) -> str:
        return KIND_TO_DATASET[self.kind]


class Pipe:
    """Work done in order on one background thread, at most ``depth`` jobs waiting (memory stays bounded):
    Arrow kernels and Parquet encoding release the GIL, so building and writing raw lines and encoding
    the merged rows overlap the next piece's validation on a second core."""

    def __init__(self, depth: int = 2):
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: deque[Future] = deque()
        self.depth = depth

    def submit(self, fn, *args) -> None:
        self.pending.append(self.pool.submit(fn, *args))
        while len(self.pending) > self.depth:
            self.pending.popleft().result()

    def drain(self) -> None:
        """Wait for every job; the first failure is raised."""
        while self.pending:
            self.pending.popleft().result()

    def close(self) -> None:
        for fut in self.pending:
            fut.cancel()
        self.pool.shutdown(wait=True)


class Fallback(Exception):
    """The streamed merge cannot keep its promise for this day: land it in memory instead."""


def land_day(ingestor: Ingestor, day: str, feeds: list[Feed], report: IngestReport, *, now_ms: int,
             rejects: list[dict]) -> None:
    """Land ``feeds`` (all of ``day``) in one commit; quarantine records are appended to ``rejects``.
    The caller holds the ingest lock. Raises :class:`DamagedDay` (nothing written) for a damaged day."""
    store = ingestor.store
    datasets = list(dict.fromkeys(f.dataset for f in feeds))
    stored = ingestor._verified(day, datasets, report)
    bad: list[dict] = []
    try:
        if any(store.archived(day, ds) for ds in (*datasets, RAW_EVENTS)):
            raise Fallback
        part = IngestReport()
        _stream_day(ingestor, day, feeds, stored, part, now_ms, bad)
    except Fallback:
        bad = []
        part = IngestReport()
        _in_memory(ingestor, day, feeds, stored, part, now_ms, bad)
    report.absorb(part)
    rejects.extend(bad)


# ------------------------------------------------------------------------------------------ pieces

def _validated(feed: Feed, now_ms: int, known_symbols, bad: list[dict], received: pa.Scalar, *,
               ordered: bool = True) -> Iterator[pa.Table]:
    """The feed's valid rows, typed, with provenance columns; invalid rows go to ``bad``. ``ordered``:
    raise :class:`Fallback` at the first row earlier than the one before (the windowed merge needs
    time order)."""
    last = None
    for piece in feed.pieces():
        rows = piece.rows
        if rows.num_rows == 0:
            continue
        typed, rejected = finalize(feed.kind, feed.dataset, rows, np.arange(rows.num_rows, dtype=np.int64),
                                   piece.residuals or {}, now_ms=now_ms, max_future_ms=MAX_FUTURE_MS,
                                   known_symbols=known_symbols)
        offsets = np.asarray(piece.offsets, dtype=np.int64)
        bad += [reject_record(rows, i, reason, detail, feed.origin, int(offsets[i]), now_ms)
                for i, reason, detail in rejected]
        kept = typed.column("_line").to_numpy()
        typed = typed.drop_columns(["_line"])
        if typed.num_rows == 0:
            continue
        if ordered:
            ts = _ms(typed)
            if (np.diff(ts) < 0).any() or (last is not None and ts[0] < last):
                raise Fallback  # not in time order
            last = int(ts[-1])
        n = typed.num_rows
        yield (typed.append_column("_file", pa.repeat(pa.scalar(feed.origin), n))
               .append_column("_offset", pa.array(offsets[kept]))
               .append_column("_received_at", pa.repeat(received, n)))


def _ms(table: pa.Table) -> np.ndarray:
    return pc.cast(table.column("ts"), pa.int64()).to_numpy()


def _stored_pieces(path) -> Iterator[pa.Table]:
    for batch in pq.ParquetFile(path).iter_batches(batch_size=PIECE_ROWS):
        yield pa.Table.from_batches([batch])


def windows(sources: list[Iterable[pa.Table]]) -> Iterator[list[pa.Table]]:
    """k-way merge by ``ts`` of sources each in ``ts`` order: per window, the rows of each source (in
    source order, empty tables included) with ``ts`` below a cut that no row still unread can precede.
    Rows with equal ``ts`` always fall in the same window (so do rows with equal keys)."""
    its = [iter(s) for s in sources]
    bufs: list[pa.Table | None] = [None] * len(its)
    live = [True] * len(its)

    def pull(i: int) -> None:
        for t in its[i]:
            if t.num_rows:
                bufs[i] = t if bufs[i] is None or bufs[i].num_rows == 0 else pa.concat_tables([bufs[i], t])
                return
        live[i] = False

    def last(i: int) -> int:
        return int(pc.cast(bufs[i].column("ts")[-1], pa.int64()).as_py())

    while True:
        for i in range(len(its)):
            if live[i] and (bufs[i] is None or bufs[i].num_rows == 0):
                pull(i)
        held = [i for i in range(len(its)) if bufs[i] is not None and bufs[i].num_rows]
        if not held:
            return
        lasts = [last(i) for i in held if live[i]]
        cut = min(lasts) if lasts else None
        parts: list[pa.Table] = []
        for i in range(len(its)):
            b = bufs[i]
            if b is None or b.num_rows == 0:
                parts.append(None)
                continue
            k = b.num_rows if cut is None else int(np.searchsorted(_ms(b), cut, side="left"))
            parts.append(b.slice(0, k))
            bufs[i] = b.slice(k)
        if all(p is None or p.num_rows == 0 for p in parts):
            for i in held:  # every row left is at the cut in a source that may hold more of it
                if live[i] and last(i) == cut:
                    pull(i)
            continue
        yield parts


# ------------------------------------------------------------------------------------------ streamed

class _RawSink:
    """New raw lines of the day: straight into the commit when the day has none yet; else into a spill
    file, appended after the stored lines at the end (their received_at is the newest)."""

    def __init__(self, commit, store, day: str, stored_path, stored_keys: dict[str, np.ndarray]):
        self.commit, self.store, self.day = commit, store, day
        self.stored_path, self.stored_keys = stored_path, stored_keys
        self.rows = 0
        self.spill = None
        self.spill_path = None
        self.pipe = Pipe()

    def add_lines(self, raw: pa.Table) -> None:
        """Raw rows as they are (RAW_SCHEMA, in arrival order): those whose (file, offset) is new."""
        files = pc.dictionary_encode(raw.column("file").combine_chunks())
        index = files.indices.to_numpy(zero_copy_only=False)
        offsets = raw.column("offset").to_numpy()
        novel = np.zeros(raw.num_rows, dtype=bool)
        for k, name in enumerate(files.dictionary.to_pylist()):
            at = index == k
            novel[at] = self.novel(name, offsets[at])
        rows = raw.filter(pa.array(novel)) if not novel.all() else raw
        if rows.num_rows:
            self.rows += rows.num_rows
            self.write(rows)

    def add(self, dataset: str, rows: pa.Table) -> None:
        """Build and write the raw lines of ``rows`` (typed, with provenance) in the background."""
        self.rows += rows.num_rows
        self.pipe.submit(lambda: self.write(raw_rows(dataset, rows)))

    def novel(self, origin: str, offsets: np.ndarray) -> np.ndarray:
        have = self.stored_keys.get(origin)
        if have is None or not len(have):
            return np.ones(len(offsets), dtype=bool)
        at = np.searchsorted(have, offsets)
        return have[np.minimum(at, len(have) - 1)] != offsets

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self.stored_path is None:
            self.commit.write(RAW_EVENTS, table)
            return
        if self.spill is None:
            self.spill_path = temp_path_for(self.store.stage_path(self.day, RAW_EVENTS))
            self.spill = pq.ParquetWriter(self.spill_path, RAW_SCHEMA, compression="zstd")
        self.spill.write_table(table)

    def finish(self) -> bool:
        """Whether the day's raw lines changed."""
        self.pipe.drain()
        if self.spill is not None:
            self.spill.close()
            for piece in _stored_pieces(self.stored_path):
                self.commit.write(RAW_EVENTS, piece)
            for piece in _stored_pieces(self.spill_path):
                self.commit.write(RAW_EVENTS, piece)
        return self.rows > 0

    def close(self) -> None:
        self.pipe.close()
        if self.spill is not None:
            self.spill.close()  # idempotent
        if self.spill_path is not None:
            self.spill_path.unlink(missing_ok=True)


def _stored_raw(store, day: str, stored: dict, now_ms: int) -> tuple[object, dict[str, np.ndarray]]:
    """(the day's committed raw file or None, {origin: sorted offsets stored})."""
    if RAW_EVENTS not in stored:
        return None, {}
    path = store.committed_file(day, RAW_EVENTS)
    if not pq.read_schema(path).equals(RAW_SCHEMA, check_metadata=False):
        raise Fallback
    pf = pq.ParquetFile(path, read_dictionary=["file"])
    keys = pf.read(columns=["file", "offset", "received_at"])
    newest = pc.max(keys.column("received_at"))
    if newest.is_valid and newest.cast(pa.int64()).as_py() > now_ms:
        raise Fallback  # stored lines received after "now": the order needs a sort
    files = keys.column("file").combine_chunks()
    offsets = keys.column("offset").to_numpy()
    index = files.indices.to_numpy(zero_copy_only=False)
    out = {}
    for k, name in enumerate(files.dictionary.to_pylist()):
        out[name] = np.sort(offsets[index == k])
    return path, out


def _stream_day(ingestor: Ingestor, day: str, feeds: list[Feed], stored: dict, report: IngestReport,
                now_ms: int, bad: list[dict]) -> None:
    received = pa.scalar(now_ms, pa.timestamp("ms", tz="UTC"))

    def sources(dataset: str, sink: _RawSink) -> list[Iterable[pa.Table]]:
        return [_with_raw(dataset, _validated(feed, now_ms, ingestor.known_symbols, bad, received), sink, feed.origin)
                for feed in sorted((f for f in feeds if f.dataset == dataset), key=lambda f: f.origin)]

    _commit_streamed(ingestor.store, day, list(dict.fromkeys(f.dataset for f in feeds)), sources, None, stored,
                     report, now_ms, bad)


def land_lines_day(ingestor: Ingestor, day: str, by_name: dict[str, pa.Table], raw: pa.Table, report: IngestReport,
                   stored: dict, now_ms: int) -> list[dict]:
    """The landing zone's rows of one day (typed by ``parse_lines``, with provenance; ``raw`` their
    original lines) merged into the day streamed: the stored rows are read piece by piece, never
    whole. Returns the conflict records. Raises :class:`Fallback` when it cannot stream (see module)."""
    bad: list[dict] = []
    names = [n for n, t in by_name.items() if t.num_rows]
    ordered = {n: _time_ordered(by_name[n]) for n in names}

    def sources(dataset: str, sink: _RawSink) -> list[Iterable[pa.Table]]:
        return [[ordered[dataset]]]

    _commit_streamed(ingestor.store, day, names, sources, raw, stored, report, now_ms, bad)
    return bad


def _time_ordered(table: pa.Table) -> pa.Table:
    """``table`` in ``ts`` order (a stable sort: rows of one instant keep their arrival order)."""
    ts = _ms(table)
    if len(ts) < 2 or (np.diff(ts) >= 0).all():
        return table
    return table.take(pc.sort_indices(table, [("ts", "ascending")]))


def _commit_streamed(store, day: str, datasets: list[str], new_sources, raw: pa.Table | None, stored: dict,
                     report: IngestReport, now_ms: int, bad: list[dict]) -> None:
    """One commit of ``day``: each dataset's stored rows merged window by window with its new sources
    (``new_sources(dataset, sink)``: time-ordered iterables of typed rows with provenance, which may
    feed the raw sink as they go), then ``raw`` (given raw lines, if any) and the sink's new lines."""
    raw_path, raw_keys = _stored_raw(store, day, stored, now_ms)
    with store.day_write(day) as commit:
        sink = _RawSink(commit, store, day, raw_path, raw_keys)
        pipe = Pipe()
        try:
            for dataset in datasets:
                if "ts" not in DATASET_KEYS[dataset]:
                    raise Fallback  # keyed by id (trades, signals): equal keys may sit in different windows
                schema = TABLE_SCHEMAS[dataset]
                if dataset in stored:
                    path = store.committed_file(day, dataset)
                    if not pq.read_schema(path).equals(schema, check_metadata=False):
                        raise Fallback
                    sources: list[Iterable[pa.Table]] = [_sorted_stored(path)]
                else:
                    sources = [()]
                sources += new_sources(dataset, sink)
                added = 0
                for parts in windows(sources):
                    old, fresh = parts[0], [p for p in parts[1:] if p is not None and p.num_rows]
                    if not fresh:
                        pipe.submit(commit.write, dataset, old)
                        continue
                    table, n_added, conflicts = _merge_window(dataset, old, concat(fresh), report)
                    added += n_added
                    bad.extend(conflicts)
                    pipe.submit(commit.write, dataset, table.cast(schema))
                pipe.drain()
                if added:
                    report.days[dataset].add(day)
                else:
                    commit.drop(dataset)
            if raw is not None:
                sink.add_lines(raw)
            if sink.finish():
                report.days[RAW_EVENTS].add(day)
        finally:
            pipe.close()
            sink.close()


def _sorted_stored(path) -> Iterator[pa.Table]:
    last = None
    for piece in _stored_pieces(path):
        ts = _ms(piece)
        if len(ts) and ((np.diff(ts) < 0).any() or (last is not None and ts[0] < last)):
            raise Fallback  # e.g. a file `mia optimize` sorted by symbol first
        if len(ts):
            last = int(ts[-1])
        yield piece


def _with_raw(dataset: str, pieces: Iterator[pa.Table], sink: _RawSink, origin: str) -> Iterator[pa.Table]:
    """Pass the pieces on, writing the raw line of each row not stored yet."""
    for piece in pieces:
        offsets = piece.column("_offset").to_numpy()
        novel = sink.novel(origin, offsets)
        rows = piece if novel.all() else piece.filter(pa.array(novel))
        if rows.num_rows:
            sink.add(dataset, rows)
        yield piece


def raw_rows(dataset: str, rows: pa.Table) -> pa.Table:
    """``raw_events`` rows of typed rows carrying provenance columns."""
    typed = rows.drop_columns(list(PROVENANCE))
    return pa.table({
        "file": rows.column("_file"), "offset": rows.column("_offset"),
        "kind": pa.repeat(pa.scalar(TABLE_TO_KIND[dataset]), rows.num_rows),
        "event_id": rows.column("event_id"), "ts": rows.column("ts"), "received_at": rows.column("_received_at"),
        "line": event_lines(dataset, typed),
    }, schema=RAW_SCHEMA)


def _merge_window(dataset: str, old: pa.Table | None, new: pa.Table, report: IngestReport
                  ) -> tuple[pa.Table, int, list[dict]]:
    """(merged rows of the window, rows added, conflict records)."""
    keys = DATASET_KEYS[dataset]
    old = old if old is not None and old.num_rows else None
    merged = merge_rows(old, new.append_column("_pos", pa.array(np.arange(new.num_rows))), keys)
    if merged.duplicates:
        report.duplicates[dataset] += merged.duplicates
    if merged.added:
        report.landed[dataset] += merged.added
    drop = [c for c in (*PROVENANCE, "_pos") if c in merged.table.column_names]
    conflicts = []
    if merged.conflicts.num_rows:
        rows = merged.conflicts.drop_columns(["_pos"])
        lines = event_lines(dataset, rows.drop_columns(list(PROVENANCE))).to_pylist()
        found = key_columns(rows, keys).to_pylist()
        for prov, k, line in zip(rows.select(list(PROVENANCE)).to_pylist(), found, lines, strict=True):
            conflicts.append({
                "file": prov["_file"], "offset": prov["_offset"], "reason": "duplicate_conflict",
                "detail": f"{dataset} key {k} is already stored with different content (first version kept)",
                "line": line.rstrip(b"\n"), "received_at": prov["_received_at"]})
    return merged.table.drop_columns(drop), merged.added, conflicts


# ------------------------------------------------------------------------------------------ in memory

def _in_memory(ingestor: Ingestor, day: str, feeds: list[Feed], stored: dict, report: IngestReport,
               now_ms: int, bad: list[dict]) -> None:
    """Whole tables through ``Ingestor._land_day`` (archived days, unsorted feeds or files)."""
    received = pa.scalar(now_ms, pa.timestamp("ms", tz="UTC"))
    by_name: dict[str, list[pa.Table]] = {}
    for feed in sorted(feeds, key=lambda f: f.origin):
        pieces = _validated(feed, now_ms, ingestor.known_symbols, bad, received, ordered=False)
        by_name.setdefault(feed.dataset, []).extend(pieces)
    tables = {name: concat(pieces) for name, pieces in by_name.items() if pieces}
    if not tables:
        return
    raw = concat([raw_rows(name, t) for name, t in tables.items()])
    bad.extend(ingestor._land_day(day, tables, raw, report))


def reject_record(rows: pa.Table, i: int, reason: str, detail: str, origin: str, offset: int, now_ms: int) -> dict:
    """A quarantine record for a row refused by validation; its line is the row as JSON (its
    ``timestamp`` files it under the event's day)."""
    row = rows.slice(i, 1).to_pylist()[0]
    if isinstance(row.get("timestamp"), datetime):
        row["timestamp"] = row["timestamp"].isoformat(timespec="milliseconds").replace("+00:00", "Z")
    line = json.dumps({k: v for k, v in row.items() if v is not None}, default=str, allow_nan=True)
    return {"file": origin, "offset": offset, "reason": reason, "detail": detail, "line": line.encode(),
            "received_at": now_ms}


__all__ = ["Feed", "Piece", "DamagedDay", "land_day", "windows", "raw_rows", "reject_record"]
