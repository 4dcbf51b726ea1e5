"""Land Sierra files into the daily partitions: whole files (`mia import`), one UTC day (the Dagster
asset) or what was appended since a record-count checkpoint (the live tail).

- ``.scid`` of single trades -> ``market_ticks`` (every record) and ``market_bars`` 1/5/15 min with bid/ask
  volume (order flow); a bar is landed once complete: a later record exists, or its end is more than
  :data:`BAR_GRACE_US` before ``now`` (Sierra flushes every few seconds). ``.scid`` of bars -> bars
  resampled to the frames at least as long as the file's own.
- ``.depth`` -> ``market_depth``; ``.dly`` -> ``market_bars`` 1d; study exports -> ``market_bars``.

Resuming at record ``k`` re-reads from the start of the longest bar period containing record ``k``
(so bars and same-millisecond ``seq`` numbers come out as in one read) but lands only records >= ``k``
as ticks. Every result carries per-UTC-day figures (trades, volume, delta, POC / value area, depth
updates) for the day's own metadata.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.collection.ingest import IngestReport
from mia_pipeline.collection.merge import concat
from mia_pipeline.collection.typed_day import PIECE_ROWS, Feed, Piece
from mia_pipeline.collection.typed_landing import land_feeds
from mia_pipeline.layout import Layout
from mia_pipeline.sources.sierra.depth import depth_table
from mia_pipeline.sources.sierra.exports import read_dly, read_study_export, study_columns
from mia_pipeline.sources.sierra.formats import (
    DEPTH_RECORD,
    FIRST_SUB_TRADE,
    LAST_SUB_TRADE,
    MAX_UNIX_US,
    MIN_UNIX_US,
    SC_EPOCH_OFFSET_US,
    SCID_RECORD,
    DateTimes,
    SierraFileError,
    memmap_records,
    read_header,
    search,
)
from mia_pipeline.sources.sierra.landing import (
    MINUTE_FRAMES,
    bar_rows,
    depth_rows,
    land,
    seq_within_ms,
    tick_rows,
)
from mia_pipeline.sources.sierra.orderflow import (
    US_PER_MIN,
    daily_volume_profiles,
    order_flow_bars,
    resample_scid_bars,
)
from mia_pipeline.sources.sierra.scid import records_table
from mia_pipeline.sources.sierra.ticks import scid_ticks
from mia_pipeline.storage import PartitionStore

FRAMES = (1, 5, 15)
BAR_GRACE_US = 60_000_000
DAY_US = 86_400_000_000


@dataclass
class Landed:
    """What landing one file (or one window of it) did."""

    report: IngestReport
    next_record: int = 0                                   # checkpoint to resume from
    figures: dict[str, dict] = field(default_factory=dict)  # UTC day -> that day's own figures


MAX_BAD_RECORDS = 10_000  # damaged records one file may hold before it is refused whole as damaged


def _single_trades(path: Path, first: int, stop: int) -> bool:
    """Whether the file stores single trades (Sierra's "1 Tick" storage), judged on the majority of its
    first records and of the range's: one damaged record never turns a file of trades into bars."""
    header = read_header(path, "scid")
    counts = np.concatenate([memmap_records(header, SCID_RECORD, 0, min(4096, header.records))["NumTrades"],
                             memmap_records(header, SCID_RECORD, first, min(stop, first + 65_536))["NumTrades"]])
    return not len(counts) or bool((counts <= 1).mean() >= 0.5)


def _reject(origin: str, index: int, reason: str, detail: str, record: np.void, symbol: str) -> dict:
    """A quarantine record for a damaged Sierra record: its fields as JSON (the original 40/24 bytes are
    in the file at the offset the record index gives)."""
    fields = {name: (str(v) if isinstance(v, float) and not math.isfinite(v) else v)  # NaN/inf spelled out
              for name, v in zip(record.dtype.names, record.tolist(), strict=True)}
    us = fields["DateTime"] - SC_EPOCH_OFFSET_US
    if MIN_UNIX_US <= us < MAX_UNIX_US:
        fields["timestamp"] = str(np.datetime64(us, "us")) + "Z"
    line = json.dumps({"symbol": symbol, "record": index, **fields}).encode()
    return {"file": origin, "offset": index, "reason": reason, "detail": f"record {index}: {detail}", "line": line,
            "received_at": int(time.time() * 1000)}


def _rewind(path: Path, kind: str, lo: int, period_us: int) -> int:
    """The first record of the ``period_us`` slot (or millisecond) holding record ``lo``."""
    header = read_header(path, kind)
    if lo <= 0 or lo >= header.records:
        return max(0, min(lo, header.records))
    times = DateTimes(header)
    unix = times[lo] - SC_EPOCH_OFFSET_US
    if not MIN_UNIX_US <= unix < MAX_UNIX_US:
        return lo  # a damaged record: no slot to rewind to (it is quarantined when landed)
    return times.searchsorted(unix - unix % period_us + SC_EPOCH_OFFSET_US)


def _range(path: Path, kind: str, start, end, from_record: int, to_record: int | None) -> tuple[int, int]:
    header = read_header(path, kind)
    lo, hi = search(path, header, SCID_RECORD if kind == "scid" else DEPTH_RECORD, start, end)
    hi = min(hi, header.records if to_record is None else to_record)
    return max(lo, from_record), hi


def _complete(bars: pa.Table, minutes: int, last_us: int, now_us: int) -> pa.Table:
    ends = pc.cast(bars.column("ts"), pa.int64()).to_numpy() + minutes * US_PER_MIN
    return bars.filter(pa.array((ends <= last_us) | (ends <= now_us - BAR_GRACE_US)))


def land_scid(layout: Layout, store: PartitionStore, path: Path | str, symbol: str, *, start=None, end=None,
              from_record: int = 0, to_record: int | None = None, frames=FRAMES, ticks: bool = True,
              profile: bool = True, known_symbols: frozenset[str] | None = None, now_us: int | None = None) -> Landed:
    """Land the records of ``path`` in ``[start, end)`` with index in ``[from_record, to_record)``."""
    return land_files(layout, store, [ScidSource(Path(path), symbol, start=start, end=end, from_record=from_record,
                                                 to_record=to_record, frames=frames, ticks=ticks, profile=profile,
                                                 now_us=now_us)], known_symbols=known_symbols)[0]


def land_files(layout: Layout, store: PartitionStore, sources: list, *,
               known_symbols: frozenset[str] | None = None) -> list[Landed]:
    """Land several ``.scid``/``.depth`` sources day by day: each UTC day's rows of every source go in one
    commit, streamed (a day of ES and NQ ticks is never held whole). Every source is checked whole first:
    a damaged record is quarantined with its reason and the others land (a file with more than
    :data:`MAX_BAD_RECORDS` of them raises :class:`SierraFileError` before anything is written). Returns one
    :class:`Landed` per source (the report is the whole landing's, shared)."""
    for src in sources:
        src.check()
    days = sorted({d for src in sources for d in src.days()})
    report = land_feeds(layout, store, ((day, [f for src in sources for f in src.feeds(day)]) for day in days),
                        known_symbols=known_symbols, rejects=[r for src in sources for r in src.rejects()])
    return [Landed(report, src.next_record, src.figures) for src in sources]


class _Source:
    """Records ``[lo, hi)`` of one Sierra file, cut into UTC days and, within a day, into pieces of about
    PIECE_ROWS records that never split a ``align_us`` slot (a millisecond for depth, the longest bar
    for trades: every bar and every same-millisecond ``seq`` comes out as in one read)."""

    kind = "scid"
    dtype = SCID_RECORD

    def __init__(self, path: Path, symbol: str, *, start=None, end=None, from_record: int = 0,
                 to_record: int | None = None, align_us: int = 1000):
        self.path, self.symbol = Path(path), symbol
        self.lo, self.hi = _range(self.path, self.kind, start, end, from_record, to_record)
        self.next_record = self.hi if self.hi > self.lo else max(self.hi, from_record)
        self.align_us = align_us
        self.bad: dict[int, tuple[str, str]] = {}  # record index -> (reason, detail), filled by check()
        self.first = _rewind(self.path, self.kind, self.lo, align_us) if self.hi > self.lo else self.lo
        self.figures: dict[str, dict] = {}

    def _times(self) -> DateTimes:
        return DateTimes(read_header(self.path, self.kind), self.first, self.hi, self.bad)

    def _record_problems(self, rec: np.ndarray, us: np.ndarray) -> list[tuple[np.ndarray, str, str]]:
        """(mask, reason, detail) of records this kind of file refuses, besides their time."""
        return []

    def check(self) -> None:
        """Judge every record of the range: a real time (1970..2100), none earlier than the last good one
        (Sierra writes in time order; days and pieces are found by binary search), and what the file's
        kind requires (:meth:`_record_problems`). Bad records are set aside in ``bad`` (index -> reason,
        detail) and quarantined when the day is landed; the others land. More than
        :data:`MAX_BAD_RECORDS` of them: the file is damaged, SierraFileError (nothing is landed)."""
        self.bad = {}
        if self.hi <= self.lo:
            return
        header = read_header(self.path, self.kind)
        previous = np.iinfo(np.int64).min
        for a in range(self.first, self.hi, 4 * PIECE_ROWS):
            b = min(self.hi, a + 4 * PIECE_ROWS)
            rec = memmap_records(header, self.dtype, a, b)
            us = rec["DateTime"].astype(np.int64) - SC_EPOCH_OFFSET_US
            unreal = (us < MIN_UNIX_US) | (us >= MAX_UNIX_US)
            good = np.where(unreal, np.iinfo(np.int64).min, us)
            latest = np.maximum.accumulate(np.concatenate([[previous], good]))[:-1]
            earlier = ~unreal & (us < latest)
            problems = [(unreal, "bad_timestamp", "DateTime {t} is outside 1970..2100"),
                        (earlier, "out_of_order", "DateTime {t} is earlier than the record before it (Sierra "
                                                  "writes in time order)"),
                        *self._record_problems(rec, us)]
            for mask, reason, detail in problems:
                for i in np.flatnonzero(mask)[: MAX_BAD_RECORDS + 1 - len(self.bad)]:
                    self.bad.setdefault(a + int(i), (reason, detail.format(t=int(rec["DateTime"][i]), **{
                        name: rec[name][i] for name in rec.dtype.names})))
                if len(self.bad) > MAX_BAD_RECORDS:
                    first = min(self.bad)
                    raise SierraFileError(self.path, header.header_size + first * header.record_size,
                                          f"more than {MAX_BAD_RECORDS:,} damaged records (the first: record {first}, "
                                          f"{self.bad[first][1]}): the file is damaged; nothing was imported from it")
            ok = ~(unreal | earlier)
            if ok.any():
                previous = max(previous, int(us[ok].max()))

    def _read(self, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
        """(records ``[x, y)`` without the bad ones, their indexes)."""
        rec = memmap_records(read_header(self.path, self.kind), self.dtype, x, y)
        idx = np.arange(x, y, dtype=np.int64)
        if not any(x <= i < y for i in self.bad):
            return rec, idx
        keep = np.isin(idx, np.fromiter(self.bad, dtype=np.int64), invert=True)
        return rec[keep], idx[keep]

    def rejects(self) -> list[dict]:
        """Quarantine records of the bad records of ``[lo, hi)`` (the context before ``lo`` was judged too, but
        is not this read's to report)."""
        if not self.bad:
            return []
        header = read_header(self.path, self.kind)
        origin = f"sierra:{self.path.name}"
        return [_reject(origin, i, reason, detail, memmap_records(header, self.dtype, i, i + 1)[0], self.symbol)
                for i, (reason, detail) in sorted(self.bad.items()) if self.lo <= i < self.hi]

    def days(self) -> list[str]:
        if self.hi <= self.lo:
            return []
        first_good = self.lo
        while first_good in self.bad:
            first_good += 1
        if first_good >= self.hi:
            return []  # every record of the range is damaged: quarantined, nothing to land
        times = self._times()
        d0 = (times.record(first_good) - SC_EPOCH_OFFSET_US) // DAY_US
        d1 = (times[-1] - SC_EPOCH_OFFSET_US) // DAY_US
        return [str(np.datetime64(d, "D")) for d in range(d0, d1 + 1)]

    def _day_range(self, day: str) -> tuple[int, int]:
        """Records ``[a, b)`` of ``day`` (``a`` rewound to its slot: records before ``lo`` are context)."""
        times = self._times()
        start = int(np.datetime64(day, "us").astype(np.int64)) + SC_EPOCH_OFFSET_US
        a, b = times.searchsorted(start), times.searchsorted(start + DAY_US)
        return self.first + int(a), self.first + int(b)

    def _day_window(self, day: str) -> tuple[int, int] | None:
        """:meth:`_day_range`, or None when none of ``[lo, hi)`` falls on ``day``."""
        if self.hi <= self.lo:
            return None
        a, b = self._day_range(day)
        return None if b <= max(a, self.lo) else (a, b)

    def _pieces(self, a: int, b: int) -> list[tuple[int, int]]:
        """``[a, b)`` cut before a slot boundary every PIECE_ROWS records or so."""
        if b - a <= PIECE_ROWS:
            return [(a, b)] if b > a else []
        times = DateTimes(read_header(self.path, self.kind), a, b, self.bad)
        cuts = [0]
        while len(times) - cuts[-1] > PIECE_ROWS:
            t = times[cuts[-1] + PIECE_ROWS] - SC_EPOCH_OFFSET_US
            slot = t - t % self.align_us + SC_EPOCH_OFFSET_US
            k = times.searchsorted(slot)
            if k <= cuts[-1]:  # one slot longer than a piece: cut after it
                k = times.searchsorted(slot + self.align_us)
            cuts.append(k)
        cuts.append(len(times))
        return [(a + x, a + y) for x, y in zip(cuts, cuts[1:], strict=False) if y > x]


class ScidSource(_Source):
    """A ``.scid`` file's records as ``market_ticks`` (single-trade files) and 1/5/15-min order-flow
    ``market_bars`` (bars files: bars resampled to the frames at least as long as the file's own)."""

    def __init__(self, path: Path, symbol: str, *, frames=FRAMES, ticks: bool = True, profile: bool = True,
                 now_us: int | None = None, **window):
        self.frames, self.want_ticks, self.profile = tuple(frames), ticks, profile
        self.now_us = int(time.time() * 1e6) if now_us is None else now_us
        super().__init__(path, symbol, align_us=max(self.frames, default=1) * US_PER_MIN, **window)
        self.single = self.hi <= self.lo or _single_trades(self.path, self.first, self.hi)
        self.last_us = 0

    def check(self) -> None:
        super().check()
        if self.hi > self.lo:
            last = self._times()[-1] - SC_EPOCH_OFFSET_US
            self.last_us = last if MIN_UNIX_US <= last < MAX_UNIX_US else 0

    def _record_problems(self, rec: np.ndarray, us: np.ndarray) -> list[tuple[np.ndarray, str, str]]:
        """Prices finite and positive; in a single-trade file, every record a trade (the file's kind is
        judged on its records: one bar or absurd count among trades is that record's problem only)."""
        prices = np.stack([rec["High"], rec["Low"], rec["Close"]])
        out = [(~np.isfinite(prices).all(axis=0) | ~np.isfinite(rec["Open"]), "non_finite_number",
                "a price is NaN or infinite (O={Open} H={High} L={Low} C={Close})"),
               (np.isfinite(rec["Close"]) & (rec["Close"] <= 0), "sierra_bad_price", "Close {Close} is not positive")]
        if self.single:
            opens, bits = rec["Open"], rec["Open"].view(np.uint32)
            flag = (bits == FIRST_SUB_TRADE.view(np.uint32)) | (bits == LAST_SUB_TRADE.view(np.uint32))
            out.append(((rec["NumTrades"] > 1) | (~flag & (bits != 0) & (opens != rec["Close"])), "sierra_record_kind",
                        "NumTrades={NumTrades}, Open={Open}: a bar among the single trades of this file"))
        else:
            out.append(((rec["High"] < rec["Low"]), "sierra_bad_bar", "High {High} is below Low {Low}"))
        return out

    def feeds(self, day: str) -> list[Feed]:
        window = self._day_window(day)
        if window is None:
            return []
        a, b = window
        origin = f"sierra:{self.path.name}"
        done: dict[int, list[pa.Table]] = {}

        def pass_(emit_ticks: bool):
            """Pieces of ticks (when asked), filling ``done`` with each frame's complete bars."""
            done.clear()
            done.update({m: [] for m in self.frames})
            figures = _DayFigures(self.profile)
            header = read_header(self.path, "scid")
            for x, y in self._pieces(a, b):
                rec, idx = self._read(x, y)
                records = records_table(self.path, header, x, rec)
                if self.single:
                    trades = scid_ticks(records)
                    skip = int(np.searchsorted(idx, self.lo))
                    fresh = trades.slice(skip)
                    figures.add(fresh)
                    for m in self.frames:
                        done[m].append(order_flow_bars(trades, m))
                    if emit_ticks and fresh.num_rows:
                        seq = seq_within_ms(pc.cast(trades.column("ts"), pa.int64()).to_numpy())
                        rows, _ = tick_rows(fresh, self.symbol, seq[skip:])
                        yield Piece(rows, idx[skip:])
                else:
                    for m in self.frames:
                        done[m].append(records)
            if self.single:
                self.figures.setdefault(day, {}).update(figures.result())

        feeds: list[Feed] = []
        if self.single and self.want_ticks:
            feeds.append(Feed("market_tick", origin, lambda: pass_(True)))
        native = 1 if self.single else _native_minutes(
            records_table(self.path, read_header(self.path, "scid"), a, self._read(a, b)[0]))

        def bars(m: int):
            if not done:  # the ticks feed did not run (no ticks wanted, or a file of bars): one pass for all frames
                for _ in pass_(False):
                    pass
            parts = done[m]
            table = (concat(parts) if self.single else resample_scid_bars(concat(parts), m)) if parts else None
            if table is None or table.num_rows == 0:
                return []
            ready = _complete(table, m, self.last_us, self.now_us)
            rows, ts_ms = bar_rows(ready, self.symbol, MINUTE_FRAMES[m])
            self.figures.setdefault(day, {})[f"bars_{MINUTE_FRAMES[m]}"] = len(ts_ms)
            return [Piece(rows, ts_ms)]

        for m in self.frames:
            if self.single or m >= native:
                feeds.append(Feed("market_bar", f"{origin}#{MINUTE_FRAMES[m]}", lambda m=m: bars(m)))
        return feeds


class DepthSource(_Source):
    """A ``.depth`` file's updates as ``market_depth``."""

    kind = "depth"
    dtype = DEPTH_RECORD

    def _record_problems(self, rec: np.ndarray, us: np.ndarray) -> list[tuple[np.ndarray, str, str]]:
        price = rec["Price"]
        return [(rec["Command"] > 7, "sierra_bad_command", "command {Command} is not a depth command (0..7)"),
                (~np.isfinite(price), "non_finite_number", "price {Price} is NaN or infinite")]

    def feeds(self, day: str) -> list[Feed]:
        window = self._day_window(day)
        if window is None:
            return []
        a, b = window

        def pieces():
            n = 0
            header = read_header(self.path, "depth")
            for x, y in self._pieces(a, b):
                rec, idx = self._read(x, y)
                depth = depth_table(self.path, header, x, rec)
                seq = seq_within_ms(pc.cast(depth.column("ts"), pa.int64()).to_numpy())
                skip = int(np.searchsorted(idx, self.lo))
                rows, ts_ms = depth_rows(depth.slice(skip), self.symbol, seq[skip:])
                n += len(ts_ms)
                yield Piece(rows, idx[skip:])
            self.figures[day] = {"depth_updates": n}

        return [Feed("market_depth", f"sierra:{self.path.name}", pieces)]


class _DayFigures:
    """Trades, volume, delta and (``profile``) the volume profile of one day's trades, added piece by piece
    (the profile from volume per distinct price: the same levels, tick size and POC as from every trade)."""

    def __init__(self, profile: bool):
        self.profile = profile
        self.trades = self.volume = self.delta = 0
        self.levels: list[pa.Table] = []

    def add(self, ticks: pa.Table) -> None:
        if not ticks.num_rows:
            return
        size = ticks.column("size").to_numpy().astype(np.int64)
        self.trades += ticks.num_rows
        self.volume += int(size.sum())
        self.delta += int((ticks.column("ask_volume").to_numpy().astype(np.int64)
                           - ticks.column("bid_volume").to_numpy()).sum())
        if self.profile:
            self.levels.append(ticks.select(["ts", "price", "size", "bid_volume", "ask_volume"]).group_by("price")
                               .aggregate([("ts", "min"), ("size", "sum"), ("bid_volume", "sum"), ("ask_volume", "sum")]))

    def result(self) -> dict:
        if not self.trades:
            return {}
        out = {"trades": self.trades, "volume": self.volume, "delta": self.delta}
        if self.profile and self.levels:
            t = concat(self.levels).group_by("price").aggregate(
                [("ts_min", "min"), ("size_sum", "sum"), ("bid_volume_sum", "sum"), ("ask_volume_sum", "sum")])
            levels = pa.table({"ts": t.column("ts_min_min"), "price": t.column("price"),
                               "size": t.column("size_sum_sum"), "bid_volume": t.column("bid_volume_sum_sum"),
                               "ask_volume": t.column("ask_volume_sum_sum")})
            for vp in daily_volume_profiles(levels).values():
                out |= {"poc": vp.poc, "value_area_low": vp.value_area_low,
                        "value_area_high": vp.value_area_high, "tick_size": vp.tick_size}
        return out


def land_depth(layout: Layout, store: PartitionStore, path: Path | str, symbol: str, *, start=None, end=None,
               from_record: int = 0, to_record: int | None = None,
               known_symbols: frozenset[str] | None = None) -> Landed:
    """Land the depth updates of ``path`` in ``[start, end)`` / ``[from_record, to_record)``."""
    return land_files(layout, store, [DepthSource(Path(path), symbol, start=start, end=end, from_record=from_record,
                                                  to_record=to_record)], known_symbols=known_symbols)[0]


def land_dly(layout: Layout, store: PartitionStore, path: Path | str, symbol: str, *,
             known_symbols: frozenset[str] | None = None) -> Landed:
    """Land a ``.dly`` file's daily bars (timeframe 1d, ts = the date at 00:00 UTC)."""
    table = read_dly(path)
    rows, ts_ms = bar_rows(table, symbol, "1d")
    oi = table.column("open_interest").to_pylist()
    residuals = {i: {"open_interest": v} for i, v in enumerate(oi) if v is not None}
    report = land(layout, store, "market_bar", rows, origin=f"sierra:{Path(path).name}", offsets=ts_ms,
                  residuals=residuals, known_symbols=known_symbols)
    return Landed(report, table.num_rows, {d: {"daily_bars": n} for d, n in _per_day(ts_ms).items()})


def land_study(layout: Layout, store: PartitionStore, path: Path | str, symbol: str, tz: str, *,
               timeframe: str | None = None, known_symbols: frozenset[str] | None = None) -> Landed:
    """Land a study export's bars; a ``VWAP`` column becomes ``vwap``, other studies go to ``extra``."""
    table = read_study_export(path, tz)
    studies = study_columns(table)
    vwap = next((s for s in studies if s.strip().lower() == "vwap"), None)
    bars = table.append_column("vwap", table.column(vwap)) if vwap else table
    tf = timeframe or infer_timeframe(table)
    rows, ts_ms = bar_rows(bars, symbol, tf)
    others = [s for s in studies if s != vwap]
    values = {s: table.column(s).to_pylist() for s in others}  # study exports are small (one line per bar)
    residuals = {i: {"studies": {s: values[s][i] for s in others if values[s][i] is not None}}
                 for i in range(table.num_rows)} if others else {}
    report = land(layout, store, "market_bar", rows, origin=f"sierra:{Path(path).name}", offsets=ts_ms,
                  residuals=residuals, known_symbols=known_symbols)
    return Landed(report, table.num_rows, {d: {f"study_bars_{tf}": n} for d, n in _per_day(ts_ms).items()})


def infer_timeframe(table: pa.Table) -> str:
    """The bar length of a table of bars (the most common gap between consecutive bars)."""
    us = pc.cast(table.column("ts"), pa.int64()).to_numpy()
    gaps = np.diff(us)
    gaps = gaps[gaps > 0]
    if not len(gaps):
        raise ValueError("cannot tell the bar length from fewer than two bars: give --timeframe (e.g. 1min)")
    values, counts = np.unique(gaps, return_counts=True)
    minutes = values[np.argmax(counts)] / US_PER_MIN
    if minutes not in MINUTE_FRAMES:
        raise ValueError(f"bars every {minutes:g} min are not a stored timeframe; give --timeframe "
                         f"({', '.join(MINUTE_FRAMES.values())})")
    return MINUTE_FRAMES[int(minutes)]


def _native_minutes(records: pa.Table) -> int:
    try:
        return {tf: m for m, tf in MINUTE_FRAMES.items()}[infer_timeframe(records)] if records.num_rows > 1 else 1
    except ValueError:
        return 1


def _per_day(ts_ms: np.ndarray) -> dict[str, int]:
    days, counts = np.unique(np.asarray(ts_ms) // 86_400_000, return_counts=True)
    return {str(np.datetime64(int(d), "D")): int(c) for d, c in zip(days, counts, strict=True)}
