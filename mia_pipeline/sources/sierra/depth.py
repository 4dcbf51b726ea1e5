"""Read Sierra Chart market-depth files (``.depth``): the order book as a stream of commands.

Layout: a 64-byte header (``"SCDD"``, HeaderSize=64, RecordSize=24, Version) then 24-byte records
``i64 DateTime, u8 Command, u8 Flags, u16 NumOrders, f32 Price, u32 Quantity, u32 Reserved``.

Commands: 1 clear book, 2/3 add bid/ask level, 4/5 modify bid/ask level, 6/7 delete bid/ask level
(0 = no command). Flags bit 0x01 ends a batch: the book is consistent after a record with it.

:func:`read_depth` returns one row per record, in file order::

    ts timestamp[us, UTC]; command uint8; action string (clear|add|modify|delete|none);
    side string (bid|ask, null for clear/none); price float64 (null for clear/none);
    quantity uint32; num_orders uint16; end_of_batch bool; flags uint8

Windows ``[start, end)`` by binary search, ``from_record`` checkpoints and the trailing partial record
work as for ``.scid`` (:mod:`~mia_pipeline.sources.sierra.scid`). A command code above 7 raises
:class:`SierraFileError` naming its offset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.sources.sierra.formats import (
    DEPTH_RECORD,
    SierraFileError,
    memmap_records,
    read_header,
    search,
    unix_us,
)

COMMANDS = ("none", "clear", "add_bid", "add_ask", "modify_bid", "modify_ask", "delete_bid", "delete_ask")
ACTIONS = np.array(["none", "clear", "add", "add", "modify", "modify", "delete", "delete"], dtype=object)
SIDES = np.array([None, None, "bid", "ask", "bid", "ask", "bid", "ask"], dtype=object)
END_OF_BATCH = 0x01
DEPTH_SCHEMA = pa.schema([
    ("ts", pa.timestamp("us", tz="UTC")), ("command", pa.uint8()), ("action", pa.string()),
    ("side", pa.string()), ("price", pa.float64()), ("quantity", pa.uint32()), ("num_orders", pa.uint16()),
    ("end_of_batch", pa.bool_()), ("flags", pa.uint8()),
])


def depth_record_count(path: Path | str) -> int:
    """Whole records in the ``.depth`` file now (header checked)."""
    return read_header(path, "depth").records


def read_depth(path: Path | str, start=None, end=None, *, from_record: int = 0,
               to_record: int | None = None) -> pa.Table:
    """Depth records of ``path`` with ``start <= ts < end`` and index in ``[from_record, to_record)``."""
    path = Path(path)
    header = read_header(path, "depth")
    lo, hi = search(path, header, DEPTH_RECORD, start, end)
    lo = max(lo, from_record)
    hi = max(lo, min(hi, header.records if to_record is None else to_record))
    return depth_table(path, header, lo, memmap_records(header, DEPTH_RECORD, lo, hi))


def depth_table(path: Path, header, lo: int, rec: np.ndarray) -> pa.Table:
    """Depth records (read from index ``lo``) as a table; a bad time or command raises, naming its record."""
    n = len(rec)
    us = unix_us(path, header, lo, np.asarray(rec["DateTime"]))
    command = np.ascontiguousarray(rec["Command"])
    if n and command.max() > 7:
        i = int(np.argmax(command > 7))
        raise SierraFileError(path, header.header_size + (lo + i) * header.record_size + 8,
                              f"record {lo + i}: command {int(command[i])} is not a depth command (0..7)")
    flags = np.ascontiguousarray(rec["Flags"])
    price = pa.array(np.ascontiguousarray(rec["Price"])).cast(pa.float64())
    book_level = command >= 2
    table = pa.Table.from_arrays([
        pa.Array.from_buffers(pa.timestamp("us", tz="UTC"), n, [None, pa.py_buffer(np.ascontiguousarray(us))]),
        pa.array(command),
        pa.DictionaryArray.from_arrays(pa.array(command.astype(np.int32)), pa.array(ACTIONS.tolist())).cast(
            pa.string()),
        pa.DictionaryArray.from_arrays(pa.array(command.astype(np.int32)), pa.array(SIDES.tolist(), pa.string())
                                       ).cast(pa.string()),
        pc.if_else(pa.array(book_level), price, None),
        pa.array(np.ascontiguousarray(rec["Quantity"])),
        pa.array(np.ascontiguousarray(rec["NumOrders"])),
        pa.array((flags & END_OF_BATCH) != 0),
        pa.array(flags),
    ], schema=DEPTH_SCHEMA.with_metadata({b"sierra.file": str(path).encode(),
                                          b"sierra.first_record": str(lo).encode(),
                                          b"sierra.next_record": str(lo + n).encode()}))
    return table
