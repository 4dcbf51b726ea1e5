"""IB objects → landing-zone rows and events (the ``market_bar`` / ``market_tick`` contract).

IB reports "no value" as -1 (volume, wap and count of quote bars; a quote's price or size); ib_async marks
an empty quote side (IB size 0) with its defaults (price -1, size 0) and a value not received yet as NaN on
its ``Ticker``: those are absent from a tick (a tick with no price at all is no tick), null (wap, count) or 0 (volume, which the
contract requires). Anything else IB sends is kept as sent — another negative volume or size, a zero,
negative or infinite price, a crossed quote, a NaN in a bar — so validation quarantines the line with its
reason (``invalid_price``, ``invalid_quantity``, ``crossed_quote``, ``non_finite_number``, …); nothing
is silently dropped or made up.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from mia_pipeline.collection.typed_landing import parse_table
from mia_pipeline.sources.ibkr.contracts import Series


def _epoch_ms(value) -> int:
    if isinstance(value, datetime):
        return int(value.astimezone(UTC).timestamp() * 1000)
    return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)


def history_rows(series: Series, bars, start_ms: int, end_ms: int) -> pa.Table:
    """The bars starting in ``[start_ms, end_ms)`` as ``market_bar`` rows (parse schema)."""
    ts = np.array([_epoch_ms(b.date) for b in bars], dtype=np.int64)
    keep = (ts >= start_ms) & (ts < end_ms)
    picked = [b for b, k in zip(bars, keep.tolist(), strict=True) if k]
    ts = ts[keep]
    sym, tf = series.instrument.symbol, series.timeframe

    def col(name):
        return pa.array([getattr(b, name) for b in picked], pa.float64())

    volume = np.array([b.volume for b in picked], dtype=np.float64)
    wap = np.array([b.average for b in picked], dtype=np.float64)
    count = np.array([b.barCount for b in picked], dtype=np.int64)
    columns = {
        "event_id": pa.array([f"{series.source}:{sym}:{tf}:{t}" for t in ts.tolist()], pa.string()),
        "source": pa.array([series.source] * len(ts), pa.string()),
        "symbol": pa.array([sym] * len(ts), pa.string()),
        "timeframe": pa.array([tf] * len(ts), pa.string()),
        "open": col("open"), "high": col("high"), "low": col("low"), "close": col("close"),
        # -1 is IB's "no volume" (kept as 0, as the contract requires a volume); any other negative volume is
        # an anomaly kept as sent, so validation quarantines the bar (invalid_quantity) instead of a made-up 0
        "volume": pa.array(np.where(volume == -1, 0.0, volume)),
        "vwap": pa.array(wap, mask=wap <= 0),
        "trade_count": pa.array(count, mask=count < 0),
    }
    return parse_table("market_bar", columns, ts)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _as_sent(value: float) -> float | None:
    """A quote's price or size; None for "no value" (None, ib_async's NaN, IB's -1)."""
    return None if value is None or value != value or value == -1 else float(value)


def quote_sides(q) -> tuple:
    """(bid, ask, bid size, ask size) of a tick-by-tick ``BidAsk`` as IB sent it; a side of size 0 is empty."""
    bid = (q.bidPrice, q.bidSize) if q.bidSize != 0 else (None, None)
    ask = (q.askPrice, q.askSize) if q.askSize != 0 else (None, None)
    return bid[0], ask[0], bid[1], ask[1]


def tick_event(symbol: str, ms: int, seq: int, *, bid=None, ask=None, last=None, bid_size=None, ask_size=None,
               last_size=None, source: str = "ibkr") -> dict | None:
    """A ``market_tick`` event, or None when it carries no price."""
    prices = {"bid": _as_sent(bid), "ask": _as_sent(ask), "last": _as_sent(last)}
    if not any(v is not None for v in prices.values()):
        return None
    # A crossed quote (ask < bid) is kept as IB sent it: validation quarantines it (crossed_quote) with its
    # line, rather than storing a one-sided quote nobody sent.
    event = {"kind": "market_tick", "schema_version": 1, "event_id": f"{source}:{symbol}:{ms}:{seq}",
             "source": source, "timestamp": _iso(ms), "symbol": symbol, "seq": seq}
    sizes = {"bid_size": _as_sent(bid_size), "ask_size": _as_sent(ask_size), "last_size": _as_sent(last_size)}
    event |= {k: v for k, v in prices.items() if v is not None}
    event |= {k: v for k, v in sizes.items() if v is not None and prices[k[:-5]] is not None}
    return event


def bar_event(symbol: str, ms: int, o, h, lo, c, volume, wap, count, *, timeframe: str = "5s",
              source: str = "ibkr.realtime") -> dict:
    """A ``market_bar`` event of a real-time (5-second) bar."""
    event = {"kind": "market_bar", "schema_version": 1, "event_id": f"{source}:{symbol}:{timeframe}:{ms}",
             "source": source, "timestamp": _iso(ms), "symbol": symbol, "timeframe": timeframe,
             "open": o, "high": h, "low": lo, "close": c, "volume": 0.0 if volume == -1 else float(volume)}
    if wap and wap > 0:
        event["vwap"] = wap
    if count is not None and count >= 0:
        event["trade_count"] = int(count)
    return event


def status_event(component: str, status: str, message: str, ms: int, **fields) -> dict:
    """A ``system_status`` event (live view) for the recorder's connection state."""
    return {"kind": "system_status", "schema_version": 1, "event_id": f"{component}:{status}:{ms}",
            "source": "ibkr", "timestamp": _iso(ms), "component": component, "status": status,
            "message": message, **fields}


def gap_event(start_ms: int, end_ms: int, cause: str, resubscribed: bool) -> dict:
    """A ``performance`` sample marking a data gap (stored in the day's ``performance`` dataset):
    metric ``ibkr_data_gap_s`` = its length; when it started and ended and why are kept too."""
    return {"kind": "performance", "schema_version": 1, "event_id": f"ibkr-gap:{start_ms}:{end_ms}",
            "source": "ibkr", "timestamp": _iso(end_ms), "metric": "ibkr_data_gap_s",
            "value": round((end_ms - start_ms) / 1000, 3), "unit": "s",
            "tags": {"component": "ibkr_recorder", "session": cause},
            "gap_start": _iso(start_ms), "gap_end": _iso(end_ms), "resubscribed": resubscribed}
