"""Sierra Chart binary layouts (``../shared/reference/sierra.md``) and the checks every reader shares.

``.scid`` intraday file: a 56-byte header (``<4sIIHHI36s``: ``"SCID"``, HeaderSize=56, RecordSize=40,
Version, Unused, UTCStartIndex, reserve) then 40-byte records (:data:`SCID_RECORD`, ``<q4f4I``).
``.depth`` market-depth file: a 64-byte header (``"SCDD"``, HeaderSize=64, RecordSize=24, Version,
reserve) then 24-byte records (:data:`DEPTH_RECORD`).

Times: ``DateTime`` is microseconds since 1899-12-30 00:00 UTC (SCDateTimeMS); unix microseconds are
``DateTime - SC_EPOCH_OFFSET_US``. Values outside 1970..2100 are refused (very old files stored a
double of days there: read as an int64 it is ~4.6e18, far outside the range).

Every error is a :class:`SierraFileError` naming the file and the byte offset of the problem.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SC_EPOCH_OFFSET_US = 2_209_161_600_000_000   # 1899-12-30 -> 1970-01-01, microseconds
MIN_UNIX_US = 0                              # 1970-01-01
MAX_UNIX_US = 4_102_444_800_000_000          # 2100-01-01

SCID_MAGIC, SCID_HEADER_SIZE, SCID_RECORD_SIZE = b"SCID", 56, 40
DEPTH_MAGIC, DEPTH_HEADER_SIZE, DEPTH_RECORD_SIZE = b"SCDD", 64, 24
SCID_HEADER = struct.Struct("<4sIIHHI36s")
DEPTH_HEADER = struct.Struct("<4sIII48s")

SCID_RECORD = np.dtype([
    ("DateTime", "<i8"), ("Open", "<f4"), ("High", "<f4"), ("Low", "<f4"), ("Close", "<f4"),
    ("NumTrades", "<u4"), ("TotalVolume", "<u4"), ("BidVolume", "<u4"), ("AskVolume", "<u4"),
])
DEPTH_RECORD = np.dtype([
    ("DateTime", "<i8"), ("Command", "u1"), ("Flags", "u1"), ("NumOrders", "<u2"),
    ("Price", "<f4"), ("Quantity", "<u4"), ("Reserved", "<u4"),
])
assert SCID_RECORD.itemsize == SCID_RECORD_SIZE and DEPTH_RECORD.itemsize == DEPTH_RECORD_SIZE

# Open-field flags of single-trade records (float32 values, compared bit-exactly)
SINGLE_TRADE = np.float32(0.0)
FIRST_SUB_TRADE = np.float32(-1.99900095e37)
LAST_SUB_TRADE = np.float32(-1.99900197e37)


class SierraFileError(ValueError):
    """A Sierra file that cannot be read as given: the message names the file, the byte offset and what
    was expected."""

    def __init__(self, path: Path | str, offset: int, problem: str) -> None:
        self.path, self.offset, self.problem = Path(path), int(offset), problem
        super().__init__(f"{path}: at byte {offset}: {problem}")


@dataclass(frozen=True)
class FileHeader:
    """What a binary Sierra file's header says, and how many whole records follow it."""

    path: Path
    header_size: int
    record_size: int
    version: int
    records: int          # complete records on disk now (a trailing partial record is not counted)
    partial_bytes: int    # bytes of a record still being written (ignored)


