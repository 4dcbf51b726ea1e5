"""Strict reading of Sierra's comma-separated text files (``.dly``, study exports).

:func:`read_columns` gives every column as trimmed strings plus, for each data row, the byte offset of
its line, so a value that does not parse is reported as ``file: at byte N (line L): ...``. Rows with
the wrong number of fields are refused the same way (never skipped silently).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mia_pipeline.sources.sierra.formats import SierraFileError

NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_DATE = r"^(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})$"
_TIME = r"^(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,6}))?)?$"


class TextColumns:
    """Trimmed string columns of a CSV file with a header line, and each data row's line offset/number."""

    def __init__(self, path: Path, names: list[str], columns: list[pa.Array], offsets: np.ndarray,
                 line_numbers: np.ndarray) -> None:
        self.path, self.names, self.columns = path, names, columns
        self.offsets, self.line_numbers = offsets, line_numbers
        self.labels = {n: n for n in names}  # name in messages: the header's own spelling

    def rename(self, names: list[str]) -> None:
        """Refer to the columns by ``names`` (same order); messages keep the header's spelling."""
        self.labels = {new: self.labels.get(old, old) for old, new in zip(self.names, names, strict=True)}
        self.names = names

    def fail(self, row: int, problem: str) -> SierraFileError:
        return SierraFileError(self.path, int(self.offsets[row]), f"line {int(self.line_numbers[row])}: {problem}")

    def column(self, name: str) -> pa.Array:
        return self.columns[self.names.index(name)]

    def numbers(self, name: str, *, integer: bool = False, nullable: bool = False) -> pa.Array:
        """A column as float64 (int64 when ``integer``); an empty cell is null only if ``nullable``."""
        text = self.column(name)
        empty = pc.equal(pc.utf8_length(text), 0)
        ok = pc.or_(pc.match_substring_regex(text, NUMBER), empty) if nullable else pc.match_substring_regex(
            text, NUMBER)
        bad = pc.invert(ok)
        if pc.any(bad).as_py():
            i = int(np.argmax(bad.to_numpy(zero_copy_only=False)))
            raise self.fail(i, f"{self.labels.get(name, name)} {text[i].as_py()!r} is not a number")
        values = pc.cast(pc.if_else(empty, None, text), pa.float64())
        if integer:
            frac = pc.not_equal(values, pc.floor(values))
            if pc.any(frac).as_py():
                i = int(np.argmax(pc.fill_null(frac, False).to_numpy(zero_copy_only=False)))
                raise self.fail(i, f"{self.labels.get(name, name)} {text[i].as_py()!r} is not a whole number")
            return pc.cast(values, pa.int64())
        return values

    def dates(self, name: str) -> np.ndarray:
        """``YYYY-MM-DD`` / ``YYYY/M/D`` cells -> datetime64[D]."""
        parts = self._parts(name, _DATE, "a date (YYYY-MM-DD or YYYY/M/D)")
        y, m, d = (parts[k] for k in "ymd")
        zero = np.zeros_like(y)
        return self._checked(name, y, m, d, zero, zero, zero, zero).astype("datetime64[D]")

    def datetimes(self, date_name: str, time_name: str) -> np.ndarray:
        """Date + time cells (``HH:MM[:SS[.ffffff]]``) -> naive datetime64[us]."""
        p = self._parts(date_name, _DATE, "a date (YYYY-MM-DD or YYYY/M/D)")
        t = self._parts(time_name, _TIME, "a time (HH:MM:SS[.ffffff])")
        return self._checked(date_name, p["y"], p["m"], p["d"], t["H"], t["M"], t["S"], t["F"])

    def _parts(self, name: str, pattern: str, what: str) -> dict[str, np.ndarray]:
        text = self.column(name)
        found = pc.extract_regex(text, pattern)
        missing = pc.is_null(found)
        if pc.any(missing).as_py():
            i = int(np.argmax(missing.to_numpy(zero_copy_only=False)))
            raise self.fail(i, f"{self.labels.get(name, name)} {text[i].as_py()!r} is not {what}")
        out = {}
        for key in re.findall(r"\?P<(\w+)>", pattern):
            part = pc.struct_field(found, key)
            if key == "F":  # fraction of a second: right-pad to microseconds
                part = pc.utf8_rpad(pc.fill_null(part, ""), 6, "0")
            out[key] = pc.cast(pc.if_else(pc.equal(pc.utf8_length(pc.fill_null(part, "")), 0), "0", part),
                               pa.int64()).to_numpy()
        return out

    def _checked(self, name, y, m, d, hh, mm, ss, us) -> np.ndarray:
        bad = (m < 1) | (m > 12) | (d < 1) | (d > 31) | (hh > 23) | (mm > 59) | (ss > 59)
        months = (y - 1970) * 12 + (m - 1)
        first = months.astype("datetime64[M]").astype("datetime64[D]")
        day = first + (d - 1).astype("timedelta64[D]")
        bad |= day.astype("datetime64[M]") != first.astype("datetime64[M]")  # e.g. 2025-02-30
        if bad.any():
            i = int(np.argmax(bad))
            raise self.fail(i, f"{self.labels.get(name, name)}: {y[i]:04d}-{m[i]:02d}-{d[i]:02d} {hh[i]:02d}:{mm[i]:02d}:{ss[i]:02d} "
                               "is not a valid date/time")
        return (day.astype("datetime64[us]") + (((hh * 60 + mm) * 60 + ss) * 1_000_000 + us).astype("timedelta64[us]"))


