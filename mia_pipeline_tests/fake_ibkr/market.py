"""The fake gateway's market: contracts (FX pairs, quarterly ES/NQ futures) and deterministic data.

Everything is a pure function of (contract, what, time), so a test can compute what the gateway
will answer. Sessions follow FX / CME Globex in UTC: closed all Saturday, Sunday before 22:00 and
Friday from 21:00.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

FX = {"EURUSD": 1.08, "GBPUSD": 1.27, "USDJPY": 151.0, "AUDUSD": 0.66}
FUTURES = {"ES": (5000.0, "E-mini S&P 500"), "NQ": (17500.0, "E-mini Nasdaq 100")}
WEEK = 7 * 86400


@dataclass(frozen=True)
class Listed:
    """One contract as the gateway lists it in contract details."""

    con_id: int
    symbol: str
    sec_type: str
    expiry: str  # YYYYMMDD, "" for FX
    exchange: str
    currency: str
    local_symbol: str
    trading_class: str
    multiplier: str
    long_name: str
    min_tick: float
    price: float

    @property
    def key(self) -> str:
        return self.local_symbol


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def _fx(pair: str, n: int) -> Listed:
    base, quote = pair[:3], pair[3:]
    return Listed(12087792 + n, base, "CASH", "", "IDEALPRO", quote, f"{base}.{quote}", f"{base}.{quote}", "",
                  f"European Currency {pair}", 0.00005 if quote != "JPY" else 0.005, FX[pair])


def _futures(years: range) -> list[Listed]:
    out = []
    for symbol, (price, name) in FUTURES.items():
        for year in years:
            for month, code in ((3, "H"), (6, "M"), (9, "U"), (12, "Z")):
                expiry = third_friday(year, month)
                out.append(Listed(abs(zlib.crc32(f"{symbol}{year}{month}".encode())) % 10**9, symbol, "FUT",
                                  expiry.strftime("%Y%m%d"), "CME", "USD", f"{symbol}{code}{year % 10}", symbol,
                                  "50" if symbol == "ES" else "20", name, 0.25, price))
    return out


class FakeMarket:
    """Contract database and deterministic prices. ``extra`` adds contracts (e.g. an ambiguous pair)."""

    def __init__(self, years: range = range(2023, 2029), extra: tuple[Listed, ...] = ()):
        self.listed = [_fx(p, i) for i, p in enumerate(FX)] + _futures(years) + list(extra)

    def matching(self, symbol: str, sec_type: str, exchange: str, currency: str, expiry: str,
                 include_expired: bool, today: date) -> list[Listed]:
        out = []
        for c in self.listed:
            if symbol and c.symbol != symbol or sec_type and c.sec_type != sec_type:
                continue
            if currency and c.currency != currency or exchange and exchange not in (c.exchange, "SMART"):
                continue
            if expiry and not c.expiry.startswith(expiry):
                continue
            if c.expiry and not include_expired and date(int(c.expiry[:4]), int(c.expiry[4:6]),
                                                          int(c.expiry[6:])) < today:
                continue
            out.append(c)
        return out

    @staticmethod
    def is_open(ts: int) -> bool:
        """FX and CME Globex hours (UTC, simplified): Sunday 22:00 to Friday 21:00."""
        t = datetime.fromtimestamp(ts, UTC)
        wd, h = t.weekday(), t.hour
        return not (wd == 5 or (wd == 6 and h < 22) or (wd == 4 and h >= 21))

    @staticmethod
    def mid(c: Listed, ts: float) -> float:
        phase = (zlib.crc32(c.local_symbol.encode()) % 1000) / 100
        return round(c.price * (1 + 0.002 * math.sin(ts / 5400 + phase) + 0.0005 * math.sin(ts / 333)), 6)

    def bar(self, c: Listed, what: str, start: int, seconds: int) -> tuple[float, ...]:
        """(open, high, low, close, volume, wap, count) of the bar starting at ``start``. As IB does,
        quote-based bars (BID_ASK, MIDPOINT, BID, ASK) carry volume, wap and count of -1."""
        pts = [self.mid(c, start + seconds * k / 4) for k in range(5)]
        o, cl, hi, lo = pts[0], pts[-1], max(pts), min(pts)
        if what == "HISTORICAL_VOLATILITY":
            v = 0.12 + 0.03 * math.sin(start / 86400)
            return (v, v * 1.01, v * 0.99, v, -1.0, -1.0, -1)
        if what == "BID_ASK":  # IB: open = mean bid, high = max ask, low = min bid, close = mean ask
            half = c.min_tick
            return (o - half, hi + half, lo - half, cl + half, -1.0, -1.0, -1)
        if what in ("MIDPOINT", "BID", "ASK"):
            return (o, hi, lo, cl, -1.0, -1.0, -1)
        volume = float(100 + (start // seconds) % 37)
        return (o, hi, lo, cl, volume, round((o + cl) / 2, 6), int(volume // 3))

    def bars(self, c: Listed, what: str, end: int, duration_s: int, bar_s: int) -> list[tuple]:
        """Bars whose start is in ``[end - duration_s, end)`` while the market is open."""
        first = (end - duration_s) // bar_s * bar_s
        return [(t, *self.bar(c, what, t, bar_s)) for t in range(first, end, bar_s) if self.is_open(t)]
