"""Ingestion: landing-zone bytes → typed daily partitions, raw lines per day, quarantine.

One pass over a batch of complete lines:

1. ``schemas.parse_lines`` types every line (vectorized; bad lines come back as rejects);
2. rows are split by UTC day and merged into each day's stored partition (dedup by key; a key
   seen again with other content is a ``duplicate_conflict`` and goes to quarantine);
3. the raw lines of each day are merged into ``raw_events`` (so ``mia rebuild`` can recreate it);
4. only then are the landing-zone offsets committed.

Every merge is idempotent, so a crash anywhere (SIGKILL included) followed by a re-run lands every
event exactly once. Runs are serialized by a lock file: one ingestion at a time per data root.
"""

from __future__ import annotations

import mmap
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.collection import landing
from mia_pipeline.collection.merge import concat, key_columns, merge_rows, split_by_day
from mia_pipeline.collection.quarantine import (
    QUARANTINE_SCHEMA,
    quarantined_elsewhere,
    reject_day,
    write_rejects,
)
from mia_pipeline.collection.raw import raw_in_line_order
from mia_pipeline.layout import RAW_EVENTS, Layout
from mia_pipeline.schemas import DATASET_KEYS, KIND_TO_DATASET, parse_lines
from mia_pipeline.storage import PartitionStore, StorageError
from mia_pipeline.storage.atomic import locked

STATUS_KIND = "system_status"
PROVENANCE = ("_file", "_offset", "_received_at")
TABLE_KIND = {**{ds: kind for kind, ds in KIND_TO_DATASET.items() if ds}, STATUS_KIND: STATUS_KIND}
DEFAULT_BATCH_BYTES = 128 << 20