def read_header(path: Path | str, kind: str) -> FileHeader:
    """Check the header of a ``.scid`` (``kind="scid"``) or ``.depth`` file and count its whole records."""
    path = Path(path)
    magic, header_size, record_size, fmt = ((SCID_MAGIC, SCID_HEADER_SIZE, SCID_RECORD_SIZE, SCID_HEADER)
                                            if kind == "scid" else
                                            (DEPTH_MAGIC, DEPTH_HEADER_SIZE, DEPTH_RECORD_SIZE, DEPTH_HEADER))
    try:
        with open(path, "rb") as f:
            head = f.read(fmt.size)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise SierraFileError(path, 0, "no such file") from None
    except IsADirectoryError:
        raise SierraFileError(path, 0, "is a folder, not a file") from None
    if len(head) < 4 or head[:4] != magic:
        raise SierraFileError(path, 0, f"wrong magic {head[:4]!r}, expected {magic!r}: not a Sierra "
                                       f".{kind} file (or an unsupported old format)")
    if len(head) < fmt.size:
        raise SierraFileError(path, len(head), f"truncated header: {len(head)} of {fmt.size} bytes")
    fields = fmt.unpack(head)
    if fields[1] != header_size:
        raise SierraFileError(path, 4, f"header size {fields[1]}, expected {header_size}")
    if fields[2] != record_size:
        raise SierraFileError(path, 8, f"record size {fields[2]}, expected {record_size}")
    body = size - header_size
    return FileHeader(path, header_size, record_size, int(fields[3]), body // record_size, body % record_size)


def memmap_records(header: FileHeader, dtype: np.dtype, first: int = 0, stop: int | None = None, *,
                   populate: bool = False) -> np.ndarray:
    """Records ``[first, stop)`` as a read-only memory map (an empty array when there are none).

    ``populate``: map the pages in one call (Linux ``MAP_POPULATE``) instead of one fault per page —
    for ranges about to be read whole; a binary search leaves it off and touches a few pages only."""
    stop = header.records if stop is None else min(stop, header.records)
    first = max(0, min(first, stop))
    if stop == first:
        return np.zeros(0, dtype=dtype)
    start = header.header_size + first * header.record_size
    if populate and hasattr(mmap, "MAP_POPULATE"):
        aligned = start - start % mmap.ALLOCATIONGRANULARITY
        with open(header.path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), start - aligned + (stop - first) * header.record_size,
                               flags=mmap.MAP_SHARED | mmap.MAP_POPULATE, prot=mmap.PROT_READ, offset=aligned)
        return np.frombuffer(mapped, dtype=dtype, count=stop - first, offset=start - aligned)
    return np.memmap(header.path, dtype=dtype, mode="r", offset=start, shape=(stop - first,))


def unix_us(path: Path, header: FileHeader, first: int, sc_datetime: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """SCDateTimeMS values -> unix microseconds (``inplace``: overwrite ``sc_datetime``, an array the caller
    owns); any value outside 1970..2100 raises, naming its record and byte offset."""
    us = np.asarray(sc_datetime, dtype=np.int64)
    if inplace:
        us -= np.int64(SC_EPOCH_OFFSET_US)
    else:
        us = us - np.int64(SC_EPOCH_OFFSET_US)
    if len(us) and (us.min() < MIN_UNIX_US or us.max() >= MAX_UNIX_US):
        i = int(np.argmax((us < MIN_UNIX_US) | (us >= MAX_UNIX_US)))
        raw = int(us[i]) + SC_EPOCH_OFFSET_US
        as_double = np.array([raw], dtype="<i8").view("<f8")[0]
        hint = (f" (it reads as the double {as_double:.6g}: the old days-since-1899 format; open the chart in "
                "a current Sierra Chart to convert the file)" if 1.0 < as_double < 200_000.0 else "")
        raise SierraFileError(path, header.header_size + (first + i) * header.record_size,
                              f"record {first + i}: DateTime {raw} is outside 1970..2100{hint}")
    return us


def to_unix_us(value) -> int:
    """A window bound -> unix microseconds. Accepts an int (unix µs), a tz-aware datetime / pandas
    Timestamp, ``numpy.datetime64`` (UTC) or an ISO string with a zone; a naive datetime is refused."""
    import pandas as pd

    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[us]").astype(np.int64))
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        raise ValueError(f"time {value!r} has no zone: give UTC explicitly (e.g. '2025-06-23T14:30Z')")
    return int(ts.tz_convert("UTC").value // 1000)


def search(path: Path, header: FileHeader, dtype: np.dtype, start, end) -> tuple[int, int]:
    """Record range ``[lo, hi)`` whose DateTime lies in ``[start, end)`` (records are time-sorted):
    two binary searches over the memory-mapped DateTime column, a few pages read."""
    lo, hi = 0, header.records
    if start is None and end is None or hi == 0:
        return lo, hi
    times = memmap_records(header, dtype)["DateTime"]
    if start is not None:
        lo = int(np.searchsorted(times, to_unix_us(start) + SC_EPOCH_OFFSET_US, side="left"))
    if end is not None:
        hi = int(np.searchsorted(times, to_unix_us(end) + SC_EPOCH_OFFSET_US, side="left"))
    return lo, max(lo, hi)
