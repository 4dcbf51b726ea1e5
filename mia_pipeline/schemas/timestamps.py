"""Timestamp strings → epoch milliseconds (UTC), vectorized for the canonical spelling.

Canonical: ``2025-06-23T14:30:15.123Z`` (what the export writes). Those are checked with one regex
and converted with one Arrow cast. Anything else is parsed in Python (rare): any ISO-8601 date-time
with ``T`` or space, optional fraction (truncated to ms) and a zone (``Z`` or ``±hh:mm``/``±hhmm``).
No zone → ``timestamp_no_zone``; anything else → ``bad_timestamp``. A non-canonical spelling is
accepted and reported so the caller can keep the original string in ``extra``. Any year 0000-9999
with any zone converts without overflow; whether the instant is plausible (:data:`MIN_MS` ..
:data:`MAX_MS`, 1970-2100) is the caller's rule (``out_of_range``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CANONICAL_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|z|[+-]\d{2}:?\d{2})?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_MS = 0  # 1970-01-01T00:00:00.000Z: earliest event instant accepted
MAX_MS = int((datetime(2101, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds()) * 1000  # end of year 2100 (excl.)


def parse_one(text: str) -> tuple[int | None, str | None]:
    """``(epoch_ms, None)`` or ``(None, reason_code)`` for one timestamp string."""
    m = _ISO.fullmatch(text)
    if not m:
        return None, "bad_timestamp"
    y, mo, d, h, mi, s, frac, zone = m.groups()
    if zone is None:
        return None, "timestamp_no_zone"
    year = int(y)
    try:  # year 0000 (as Arrow reads it: proleptic Gregorian, a leap year) is year 4 minus 1461 days
        dt = datetime(year or 4, int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    except ValueError:
        return None, "bad_timestamp"
    shift_s = 0
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "+" else 1
        hh, mm = int(zone[1:3]), int(zone[-2:])
        if hh > 23 or mm > 59:
            return None, "bad_timestamp"
        shift_s = sign * (hh * 3600 + mm * 60)  # added as integers: 0001-01-01T00:00+01:00 cannot overflow
    seconds = (dt - _EPOCH) // timedelta(seconds=1) + shift_s - (0 if year else 1461 * 86400)
    return seconds * 1000 + int((frac or "0")[:3].ljust(3, "0")), None


_PATTERN = np.frombuffer(b"0000-00-00T00:00:00.000Z", dtype=np.uint8)
_DIGIT_AT = _PATTERN == ord("0")


def canonical_mask(arr: pa.Array) -> np.ndarray:
    """Rows spelled exactly like ``CANONICAL_RE`` (nulls: False).

    The usual column (no nulls, every value 24 bytes) is one zero-copy ``n x 24`` byte matrix
    compared with the pattern in numpy; any other column goes through the regex."""
    n = len(arr)
    if n and arr.null_count == 0 and pa.types.is_string(arr.type):
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset: arr.offset + n + 1]
        if offsets[-1] - offsets[0] == 24 * n and (np.diff(offsets) == 24).all():
            data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
            mat = data[offsets[0]: offsets[-1]].reshape(n, 24)
            digits_ok = ((mat[:, _DIGIT_AT] - ord("0")) < 10).all(axis=1)  # uint8 wraps below "0"
            return digits_ok & (mat[:, ~_DIGIT_AT] == _PATTERN[~_DIGIT_AT]).all(axis=1)
    return pc.fill_null(pc.match_substring_regex(arr, CANONICAL_RE), False).to_numpy(zero_copy_only=False)


def parse_column(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, dict[int, str], np.ndarray]:
    """Parse a string column: ``(ms, ok, errors {row: reason}, noncanonical mask)``; a timestamp column
    is taken as it is.

    Null rows are neither ok nor errors (``ok`` False, not in ``errors``).
    """
    n = len(arr)
    if pa.types.is_timestamp(arr.type):  # already typed (rows built from a binary source): nothing to parse
        ok = pc.is_valid(arr).to_numpy(zero_copy_only=False)
        ms = pc.fill_null(pc.cast(pc.cast(arr, pa.timestamp("ms", tz="UTC")), pa.int64()), 0).to_numpy()
        return ms, ok, {}, np.zeros(n, dtype=bool)
    ms = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    errors: dict[int, str] = {}
    valid = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    canon = canonical_mask(arr)
    rows = np.flatnonzero(canon)
    in_python = valid & ~canon
    if len(rows):
        try:
            sub = arr if len(rows) == n else arr.take(pa.array(rows))
            cast = pc.cast(sub, pa.timestamp("ms", tz="UTC"))
            ms[rows] = cast.cast(pa.int64()).to_numpy(zero_copy_only=False)
            ok[rows] = True
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            in_python = valid  # e.g. 2025-02-30: let the Python path find the culprit
    slow = np.flatnonzero(in_python)
    if len(slow):
        texts = arr.take(pa.array(slow)).to_pylist()
        for i, text in zip(slow.tolist(), texts, strict=True):
            value, reason = parse_one(text)
            if reason:
                errors[i] = reason
            else:
                ms[i], ok[i] = value, True
    return ms, ok, errors, valid & ~canon


def format_ms(ms: int) -> str:
    """Epoch ms → canonical ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    dt = _EPOCH + timedelta(milliseconds=int(ms))
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def format_column(arr: pa.Array) -> list[str | None]:
    """A timestamp[ms, UTC] array → canonical strings (vectorized via Arrow strftime)."""
    if len(arr) == 0:
        return []
    return pc.strftime(arr.cast(pa.timestamp("ms", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ").to_pylist()
