"""Single-trade ``.scid`` records interpreted as trades with the quote they printed against.

In a file that stores every trade as its own record (Sierra's "1 Tick" intraday storage):

- ``Open`` is a flag: ``0.0`` a single trade; ``-1.99900095e+37`` the first sub-trade of an unbundled
  trade, ``-1.99900197e+37`` its last sub-trade (records in between carry ``0.0``);
- ``High`` = ask, ``Low`` = bid, ``Close`` = trade price, ``NumTrades`` = 1, ``TotalVolume`` = size;
- the size sits in ``AskVolume`` when the buyer was the aggressor (lifted the ask) and in
  ``BidVolume`` when the seller was (hit the bid).

:func:`scid_ticks` returns, one row per record, in file order::

    ts timestamp[us, UTC]; price float64 (the float32 Close, widened exactly); size uint32;
    bid, ask float64 (null when Sierra had no quote: 0); side int8 (+1 buy aggressor, -1 sell, 0 unknown);
    bid_volume, ask_volume uint32; sub_trade int8 (0 single, 1 first, 2 inside, 3 last of an unbundled trade)

A record that is a bar (``NumTrades`` > 1, or an ``Open`` that is neither a flag, 0, nor the Close)
raises :class:`SierraFileError` naming its offset: bars are not trades (use :func:`read_scid`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.sources.sierra.formats import (
    FIRST_SUB_TRADE,
    LAST_SUB_TRADE,
    SCID_HEADER_SIZE,
    SCID_RECORD_SIZE,
    SierraFileError,
)
from mia_pipeline.sources.sierra.scid import read_scid

SINGLE, FIRST, INSIDE, LAST = 0, 1, 2, 3
TICKS_SCHEMA = pa.schema([
    ("ts", pa.timestamp("us", tz="UTC")), ("price", pa.float64()), ("size", pa.uint32()),
    ("bid", pa.float64()), ("ask", pa.float64()), ("side", pa.int8()),
    ("bid_volume", pa.uint32()), ("ask_volume", pa.uint32()), ("sub_trade", pa.int8()),
])


def _np(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy()


def check_trades(where: str, first: int, opens: np.ndarray, close: np.ndarray, trades: np.ndarray) -> None:
    """Raise :class:`SierraFileError` at the first record (index ``first`` + i) that is a bar, not a single
    trade: ``NumTrades`` > 1, or an ``Open`` that is neither a sub-trade flag, 0, nor the Close."""
    bits = opens.view(np.uint32)
    flag = (bits == FIRST_SUB_TRADE.view(np.uint32)) | (bits == LAST_SUB_TRADE.view(np.uint32))
    bar = (trades > 1) | (~flag & (bits != 0) & (opens != close))
    if bar.any():
        i = int(np.argmax(bar))
        raise SierraFileError(where, SCID_HEADER_SIZE + (first + i) * SCID_RECORD_SIZE,
                              f"record {first + i} is a bar (NumTrades={int(trades[i])}, Open={float(opens[i])}),"
                              " not a single trade: this file stores bars; set the chart's Intraday Data Storage "
                              "Time Unit to 1 Tick, or read it with read_scid")


def scid_ticks(source: Path | str | pa.Table, start=None, end=None) -> pa.Table:
    """Trades of a single-trade ``.scid`` file (or of a :func:`read_scid` table) with bid/ask and side."""
    table = read_scid(source, start, end) if not isinstance(source, pa.Table) else source
    first = int((table.schema.metadata or {}).get(b"sierra.first_record", b"0"))
    where = (table.schema.metadata or {}).get(b"sierra.file", b"<table>").decode()
    n = table.num_rows
    opens = _np(table, "open").view(np.uint32)  # bit-exact comparison with the flag values
    is_first = opens == FIRST_SUB_TRADE.view(np.uint32)
    is_last = opens == LAST_SUB_TRADE.view(np.uint32)
    check_trades(where, first, _np(table, "open"), _np(table, "close"), _np(table, "num_trades"))
    sub = np.zeros(n, dtype=np.int8)
    if is_first.any() or is_last.any():
        # inside an unbundled trade: more firsts than lasts seen so far (the last one included)
        depth = np.cumsum(is_first.astype(np.int32)) - np.cumsum(is_last.astype(np.int32)) + is_last
        sub[depth > 0] = INSIDE
        sub[is_first] = FIRST
        sub[is_last] = LAST
    bid_v, ask_v = _np(table, "bid_volume"), _np(table, "ask_volume")
    side = np.sign(ask_v.astype(np.int64) - bid_v.astype(np.int64)).astype(np.int8)
    high, low = table.column("high"), table.column("low")
    return pa.Table.from_arrays([
        table.column("ts"),
        pc.cast(table.column("close"), pa.float64()),
        table.column("total_volume"),
        pc.if_else(pc.greater(low, 0), pc.cast(low, pa.float64()), None),
        pc.if_else(pc.greater(high, 0), pc.cast(high, pa.float64()), None),
        pa.array(side),
        table.column("bid_volume"),
        table.column("ask_volume"),
        pa.array(sub),
    ], schema=TICKS_SCHEMA)