@dataclass
class IngestReport:
    files: int = 0
    bytes: int = 0
    lines: int = 0
    landed: Counter = field(default_factory=Counter)       # dataset -> new rows
    duplicates: Counter = field(default_factory=Counter)   # dataset -> exact re-deliveries dropped
    quarantined: Counter = field(default_factory=Counter)  # reason -> new quarantined lines
    days: dict[str, set] = field(default_factory=lambda: defaultdict(set))  # dataset -> days touched
    status_events: list[dict] = field(default_factory=list)
    lines_per_file: Counter = field(default_factory=Counter)
    live_views: dict = field(default_factory=dict)  # items per live view, once they are rewritten
    damaged: dict[str, str] = field(default_factory=dict)   # day -> why it was not written (left for recovery)
    repaired: dict[str, list] = field(default_factory=dict)  # day -> datasets rebuilt from raw lines first
    held_files: set = field(default_factory=set)  # landing files whose offsets wait for a damaged day
    seconds: float = 0.0

    def absorb(self, part: IngestReport) -> None:
        """Add the landing counts of ``part`` (one day's landing) to this report."""
        self.landed.update(part.landed)
        self.duplicates.update(part.duplicates)
        for name, days in part.days.items():
            self.days[name] |= days
        self.status_events.extend(part.status_events)
        self.damaged.update(part.damaged)
        self.repaired.update(part.repaired)
        self.held_files |= part.held_files

    @property
    def events(self) -> int:
        return sum(self.landed.values()) + sum(self.duplicates.values())

    def as_dict(self) -> dict:
        return {
            "files": self.files, "bytes": self.bytes, "lines": self.lines,
            "landed": dict(self.landed), "duplicates": dict(self.duplicates),
            "quarantined": dict(self.quarantined), "days": {k: sorted(v) for k, v in self.days.items()},
            **({"damaged": dict(self.damaged), "held_files": sorted(self.held_files)} if self.damaged else {}),
            **({"repaired": dict(self.repaired)} if self.repaired else {}),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Chunk:
    """``length`` bytes of complete lines of ``file`` from its byte ``base``, in a batch buffer."""

    file: str
    base: int
    length: int


def _now_ms() -> int:
    return int(time.time() * 1000)


class Ingestor:
    """Typed merge of line chunks into one data root. Library code: no Dagster, no global state."""

    def __init__(self, layout: Layout, store: PartitionStore, known_symbols: frozenset[str] | None = None,
                 refused_kinds: Mapping[str, str] | None = None):
        self.layout = layout
        self.store = store
        self.known_symbols = known_symbols
        # kind -> why: events of a source the settings turned off (Settings.refused_kinds) go to quarantine
        self.refused_kinds = dict(refused_kinds or {})

    # ---------------------------------------------------------------- parse
    def _parse(self, data: bytes | mmap.mmap, chunks: list[Chunk], now_ms: int, received_ms: int,
               report: IngestReport):
        """(typed rows per table name, raw rows in line order, rejects) for the chunks.

        All chunks are parsed as one buffer (one parse call however many small files there are);
        each line is mapped back to its file and byte offset.
        """
        typed: dict[str, list[pa.Table]] = {}
        starts = np.cumsum([0] + [c.length for c in chunks])
        bases = np.array([c.base for c in chunks], dtype=np.int64)
        res = parse_lines(data, now_ms=now_ms, known_symbols=self.known_symbols)
        report.lines += res.n_lines
        report.bytes += len(data)
        offsets = np.asarray(res.line_offsets, dtype=np.int64)
        line_start = offsets[:-1]
        chunk_of = np.searchsorted(starts, line_start, side="right") - 1
        for chunk, n in zip(chunks, np.bincount(chunk_of, minlength=len(chunks)).tolist(), strict=True):
            report.lines_per_file[chunk.file] += n
        file_offset = line_start - starts[chunk_of] + bases[chunk_of]
        names = pa.array([c.file for c in chunks], pa.string())
        received = pa.scalar(received_ms, pa.timestamp("ms", tz="UTC"))
        metas, off = [], []
        for name, table in res.tables.items():
            if table.num_rows == 0:
                continue
            n = table.num_rows
            line_idx = table.column("_line").to_numpy()
            if TABLE_KIND[name] in self.refused_kinds:  # kept verbatim in quarantine, not landed
                off += [{"file": chunks[chunk_of[i]].file, "offset": int(file_offset[i]), "reason": "source_disabled",
                         "detail": self.refused_kinds[TABLE_KIND[name]],
                         "line": bytes(data[offsets[i]:offsets[i + 1]]).rstrip(b"\n"), "received_at": received_ms}
                        for i in line_idx.tolist()]
                continue
            table = table.drop_columns(["_line"])
            table = table.append_column("_file", names.take(pa.array(chunk_of[line_idx])))
            table = table.append_column("_offset", pa.array(file_offset[line_idx]))
            table = table.append_column("_received_at", pa.repeat(received, n))
            typed[name] = table
            kind = pa.repeat(pa.scalar(TABLE_KIND[name], pa.string()), n)
            metas.append(pa.table({"_line": line_idx, "kind": kind, "event_id": table.column("event_id"),
                                   "ts": table.column("ts")}))
        raw = raw_in_line_order(data, names, chunk_of, file_offset, offsets, metas, received) if metas else None
        rejects = [{
            "file": chunks[chunk_of[r.line]].file, "offset": int(file_offset[r.line]), "reason": r.reason,
            "detail": r.detail, "line": bytes(r.raw), "received_at": received_ms,
        } for r in res.rejects]
        return typed, raw, rejects + off

    # ---------------------------------------------------------------- land
    def land(self, data: bytes | mmap.mmap, chunks: list[Chunk], *, now_ms: int | None = None,
             report: IngestReport | None = None) -> IngestReport:
        """Merge the events of ``data`` (the chunks, back to back) into the partitions. Idempotent.
        Caller holds the ingest lock."""
        report = report or IngestReport()
        now_ms = _now_ms() if now_ms is None else now_ms
        typed, raw, rejects = self._parse(data, chunks, now_ms, now_ms, report)
        per_day: dict[str, dict[str, pa.Table]] = defaultdict(dict)
        for name, table in typed.items():
            for day, rows in split_by_day(table):
                per_day[day][name] = rows
        raw_by_day = dict(split_by_day(raw)) if raw is not None else {}
        days = sorted(per_day)

        def land_day(day: str) -> tuple[IngestReport, list[dict]]:
            part = IngestReport()
            try:
                return part, self._land_day(day, per_day[day], raw_by_day[day], part)
            except DamagedDay as exc:
                # Nothing of this day is written, and the offsets of every file with lines for it
                # wait: the lines are landed once the day is restored. Other days go on.
                part.damaged[day] = str(exc)
                part.held_files |= set(raw_by_day[day].column("file").to_pylist())
                return part, []

        # Days are independent commits (own folder, own lock): two at a time, as Parquet encoding,
        # hashing and fsync release the GIL. Offsets are committed by the caller after all of them.
        if len(days) > 1:
            with ThreadPoolExecutor(max_workers=2) as pool:
                outcomes = list(pool.map(land_day, days))
        else:
            outcomes = [land_day(day) for day in days]
        for part, conflicts in outcomes:
            report.absorb(part)
            rejects.extend(conflicts)
        default_day = datetime.fromtimestamp(now_ms / 1000, UTC).date().isoformat()
        self._quarantine(rejects, default_day, report)
        return report

    def _verified(self, day: str, names, report: IngestReport) -> dict:
        """The day's manifest entries, once every file about to be merged matches its manifest.

        A damaged dataset file is rebuilt from the day's raw lines first (repair); damaged raw lines,
        a malformed manifest or data files without a manifest raise :class:`DamagedDay`: nothing that
        does not match its manifest is ever merged and re-committed as valid.
        """
        try:
            if self.store.orphan_files(day):
                raise DamagedDay(f"{day}: data files without a manifest (run `mia check-integrity`)")
            stored = self.store.manifest(day)["datasets"]
            if RAW_EVENTS in stored and (problem := self.store.verify_dataset(day, RAW_EVENTS)):
                raise DamagedDay(f"{problem}; the day is left for recovery (restore it from a backup)")
            damaged = [n for n in names if n in stored and self.store.verify_dataset(day, n)]
        except StorageError as exc:
            raise DamagedDay(str(exc)) from None
        if damaged:
            from mia_pipeline.collection.rebuild import RebuildError, rebuild_day

            try:
                rebuild_day(self.store, day, self.known_symbols, damaged)
            except RebuildError as exc:
                raise DamagedDay(f"{day}: {', '.join(damaged)} do not match the manifest and cannot be "
                                 f"rebuilt ({exc})") from None
            report.repaired[day] = damaged
            stored = self.store.manifest(day)["datasets"]
        return stored

    def _land_day(self, day: str, by_name: dict[str, pa.Table], raw: pa.Table, report: IngestReport) -> list[dict]:
        """Merge one day's new rows of every dataset (and their raw lines) in one storage commit: streamed
        (the stored rows read piece by piece: a day of ticks is never held whole), or in memory for a
        day that cannot stream (archived, stored out of time order, an older schema)."""
        from mia_pipeline.collection import typed_day

        stored = self._verified(day, [n for n in by_name if n != STATUS_KIND], report)
        if STATUS_KIND in by_name:
            report.status_events.extend(by_name[STATUS_KIND].drop_columns(list(PROVENANCE)).to_pylist())
            report.days[STATUS_KIND].add(day)
        tables = {n: t for n, t in by_name.items() if n != STATUS_KIND}
        if not any(self.store.archived(day, n) for n in (*tables, RAW_EVENTS)):
            part = IngestReport()
            try:
                received = pc.min(raw.column("received_at")) if raw.num_rows else None
                since = received.cast(pa.int64()).as_py() if received is not None and received.is_valid else _now_ms()
                conflicts = typed_day.land_lines_day(self, day, tables, raw, part, stored, since)
            except typed_day.Fallback:
                pass
            else:
                report.absorb(part)
                return conflicts
        return self._land_day_in_memory(day, tables, raw, report, stored)

    def _land_day_in_memory(self, day: str, by_name: dict[str, pa.Table], raw: pa.Table, report: IngestReport,
                            stored: dict) -> list[dict]:
        """:meth:`_land_day` with whole tables (read, concatenate, deduplicate, sort, write)."""
        writes: dict[str, pa.Table] = {}
        conflicts: list[dict] = []
        # An archived day's rows are in its month file: new rows are deduplicated against them too, and only
        # the day folder's own rows (late ones) are rewritten with what is new.
        for name, rows in by_name.items():
            archived, existing = self.store.read_split(day, name)
            table, found = self._merge_dataset(name, existing, rows, raw, report, archived)
            conflicts.extend(found)
            if table is not None:
                writes[name] = table
                report.days[name].add(day)
        archived_raw, existing_raw = self.store.read_split(day, RAW_EVENTS)
        merged_raw = self._merge_raw(existing_raw, raw, archived_raw)
        if merged_raw is not None:
            writes[RAW_EVENTS] = merged_raw
            report.days[RAW_EVENTS].add(day)
        self.store.write_many(day, writes)
        return conflicts

    def _merge_dataset(self, dataset: str, existing: pa.Table | None, rows: pa.Table, raw: pa.Table,
                       report: IngestReport, archived: pa.Table | None = None):
        """(table to write or None if unchanged, conflict rejects). Rows whose key is already in ``archived``
        (the day's rows in the archive) count as duplicates or conflicts and are not written again."""
        provenance = rows.select(list(PROVENANCE))
        new = rows.drop_columns(list(PROVENANCE))
        # Keep provenance aligned through the merge: conflicts must carry their original line.
        new_with_pos = new.append_column("_pos", pa.array(np.arange(new.num_rows)))
        keys = DATASET_KEYS[dataset]
        found = []
        if archived is not None and archived.num_rows:
            against = merge_rows(_like_stored(archived, new).append_column(
                "_pos", pa.array(np.full(archived.num_rows, -1, dtype=np.int64))), new_with_pos, keys)
            report.duplicates[dataset] += against.duplicates
            found.append(against.conflicts)
            pos = against.table.column("_pos").to_numpy()
            new_with_pos = new_with_pos.take(pa.array(np.sort(pos[pos >= 0])))
        merged = merge_rows(existing, new_with_pos, keys)
        report.duplicates[dataset] += merged.duplicates
        if found:
            merged.conflicts = concat([*found, merged.conflicts])
        table = None
        if merged.added:
            table = merged.table.drop_columns(["_pos"]) if "_pos" in merged.table.column_names else merged.table
            report.landed[dataset] += merged.added
        out = []
        if merged.conflicts.num_rows:
            pos = merged.conflicts.column("_pos").to_numpy()
            prov = provenance.take(pa.array(pos)).to_pylist()
            keys = key_columns(merged.conflicts, DATASET_KEYS[dataset]).to_pylist()
            raw_keys = raw.select(["file", "offset"]).to_pandas()
            for p, k in zip(prov, keys, strict=True):  # conflicts are rare: a loop is fine
                at = int(np.flatnonzero((raw_keys["file"] == p["_file"]).to_numpy()
                                        & (raw_keys["offset"] == p["_offset"]).to_numpy())[0])
                out.append({
                    "file": p["_file"], "offset": p["_offset"], "reason": "duplicate_conflict",
                    "detail": f"{dataset} key {k} is already stored with different content (first version kept)",
                    "line": raw.column("line")[at].as_py().rstrip(b"\n"), "received_at": p["_received_at"],
                })
        return table, out

    def _quarantine(self, rejects: list[dict], default_day: str, report: IngestReport) -> None:
        by_day: dict[str, list[dict]] = defaultdict(list)
        for r in rejects:  # rejects are the rare path: a Python loop is fine here
            by_day[reject_day(r["line"], default_day)].append(r)
        if by_day.get(default_day):  # filed under the day received: a re-read on another day files them again
            seen = quarantined_elsewhere(self.layout, default_day)
            by_day[default_day] = [r for r in by_day[default_day] if (r["file"], r["offset"], r["reason"]) not in seen]
        for day, rows in sorted(by_day.items()):
            added = write_rejects(self.layout, day, pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA))
            report.quarantined.update(added.column("reason").to_pylist())
            if added.num_rows:
                report.days["quarantine"].add(day)

    @staticmethod
    def _merge_raw(existing: pa.Table | None, rows: pa.Table, archived: pa.Table | None = None) -> pa.Table | None:
        """Raw lines merged on (file, offset), in arrival order (lines the archive holds are not new); None
        when nothing is new."""
        if archived is not None and archived.num_rows:
            rows = rows_not_in(rows, archived)
            if rows.num_rows == 0:
                return None
        if existing is None:
            return rows
        combined = concat([existing, rows])
        key = combined.select(["file", "offset"]).to_pandas()
        keep = ~key.duplicated(keep="first").to_numpy()
        if keep.sum() == existing.num_rows:
            return None  # nothing new: a re-run
        merged = combined.filter(pa.array(keep))
        order = pc.sort_indices(merged, [("received_at", "ascending"), ("file", "ascending"), ("offset", "ascending")])
        return merged.take(order)


