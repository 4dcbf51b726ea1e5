"""The TWS socket framing, server side: what the fake gateway reads and writes.

Client hello: ``b"API\\0"`` + a 4-byte big-endian length + ``b"v157..178"``. Every later message in
both directions: a 4-byte big-endian length, then fields each terminated by ``\\0``. The server's
first message is exactly two fields ``[serverVersion, "YYYYMMDD HH:MM:SS TZ"]``. Contracts travel
as 12 fields (see :data:`CONTRACT_FIELDS`).
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

CONTRACT_FIELDS = ("conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right",
                   "multiplier", "exchange", "primaryExchange", "currency", "localSymbol", "tradingClass")
MAX_MESSAGE = 1 << 24


class WireError(ValueError):
    """The peer sent something that is not the TWS protocol."""


def frame(*fields) -> bytes:
    """One message: length prefix + each field as text + ``\\0``."""
    body = b"".join(_text(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(body)) + body


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


async def read_message(reader: asyncio.StreamReader) -> list[str]:
    """The next message's fields (``IncompleteReadError`` at EOF)."""
    (size,) = struct.unpack(">I", await reader.readexactly(4))
    if size > MAX_MESSAGE:
        raise WireError(f"message of {size} bytes")
    body = await reader.readexactly(size)
    fields = body.decode(errors="replace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


async def read_hello(reader: asyncio.StreamReader) -> tuple[int, int]:
    """The client's ``API\\0`` hello; returns the (min, max) client versions it offers."""
    if await reader.readexactly(4) != b"API\0":
        raise WireError("no API\\0 prefix")
    (size,) = struct.unpack(">I", await reader.readexactly(4))
    if size > 256:
        raise WireError("oversize hello")
    text = (await reader.readexactly(size)).decode(errors="replace")
    if not text.startswith("v") or ".." not in text:
        raise WireError(f"bad version range {text!r}")
    low, _, high = text[1:].split(" ")[0].partition("..")
    return int(low), int(high)


@dataclass(frozen=True)
class WireContract:
    """The 12 contract fields of a request, as sent."""

    conId: int
    symbol: str
    secType: str
    lastTradeDateOrContractMonth: str
    exchange: str
    currency: str
    localSymbol: str

    @classmethod
    def take(cls, fields: list[str], at: int) -> tuple[WireContract, int]:
        """The contract starting at ``fields[at]`` and the index just past it."""
        f = dict(zip(CONTRACT_FIELDS, fields[at: at + 12], strict=False))
        if len(f) < 12:
            raise WireError("truncated contract")
        return cls(int(f["conId"] or 0), f["symbol"], f["secType"], f["lastTradeDateOrContractMonth"],
                   f["exchange"], f["currency"], f["localSymbol"]), at + 12
