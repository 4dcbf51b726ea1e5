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

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.collection.ingest import IngestReport
from mia_pipeline.layout import Layout
from mia_pipeline.sources.sierra.depth import read_depth
from mia_pipeline.sources.sierra.exports import read_dly, read_study_export, study_columns
from mia_pipeline.sources.sierra.formats import (
    DEPTH_RECORD,
    SC_EPOCH_OFFSET_US,
    SCID_RECORD,
    memmap_records,
    read_header,
    search,
)
from mia_pipeline.sources.sierra.landing import (
    MINUTE_FRAMES,
    bar_rows,
    depth_rows,
    land,
    merge_reports,
    seq_within_ms,
    tick_rows,
)
from mia_pipeline.sources.sierra.orderflow import (
    US_PER_MIN,
    daily_volume_profiles,
    order_flow_bars,
    resample_scid_bars,
)
from mia_pipeline.sources.sierra.scid import read_scid
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


def _rewind(path: Path, kind: str, lo: int, period_us: int) -> int:
    """The first record of the ``period_us`` slot (or millisecond) holding record ``lo``."""
    header = read_header(path, kind)
    if lo <= 0 or lo >= header.records:
        return max(0, min(lo, header.records))
    times = memmap_records(header, SCID_RECORD if kind == "scid" else DEPTH_RECORD)["DateTime"]
    unix = int(times[lo]) - SC_EPOCH_OFFSET_US
    return int(np.searchsorted(times, unix - unix % period_us + SC_EPOCH_OFFSET_US, side="left"))


def _range(path: Path, kind: str, start, end, from_record: int, to_record: int | None) -> tuple[int, int]:
    header = read_header(path, kind)
    lo, hi = search(path, header, SCID_RECORD if kind == "scid" else DEPTH_RECORD, start, end)
    hi = min(hi, header.records if to_record is None else to_record)
    return max(lo, from_record), hi


def _complete(bars: pa.Table, minutes: int, last_us: int, now_us: int) -> pa.Table:
    ends = pc.cast(bars.column("ts"), pa.int64()).to_numpy() + minutes * US_PER_MIN
    return bars.filter(pa.array((ends <= last_us) | (ends <= now_us - BAR_GRACE_US)))


def _day_figures(ticks: pa.Table, profile: bool) -> dict[str, dict]:
    us = pc.cast(ticks.column("ts"), pa.int64()).to_numpy()
    if not len(us):
        return {}
    day = us // DAY_US
    size = ticks.column("size").to_numpy().astype(np.int64)
    delta = ticks.column("ask_volume").to_numpy().astype(np.int64) - ticks.column("bid_volume").to_numpy()
    out = {}
    for d in np.unique(day).tolist():
        m = day == d
        key = str(np.datetime64(d, "D"))
        out[key] = {"trades": int(m.sum()), "volume": int(size[m].sum()), "delta": int(delta[m].sum())}
    if profile:
        for d, vp in daily_volume_profiles(ticks).items():
            out[d.isoformat()] |= {"poc": vp.poc, "value_area_low": vp.value_area_low,
                                   "value_area_high": vp.value_area_high, "tick_size": vp.tick_size}
    return out


def land_scid(layout: Layout, store: PartitionStore, path: Path | str, symbol: str, *, start=None, end=None,
              from_record: int = 0, to_record: int | None = None, frames=FRAMES, ticks: bool = True,
              profile: bool = True, known_symbols: frozenset[str] | None = None, now_us: int | None = None) -> Landed:
    """Land the records of ``path`` in ``[start, end)`` with index in ``[from_record, to_record)``."""
    path = Path(path)
    now_us = int(time.time() * 1e6) if now_us is None else now_us
    lo, hi = _range(path, "scid", start, end, from_record, to_record)
    if hi <= lo:
        return Landed(IngestReport(), max(hi, from_record))
    r0 = _rewind(path, "scid", lo, max(frames, default=1) * US_PER_MIN)
    records = read_scid(path, from_record=r0, to_record=hi)
    last_us = int(pc.max(pc.cast(records.column("ts"), pa.int64())).as_py())
    reports, name = [], path.name
    if pc.all(pc.less_equal(records.column("num_trades"), 1)).as_py():
        trades = scid_ticks(records)
        seq = seq_within_ms(pc.cast(trades.column("ts"), pa.int64()).to_numpy())
        fresh = trades.slice(lo - r0)
        if ticks:
            rows, _ = tick_rows(fresh, symbol, seq[lo - r0:])
            reports.append(land(layout, store, "market_tick", rows, origin=f"sierra:{name}",
                                offsets=np.arange(lo, hi), known_symbols=known_symbols))
        bars = {m: order_flow_bars(trades, m) for m in frames}
        figures = _day_figures(fresh, profile)
    else:
        native = _native_minutes(records)
        bars = {m: resample_scid_bars(records, m) for m in frames if m >= native}
        figures = {}
    for minutes, table in bars.items():
        done = _complete(table, minutes, last_us, now_us)
        tf = MINUTE_FRAMES[minutes]
        rows, ts_ms = bar_rows(done, symbol, tf)
        reports.append(land(layout, store, "market_bar", rows, origin=f"sierra:{name}#{tf}", offsets=ts_ms,
                            known_symbols=known_symbols))
        for day, n in _per_day(ts_ms).items():
            figures.setdefault(day, {})[f"bars_{tf}"] = n
    return Landed(merge_reports(reports), hi, figures)


def land_depth(layout: Layout, store: PartitionStore, path: Path | str, symbol: str, *, start=None, end=None,
               from_record: int = 0, to_record: int | None = None,
               known_symbols: frozenset[str] | None = None) -> Landed:
    """Land the depth updates of ``path`` in ``[start, end)`` / ``[from_record, to_record)``."""
    path = Path(path)
    lo, hi = _range(path, "depth", start, end, from_record, to_record)
    if hi <= lo:
        return Landed(IngestReport(), max(hi, from_record))
    r0 = _rewind(path, "depth", lo, 1000)  # the millisecond holding record lo: seq numbers as in one read
    depth = read_depth(path, from_record=r0, to_record=hi)
    seq = seq_within_ms(pc.cast(depth.column("ts"), pa.int64()).to_numpy())
    rows, ts_ms = depth_rows(depth.slice(lo - r0), symbol, seq[lo - r0:])
    report = land(layout, store, "market_depth", rows, origin=f"sierra:{path.name}", offsets=np.arange(lo, hi),
                  known_symbols=known_symbols)
    return Landed(report, hi, {day: {"depth_updates": n} for day, n in _per_day(ts_ms).items()})


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
