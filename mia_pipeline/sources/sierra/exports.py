"""Sierra's text files: daily ``.dly`` bars and "Write Bar and Study Data To File" exports.

:func:`read_dly` — ``Date, Open, High, Low, Close, Volume, OpenInterest`` (Close is the settlement) ->
``date date32, ts timestamp[us, UTC] (the date at 00:00 UTC), open, high, low, close float64, volume,
open_interest int64``.

:func:`read_study_export` — one line per completed bar: ``Date, Time, Open, High, Low, Close (or Last),
Volume, NumberOfTrades (or "# of Trades"), OHLC Avg, HLC Avg, HL Avg, Bid Volume, Ask Volume`` then one
column per study subgraph (VWAP, Bollinger bands, RSI, custom Battle Navale studies...). Times are in
the **chart's** time zone (``tz``, an IANA name): they are converted to UTC (``ts``); an hour repeated
when clocks go back is resolved by the order of the bars. Study columns keep their header names; an
empty cell (a study not yet defined on early bars) is null.

Every unreadable line (wrong field count, a value that is not a number/date/time) raises
:class:`~mia_pipeline.sources.sierra.formats.SierraFileError` naming the file, the byte offset and the
line: nothing is half-read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from mia_pipeline.sources.sierra.formats import SierraFileError
from mia_pipeline.sources.sierra.textfiles import read_columns

DLY_COLUMNS = ("Date", "Open", "High", "Low", "Close", "Volume", "OpenInterest")
# header spellings Sierra uses for the fixed columns of a study export -> our names
_ALIASES = {
    "date": "date", "time": "time", "open": "open", "high": "high", "low": "low", "close": "close", "last": "close",
    "volume": "volume", "numberoftrades": "trade_count", "# of trades": "trade_count", "number of trades": "trade_count",
    "numtrades": "trade_count", "ohlc avg": "ohlc_avg", "hlc avg": "hlc_avg", "hl avg": "hl_avg",
    "bid volume": "bid_volume", "ask volume": "ask_volume", "bidvolume": "bid_volume", "askvolume": "ask_volume",
}
_INTEGERS = ("volume", "trade_count", "bid_volume", "ask_volume")
REQUIRED = ("date", "time", "open", "high", "low", "close", "volume")


def _utc(days_or_us: np.ndarray) -> pa.Array:
    return pa.array(days_or_us.astype("datetime64[us]")).cast(pa.timestamp("us", tz="UTC"))


def read_dly(path: Path | str) -> pa.Table:
    """Daily bars of a ``.dly`` file, oldest first as stored."""
    cols = read_columns(path, "Sierra .dly daily file")
    wanted = [c.lower() for c in DLY_COLUMNS]
    have = [n.lower().replace(" ", "") for n in cols.names]
    missing = [c for c, w in zip(DLY_COLUMNS, wanted, strict=True) if w not in have]
    if missing:
        raise SierraFileError(cols.path, 0, f"header {', '.join(cols.names)} lacks {', '.join(missing)} "
                                            f"(expected {', '.join(DLY_COLUMNS)})")
    cols.rename(have)
    days = cols.dates("date")
    return pa.table({
        "date": pa.array(days),
        "ts": _utc(days),
        **{k: cols.numbers(k) for k in ("open", "high", "low", "close")},
        "volume": cols.numbers("volume", integer=True),
        "open_interest": cols.numbers("openinterest", integer=True, nullable=True),
    })


def read_study_export(path: Path | str, tz: str) -> pa.Table:
    """Bars and study values of a "Write Bar and Study Data To File" export, times converted to UTC."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown chart time zone {tz!r}: give the chart's IANA zone, e.g. America/New_York") from None
    cols = read_columns(path, "Sierra study export")
    fixed = {}
    for i, name in enumerate(cols.names):
        key = _ALIASES.get(name.lower())
        if key and key not in fixed:
            fixed[key] = i
    missing = [k for k in REQUIRED if k not in fixed]
    if missing:
        raise SierraFileError(cols.path, 0, f"header {', '.join(cols.names)} lacks {', '.join(missing)}: not a "
                                            "'Write Bar and Study Data To File' export")
    studies = [n for i, n in enumerate(cols.names) if i not in fixed.values()]
    if len(set(studies)) != len(studies):
        raise SierraFileError(cols.path, 0, f"study columns with the same name: {studies}; rename the subgraphs")
    cols.rename([_ALIASES.get(n.lower(), n) if i in fixed.values() else n for i, n in enumerate(cols.names)])
    local = cols.datetimes("date", "time")
    ts = _to_utc(cols, local, tz)
    out = {"ts": ts}
    for k in ("open", "high", "low", "close", "volume", "trade_count", "ohlc_avg", "hlc_avg", "hl_avg",
              "bid_volume", "ask_volume"):
        if k in fixed:
            out[k] = cols.numbers(k, integer=k in _INTEGERS, nullable=k not in REQUIRED)
    for name in studies:
        out[name] = cols.numbers(name, nullable=True)
    meta = {b"sierra.file": str(cols.path).encode(), b"sierra.chart_tz": tz.encode(),
            b"sierra.studies": ",".join(studies).encode()}
    return pa.table(out).replace_schema_metadata(meta)


def study_columns(table: pa.Table) -> list[str]:
    """The study subgraph columns of a :func:`read_study_export` table (in file order)."""
    raw = (table.schema.metadata or {}).get(b"sierra.studies", b"").decode()
    return [n for n in raw.split(",") if n]


def _to_utc(cols, local: np.ndarray, tz: str) -> pa.Array:
    import pandas as pd

    naive = pd.Series(local)
    try:
        aware = naive.dt.tz_localize(tz, ambiguous="infer", nonexistent="raise")
    except (ValueError, TypeError) as exc:  # pytz/pandas errors name the wall time
        bad = _first_wall_time_problem(naive, tz)
        raise cols.fail(bad, f"{naive[bad]} does not exist or is ambiguous in {tz} ({exc})") from None
    return pa.array(aware.dt.tz_convert("UTC")).cast(pa.timestamp("us", tz="UTC"))


def _first_wall_time_problem(naive, tz: str) -> int:
    import pandas as pd

    probe = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    where = np.flatnonzero(pd.isna(probe).to_numpy())
    return int(where[0]) if len(where) else 0