def _like_stored(stored: pa.Table, new: pa.Table) -> pa.Table:
    """Archived rows in the columns and types of ``new`` (an older schema's file gains the new columns empty)."""
    out = []
    for f in new.schema:
        col = stored.column(f.name) if f.name in stored.column_names else pa.nulls(stored.num_rows, f.type)
        out.append(col.cast(f.type) if col.type != f.type else col)
    return pa.Table.from_arrays(out, schema=new.schema)


def rows_not_in(rows: pa.Table, present: pa.Table) -> pa.Table:
    """The raw lines of ``rows`` whose key (file, offset) is not in ``present``, in their order."""
    keys = rows.select(["file", "offset"]).append_column("_i", pa.array(np.arange(rows.num_rows)))
    absent = keys.join(present.select(["file", "offset"]), keys=["file", "offset"], join_type="left anti")
    return rows.take(pa.array(np.sort(absent.column("_i").to_numpy())))


class DamagedDay(RuntimeError):
    """A day whose stored files do not match their manifest (and cannot be repaired from raw lines)."""


def ingest_landing_zone(
    layout: Layout,
    store: PartitionStore,
    *,
    known_symbols: frozenset[str] | None = None,
    until: dict[str, int] | None = None,
    now_ms: int | None = None,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    refused_kinds: Mapping[str, str] | None = None,
) -> IngestReport:
    """Ingest every complete, uncommitted line of the landing zone (up to ``until`` per file).

    Offsets are committed after each batch's outputs are durable. Events of a kind in
    ``refused_kinds`` (kind -> why; :meth:`Settings.refused_kinds`) are quarantined as ``source_disabled``.
    """
    t0 = time.perf_counter()
    report = IngestReport()
    layout.streaming_dir.mkdir(parents=True, exist_ok=True)
    ingestor = Ingestor(layout, store, known_symbols, refused_kinds)
    with locked(layout.ingest_lock_file):
        state = landing.load_state(layout, strict=True)
        todo = landing.pending(layout, state, until)
        report.files = len(todo)
        batch: list[landing.Pending] = []
        size = 0
        for piece in landing.pieces(todo, batch_bytes):
            if piece.name in report.held_files:
                continue  # an earlier batch of this file waits for a damaged day: keep its order
            batch.append(piece)
            size += piece.size
            if size >= batch_bytes:
                state = _flush(layout, ingestor, state, batch, now_ms, report)
                batch, size = [], 0
        if batch:
            state = _flush(layout, ingestor, state, batch, now_ms, report)
    report.seconds = time.perf_counter() - t0
    return report


def _flush(layout, ingestor: Ingestor, state: dict, batch: list[landing.Pending], now_ms, report: IngestReport) -> dict:
    before = Counter(report.lines_per_file)
    oversize = [p for p in batch if p.oversize]
    if oversize:  # lines longer than a batch: quarantined from a prefix, never held in memory whole
        received = _now_ms() if now_ms is None else now_ms
        rejects = [{"file": p.name, "offset": p.start, "reason": "oversize_line",
                    "detail": f"a line of {p.size:,} bytes, longer than a whole batch; its first "
                              f"{landing.OVERSIZE_PREFIX:,} bytes are kept here",
                    "line": landing.read_prefix(p), "received_at": received} for p in oversize]
        ingestor._quarantine(rejects, datetime.fromtimestamp(received / 1000, UTC).date().isoformat(), report)
        report.lines_per_file.update({p.name: 1 for p in oversize})
        report.lines += len(oversize)
    normal = [p for p in batch if not p.oversize]
    data = landing.read_pieces(normal)
    ingestor.land(data, [Chunk(p.name, p.start, p.buffer_size) for p in normal], now_ms=now_ms, report=report)
    done = [p for p in batch if p.name not in report.held_files]
    return landing.commit(layout, state, done, report.lines_per_file - before)
