"""The test suite's own Sierra Chart file writer (``struct``-based, independent of the numpy readers).

Writes ``.scid`` and ``.depth`` files record by record exactly as Sierra lays them out
(``../shared/reference/sierra.md``), including single-trade records with the Open-flag sentinels,
bid/ask in High/Low, equal timestamps and a trailing partial record (a write in progress).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SC_OFFSET_US = 2_209_161_600_000_000
FIRST_SUB = struct.unpack("<f", struct.pack("<f", -1.99900095e37))[0]
LAST_SUB = struct.unpack("<f", struct.pack("<f", -1.99900197e37))[0]
SCID_HEADER = struct.Struct("<4sIIHHI36s")
SCID_REC = struct.Struct("<q4f4I")
DEPTH_HEADER = struct.Struct("<4sIII48s")
DEPTH_REC = struct.Struct("<qBBHfII")


def f32(x: float) -> float:
    """``x`` as the float32 Sierra stores (what an exact reader must return)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def sc_time(when: datetime | int) -> int:
    """A UTC datetime (or unix microseconds) as SCDateTimeMS."""
    us = when if isinstance(when, int) else round(when.timestamp() * 1_000_000)
    return us + SC_OFFSET_US


def unix_us(when: datetime) -> int:
    return round(when.replace(tzinfo=when.tzinfo or UTC).timestamp() * 1_000_000)


@dataclass
class ScidRecord:
    time_us: int                 # unix microseconds
    open: float
    high: float
    low: float
    close: float
    num_trades: int
    total_volume: int
    bid_volume: int
    ask_volume: int

    def pack(self) -> bytes:
        return SCID_REC.pack(self.time_us + SC_OFFSET_US, self.open, self.high, self.low, self.close,
                             self.num_trades, self.total_volume, self.bid_volume, self.ask_volume)


def trade(time_us: int, price: float, size: int, *, bid: float, ask: float, buyer: bool,
          flag: float = 0.0) -> ScidRecord:
    """A single-trade record: Open = flag, High = ask, Low = bid, size in Ask/BidVolume by aggressor."""
    return ScidRecord(time_us, flag, ask, bid, price, 1, size, 0 if buyer else size, size if buyer else 0)


def scid_header(*, magic=b"SCID", header_size=56, record_size=40, version=1, utc_start=0) -> bytes:
    return SCID_HEADER.pack(magic, header_size, record_size, version, 0, utc_start, b"\0" * 36)


def _write(path: Path, header: bytes, records, partial: bytes) -> Path:
    with open(path, "wb") as f:
        f.write(header)
        for r in records:
            f.write(r.pack())
        f.write(partial)
    return path


def write_scid(path: Path, records: list[ScidRecord], *, partial: bytes = b"", header: bytes | None = None) -> Path:
    return _write(path, scid_header() if header is None else header, records, partial)


def append_scid(path: Path, records: list[ScidRecord]) -> None:
    """Append after what is there (a partial record left in place misaligns the rest, as it would on disk)."""
    with open(path, "ab") as f:
        for r in records:
            f.write(r.pack())


def sierra_writes(path: Path, records: list[ScidRecord]) -> None:
    """What Sierra does next: finish the record in progress (overwrite the partial tail), append the rest."""
    whole = (path.stat().st_size - 56) // 40
    with open(path, "r+b") as f:
        f.seek(56 + whole * 40)
        f.write(b"".join(r.pack() for r in records))
        f.truncate()


@dataclass
class DepthRecord:
    time_us: int
    command: int
    flags: int
    num_orders: int
    price: float
    quantity: int

    def pack(self) -> bytes:
        return DEPTH_REC.pack(self.time_us + SC_OFFSET_US, self.command, self.flags, self.num_orders, self.price,
                              self.quantity, 0)


def depth_header(*, magic=b"SCDD", header_size=64, record_size=24, version=1) -> bytes:
    return DEPTH_HEADER.pack(magic, header_size, record_size, version, b"\0" * 48)


def write_depth(path: Path, records: list[DepthRecord], *, partial: bytes = b"", header: bytes | None = None) -> Path:
    return _write(path, depth_header() if header is None else header, records, partial)


def es_session(start_us: int, n: int = 200, *, step_us: int = 250_000) -> list[ScidRecord]:
    """``n`` ES single trades from ``start_us``: every record kind, equal timestamps, both aggressors.

    Every 7th record repeats the previous timestamp; records 10..13 form an unbundled trade (first,
    two inside, last); prices move on the 0.25 grid around 6000."""
    out = []
    t = start_us
    price = 6000.0
    for i in range(n):
        if i % 7 != 6:
            t += step_us
        price += 0.25 * ((i * 37) % 5 - 2)
        buyer = (i * 13) % 3 != 0
        flag = FIRST_SUB if i == 10 else LAST_SUB if i == 13 else 0.0
        out.append(trade(t, price, 1 + (i * 11) % 9, bid=price - 0.25 if buyer else price,
                         ask=price if buyer else price + 0.25, buyer=buyer, flag=flag))
    return out
