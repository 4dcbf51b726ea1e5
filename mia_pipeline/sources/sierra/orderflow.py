"""Order flow from Sierra trades: time bars with bid/ask volume and delta, and the volume profile.

:func:`order_flow_bars` (ticks from :func:`~mia_pipeline.sources.sierra.ticks.scid_ticks`, bars of
``minutes``) returns one row per bar that has trades, aligned on UTC multiples of the bar length::

    ts (bar start, timestamp[us, UTC]), open, high, low, close (float64), volume, bid_volume,
    ask_volume, delta (= ask_volume - bid_volume: buyers minus sellers), trade_count (records) int64,
    vwap float64 (null for a bar of zero volume)

:func:`resample_scid_bars` does the same for a bar ``.scid`` file (records are bars already; vwap is
the volume-weighted HLC average of the records).

:func:`volume_profile` (one trading day, or any span) returns the volume traded at each price level,
the point of control (POC: the level with the most volume; ties -> the lowest price) and the value area
(``value_area`` of the volume, 70 % by default): grown from the POC one level at a time towards the
neighbour with more volume (ties -> the upper one), until it holds the share. Everything is vectorised
over the trades; only the value-area growth walks the (few hundred) price levels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa

US_PER_MIN = 60_000_000
BAR_SCHEMA = pa.schema([
    ("ts", pa.timestamp("us", tz="UTC")), ("open", pa.float64()), ("high", pa.float64()), ("low", pa.float64()),
    ("close", pa.float64()), ("volume", pa.int64()), ("bid_volume", pa.int64()), ("ask_volume", pa.int64()),
    ("delta", pa.int64()), ("trade_count", pa.int64()), ("vwap", pa.float64()),
])


def _us(table: pa.Table) -> np.ndarray:
    return table.column("ts").combine_chunks().cast(pa.int64()).to_numpy()


def _col(table: pa.Table, name: str, dtype=None) -> np.ndarray:
    arr = table.column(name).to_numpy()
    return arr if dtype is None else arr.astype(dtype)


def _aggregate(ts_us, minutes: int, o, h, lo, c, vol, bid_v, ask_v, trades, pv) -> pa.Table:
    if minutes <= 0 or minutes > 1440:
        raise ValueError(f"bar length {minutes} min is not 1..1440")
    period = minutes * US_PER_MIN
    if len(ts_us) and (np.diff(ts_us) < 0).any():  # records are time-sorted; a copy out of order is sorted
        order = np.argsort(ts_us, kind="stable")
        ts_us, o, h, lo, c, vol, bid_v, ask_v, trades, pv = (
            x[order] for x in (ts_us, o, h, lo, c, vol, bid_v, ask_v, trades, pv))
    bucket = ts_us // period
    starts = np.concatenate([[0], np.flatnonzero(np.diff(bucket)) + 1]).astype(np.int64) if len(ts_us) else \
        np.zeros(0, dtype=np.int64)
    if not len(starts):
        return BAR_SCHEMA.empty_table()
    ends = np.concatenate([starts[1:], [len(ts_us)]]) - 1
    volume = np.add.reduceat(vol, starts)
    bid = np.add.reduceat(bid_v, starts)
    ask = np.add.reduceat(ask_v, starts)
    pv_sum = np.add.reduceat(pv, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = pv_sum / volume
    return pa.Table.from_arrays([
        pa.array(bucket[starts] * period).cast(pa.timestamp("us", tz="UTC")),
        pa.array(o[starts]), pa.array(np.maximum.reduceat(h, starts)), pa.array(np.minimum.reduceat(lo, starts)),
        pa.array(c[ends]), pa.array(volume), pa.array(bid), pa.array(ask), pa.array(ask - bid),
        pa.array(np.add.reduceat(trades, starts)), pa.array(vwap, mask=volume == 0),
    ], schema=BAR_SCHEMA)


def order_flow_bars(ticks: pa.Table, minutes: int) -> pa.Table:
    """``minutes``-bars of trades (a :func:`scid_ticks` table) with bid/ask volume, delta and VWAP."""
    price = _col(ticks, "price", np.float64)
    size = _col(ticks, "size", np.int64)
    return _aggregate(_us(ticks), minutes, price, price, price, price, size, _col(ticks, "bid_volume", np.int64),
                      _col(ticks, "ask_volume", np.int64), np.ones(len(price), dtype=np.int64), price * size)


def resample_scid_bars(records: pa.Table, minutes: int) -> pa.Table:
    """``minutes``-bars from the bar records of a :func:`read_scid` table (not a single-trade file)."""
    h, lo, c = (_col(records, n, np.float64) for n in ("high", "low", "close"))
    vol = _col(records, "total_volume", np.int64)
    return _aggregate(_us(records), minutes, _col(records, "open", np.float64), h, lo, c, vol,
                      _col(records, "bid_volume", np.int64), _col(records, "ask_volume", np.int64),
                      _col(records, "num_trades", np.int64), (h + lo + c) / 3.0 * vol)


@dataclass(frozen=True)
class VolumeProfile:
    """Volume per price level of one span of trades, its POC and value area (prices in the file's units)."""

    levels: pa.Table        # price float64 (ascending), volume, bid_volume, ask_volume, delta int64
    tick_size: float
    total_volume: int
    poc: float | None
    value_area_low: float | None
    value_area_high: float | None
    value_area_volume: int


def infer_tick_size(prices: np.ndarray) -> float:
    """The smallest step between distinct prices, rounded to 8 decimals (1.0 for fewer than 2 prices)."""
    distinct = np.unique(prices)
    if len(distinct) < 2:
        return 1.0
    return float(np.round(np.diff(distinct).min(), 8))


def volume_profile(ticks: pa.Table, tick_size: float | None = None, value_area: float = 0.70) -> VolumeProfile:
    """Volume at each price level (prices snapped to ``tick_size``, inferred when None)."""
    if not 0 < value_area <= 1:
        raise ValueError(f"value_area {value_area} is not a share in (0, 1], e.g. 0.70")
    price = _col(ticks, "price", np.float64)
    size = _col(ticks, "size", np.int64)
    tick = tick_size or infer_tick_size(price)
    empty = pa.table({"price": pa.array([], pa.float64()), **{n: pa.array([], pa.int64()) for n in
                                                             ("volume", "bid_volume", "ask_volume", "delta")}})
    if not len(price):
        return VolumeProfile(empty, tick, 0, None, None, None, 0)
    level = np.rint(price / tick).astype(np.int64)
    low = level.min()
    span = int(level.max() - low) + 1
    if span <= 4 * len(level) + 1_000_000:  # dense levels: one counting pass each
        idx, keys = level - low, None
    else:  # absurd spread of prices: group the distinct levels instead
        keys, idx = np.unique(level, return_inverse=True)
        span = len(keys)
    vol = np.bincount(idx, weights=size, minlength=span)
    bid = np.bincount(idx, weights=_col(ticks, "bid_volume", np.float64), minlength=span)
    ask = np.bincount(idx, weights=_col(ticks, "ask_volume", np.float64), minlength=span)
    traded = np.flatnonzero(np.bincount(idx, minlength=span))
    levels = (traded + low) if keys is None else keys[traded]
    vol, bid, ask = (np.rint(x[traded]).astype(np.int64) for x in (vol, bid, ask))
    prices = np.round(levels * tick, 10)
    total = int(vol.sum())
    poc_i = int(np.argmax(vol))
    lo_i, hi_i, inside = _value_area(vol, poc_i, value_area * total)
    table = pa.table({"price": prices, "volume": vol, "bid_volume": bid, "ask_volume": ask, "delta": ask - bid})
    return VolumeProfile(table, tick, total, float(prices[poc_i]), float(prices[lo_i]), float(prices[hi_i]), inside)


def _value_area(vol: np.ndarray, poc: int, target: float) -> tuple[int, int, int]:
    lo = hi = poc
    inside = int(vol[poc])
    while inside < target and (lo > 0 or hi < len(vol) - 1):
        up = vol[hi + 1] if hi < len(vol) - 1 else -1
        down = vol[lo - 1] if lo > 0 else -1
        if up >= down:
            hi += 1
            inside += int(up)
        else:
            lo -= 1
            inside += int(down)
    return lo, hi, inside


def daily_volume_profiles(ticks: pa.Table, tick_size: float | None = None,
                          value_area: float = 0.70) -> dict[date, VolumeProfile]:
    """One profile per UTC day (the partition day) present in ``ticks``; one tick size for all days."""
    us = _us(ticks)
    if not len(us):
        return {}
    tick = tick_size or infer_tick_size(_col(ticks, "price", np.float64))
    day_no = us // (86_400 * 1_000_000)
    out = {}
    for d in np.unique(day_no).tolist():
        a, b = np.searchsorted(day_no, [d, d + 1]) if (np.diff(day_no) >= 0).all() else (None, None)
        part = ticks.slice(int(a), int(b - a)) if a is not None else ticks.filter(pa.array(day_no == d))
        day = datetime.fromtimestamp(d * 86_400, UTC).date()
        out[day] = volume_profile(part, tick, value_area)
    return out
