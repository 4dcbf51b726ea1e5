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
    """Records ``[first, stop)``, read into memory (an empty array when there are none).

    Read with ``pread``, never memory-mapped: Sierra may truncate or rewrite a file while it is read, and
    a mapped page past the new end kills the process (SIGBUS). A file that shrank under the read raises
    :class:`SierraFileError`. For a search over a whole file use :class:`DateTimes` (a few records read).
    ``populate`` is accepted for compatibility (reads are always whole)."""
    stop = header.records if stop is None else min(stop, header.records)
    first = max(0, min(first, stop))
    if stop == first:
        return np.zeros(0, dtype=dtype)
    start = header.header_size + first * header.record_size
    want = (stop - first) * header.record_size
    buf = bytearray(want)
    view = memoryview(buf)
    got = 0
    try:
        fd = os.open(header.path, os.O_RDONLY)
    except FileNotFoundError:
        raise SierraFileError(header.path, 0, "the file disappeared while it was read") from None
    try:
        while got < want:
            n = os.preadv(fd, [view[got:]], start + got)
            if n == 0:
                break
            got += n
    finally:
        os.close(fd)
    if got < want:
        raise SierraFileError(header.path, start + got, f"the file shrank while it was read (records {first} to "
                                                       f"{stop} were expected): Sierra rewrote or truncated it; "
                                                       "nothing of this read was used, run the command again")
    return np.frombuffer(buf, dtype=dtype)


class DateTimes:
    """The DateTime column of records ``[first, stop)``, read record by record on demand (``pread``): a
    binary search over a file of any size reads a few dozen records and never maps it. ``bad``: record
    indexes to look through (a damaged record takes the time of the closest good one before it)."""

    def __init__(self, header: FileHeader, first: int = 0, stop: int | None = None, bad=frozenset()):
        self.header, self.first = header, first
        self.stop = header.records if stop is None else min(stop, header.records)
        self.bad = bad
        self._fd: int | None = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110 - at interpreter exit `os` may be gone: nothing to report
            pass

    def __len__(self) -> int:
        return max(0, self.stop - self.first)

    def record(self, i: int) -> int:
        """The DateTime of record ``i`` (an absolute index), through damaged records."""
        while i in self.bad and i > self.first:
            i -= 1
        if self._fd is None:  # opened once per search, closed by close() or when the object goes
            self._fd = os.open(self.header.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        raw = os.pread(self._fd, 8, self.header.header_size + i * self.header.record_size)
        if len(raw) < 8:
            raise SierraFileError(self.header.path, self.header.header_size + i * self.header.record_size,
                                  "the file shrank while it was read: Sierra rewrote or truncated it")
        return int(np.frombuffer(raw, "<i8")[0])

    def __getitem__(self, k: int) -> int:
        n = len(self)
        if not -n <= k < n:
            raise IndexError(k)
        return self.record(self.first + (k % n))

    def searchsorted(self, value: int, side: str = "left") -> int:
        """Like ``numpy.searchsorted`` on the column (relative index)."""
        lo, hi = 0, len(self)
        while lo < hi:
            mid = (lo + hi) // 2
            t = self.record(self.first + mid)
            if t < value or (side == "right" and t == value):
                lo = mid + 1
            else:
                hi = mid
        return lo


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
    two binary searches over the DateTime column, a few records read."""
    lo, hi = 0, header.records
    if start is None and end is None or hi == 0:
        return lo, hi
    times = DateTimes(header)
    if start is not None:
        lo = times.searchsorted(to_unix_us(start) + SC_EPOCH_OFFSET_US)
    if end is not None:
        hi = times.searchsorted(to_unix_us(end) + SC_EPOCH_OFFSET_US)
    return lo, max(lo, hi)