def read_columns(path: Path | str, what: str) -> TextColumns:
    """Parse ``path`` (a header line then comma-separated rows); ``what`` names the format in errors."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SierraFileError(path, 0, f"cannot read it ({exc.strerror or exc})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(arr == 10)
    starts = np.concatenate([[0], ends + 1])
    stops = np.concatenate([ends, [len(data)]])
    length = stops - starts - ((stops > starts) & (arr[np.maximum(stops - 1, 0)] == 13) if len(arr) else 0)
    keep = np.flatnonzero(length > 0)  # pyarrow skips empty lines: keep offsets of the others only
    if not len(keep):
        raise SierraFileError(path, 0, f"empty file: expected a header line then rows ({what})")
    bad_rows: list = []

    def invalid(row) -> str:
        bad_rows.append(row)
        return "skip"

    first = data[starts[keep[0]]:stops[keep[0]]].decode("utf-8", "replace").rstrip("\r")
    raw_names = first.split(",")
    generated = [f"c{i}" for i in range(len(raw_names))]
    try:
        table = pacsv.read_csv(pa.py_buffer(data), read_options=pacsv.ReadOptions(
                                   column_names=generated, skip_rows=int(keep[0]) + 1),
                               parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
                               convert_options=pacsv.ConvertOptions(
                                   column_types=dict.fromkeys(generated, pa.string()), strings_can_be_null=False))
    except pa.ArrowInvalid as exc:  # the parser quotes the row: printable and short, a binary file is no text
        said = "".join(c if " " <= c <= "~" else "?" for c in str(exc).splitlines()[0])
        raise SierraFileError(path, 0, f"not a readable {what} (not CSV text?): "
                                       f"{said[:120]}{'…' if len(said) > 120 else ''}") from None
    if bad_rows:  # the handler does not know line numbers: find the first line with another field count
        fields = _field_counts(arr, starts[keep], stops[keep])
        wrong = np.flatnonzero(fields != len(raw_names))
        j = int(wrong[0]) if len(wrong) else 0
        row = bad_rows[0]
        raise SierraFileError(path, int(starts[keep[j]]), f"line {int(keep[j]) + 1}: {int(fields[j])} fields where "
                                                          f"the header has {len(raw_names)} ({what}): "
                                                          f"{row.text[:120]!r}")
    names = [n.strip() for n in raw_names]
    columns = [pc.utf8_trim_whitespace(pc.cast(c.combine_chunks(), pa.string())) for c in table.columns]
    rows = keep[1:]
    return TextColumns(path, names, columns, starts[rows], rows + 1)


def _field_counts(arr: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Fields per line (commas + 1), each line counted over its own bytes only."""
    commas = np.concatenate([[0], np.cumsum(arr == ord(","), dtype=np.int64)])
    return commas[stops] - commas[starts] + 1
