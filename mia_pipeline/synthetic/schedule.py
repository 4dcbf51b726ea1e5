"""CME Globex schedule, the session's time grids and the intraday (ET) activity profiles.

Equity futures trade Sunday 18:00 - Friday 17:00 America/New_York with a daily halt 17:00-18:00 ET;
the regular (cash) session is 09:30-16:00 ET. CME holidays (full closures such as Good Friday and
Christmas, early closes such as July 3rd 13:00 ET) come from ``exchange_calendars``' "CMES" calendar
for the sessions it covers (2000-2040); outside that range only the weekly schedule applies.
DST changes happen at 02:00 on Sundays, when Globex is closed, so each trading day has one UTC offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

ET = ZoneInfo("America/New_York")
DAY_MS = 86_400_000
HOUR_MS = 3_600_000

# Relative volatility by ET hour of day (knots, linearly interpolated). Shape after Andersen &
# Bollerslev: quiet Asia, Europe open bump, 08:30 data, US open peak, midday trough, close ramp.
_VOL_KNOTS = np.array([
    (0.0, 0.32), (2.9, 0.32), (3.1, 0.55), (4.0, 0.46), (7.9, 0.46), (8.5, 0.85), (9.0, 0.70),
    (9.5, 2.60), (10.0, 2.05), (10.5, 1.55), (11.5, 1.10), (12.0, 0.95), (13.5, 0.95), (14.5, 1.05),
    (15.3, 1.30), (15.75, 1.75), (16.0, 1.75), (16.25, 0.60), (17.0, 0.50), (18.0, 0.55),
    (18.5, 0.36), (24.0, 0.32),
])
# Relative volume by ET hour: the same shape, steeper (RTH carries ~75-80% of the day's contracts).
_VOLUME_KNOTS = np.array([
    (0.0, 0.16), (2.9, 0.16), (3.1, 0.32), (4.0, 0.26), (7.9, 0.26), (8.5, 0.60), (9.0, 0.55),
    (9.5, 3.40), (10.0, 2.70), (10.5, 2.10), (11.5, 1.55), (12.0, 1.35), (13.5, 1.35), (14.5, 1.55),
    (15.3, 1.95), (15.75, 2.90), (16.0, 3.20), (16.25, 0.45), (17.0, 0.30), (18.0, 0.30),
    (18.5, 0.18), (24.0, 0.16),
])


def _globex_day_hours() -> np.ndarray:
    """ET hours of one Globex day (18:00 -> 17:00 next day) on a 1-minute grid."""
    return (np.arange(23 * 60) / 60.0 + 18.0) % 24.0


def _normalised(knots: np.ndarray, rms: bool) -> np.ndarray:
    values = np.interp(_globex_day_hours(), knots[:, 0], knots[:, 1])
    scale = np.sqrt(np.mean(values**2)) if rms else np.mean(values)
    return np.column_stack([knots[:, 0], knots[:, 1] / scale])


VOL_PROFILE = _normalised(_VOL_KNOTS, rms=True)  # RMS over a Globex day = 1
VOLUME_PROFILE = _normalised(_VOLUME_KNOTS, rms=False)  # mean over a Globex day = 1


def vol_profile(et_hour: np.ndarray, flat: bool = False) -> np.ndarray:
    if flat:
        return np.ones_like(et_hour, dtype=np.float64)
    return np.interp(et_hour, VOL_PROFILE[:, 0], VOL_PROFILE[:, 1])


def volume_profile(et_hour: np.ndarray, flat: bool = False) -> np.ndarray:
    if flat:
        return np.ones_like(et_hour, dtype=np.float64)
    return np.interp(et_hour, VOLUME_PROFILE[:, 0], VOLUME_PROFILE[:, 1])


@dataclass(frozen=True)
class OpenInterval:
    """One Globex trading day clipped to the session window: [open_ms, close_ms)."""

    open_ms: int
    close_ms: int
    utc_offset_ms: int
    trading_day: int  # proleptic ordinal of the ET date the trading day closes on


CALENDAR = "CMES"  # exchange_calendars: CME equity futures (Globex sessions, holidays, early closes)
CALENDAR_RANGE = (date(2000, 1, 3), date(2040, 12, 31))


@dataclass(frozen=True)
class _Sessions:
    days: np.ndarray  # sorted ordinals of session (closing) dates
    opens: np.ndarray  # epoch ms
    closes: np.ndarray  # epoch ms


@lru_cache(maxsize=1)
def _calendar_sessions() -> _Sessions:
    """Every CMES session in ``CALENDAR_RANGE`` (computed by exchange_calendars, no I/O)."""
    import warnings

    import exchange_calendars as xc
    import pandas as pd

    with warnings.catch_warnings():  # exchange_calendars' own use of a pandas API deprecated in pandas 3.1
        warnings.simplefilter("ignore")
        cal = xc.get_calendar(CALENDAR, start=CALENDAR_RANGE[0].isoformat(), end=CALENDAR_RANGE[1].isoformat())
        sched = cal.schedule
    days = np.array([d.toordinal() for d in sched.index.date], dtype=np.int64)
    as_ms = lambda c: np.asarray(pd.DatetimeIndex(sched[c]).asi8 // 1_000_000, dtype=np.int64)  # noqa: E731
    return _Sessions(days, as_ms("open"), as_ms("close"))


def _in_calendar(day: date) -> bool:
    return CALENDAR_RANGE[0] <= day <= CALENDAR_RANGE[1]


def weekly_session(day: date) -> tuple[int, int] | None:
    """The hand-written weekly rule: Mon-Fri sessions, 18:00 ET the day before -> 17:00 ET."""
    if day.weekday() >= 5:
        return None
    opens = datetime.combine(day - timedelta(days=1), time(18, 0), ET)
    closes = datetime.combine(day, time(17, 0), ET)
    return int(opens.timestamp() * 1000), int(closes.timestamp() * 1000)


def calendar_session(day: date) -> tuple[int, int] | None:
    """(open_ms, close_ms) of the Globex session closing on ET date ``day``; ``None`` if there is none
    (weekend or CME holiday). Which days trade, the open and early closes come from the CMES calendar;
    its regular close is 17:00 CT (it does not model the daily halt), so the close is the earlier of
    the calendar's and 17:00 ET. Outside ``CALENDAR_RANGE``: ``weekly_session``."""
    weekly = weekly_session(day)
    if not _in_calendar(day):
        return weekly
    cs = _calendar_sessions()
    k = int(np.searchsorted(cs.days, day.toordinal()))
    if k == len(cs.days) or cs.days[k] != day.toordinal() or weekly is None:
        return None
    return int(cs.opens[k]), min(int(cs.closes[k]), weekly[1])


def trading_days(first: date, last: date) -> list[date]:
    """ET dates in [first, last] that hold a Globex session (close on that date), holidays excluded."""
    out, day = [], first
    while day <= last:
        if calendar_session(day) is not None:
            out.append(day)
        day += timedelta(days=1)
    return out


def closed_days(first: date, last: date) -> list[date]:
    """ET dates in [first, last] without a Globex session: weekends and CME full-day holidays."""
    open_ = set(trading_days(first, last))
    return [first + timedelta(days=i) for i in range((last - first).days + 1) if first + timedelta(days=i) not in open_]


def globex_status(when: datetime) -> tuple[bool, datetime, str]:
    """``(is_open, next_open, reason)`` at tz-aware ``when``: ``next_open`` is ``when`` itself if open,
    else the next session's open (ET); ``reason`` says why it is closed ("" when open)."""
    ms = int(when.timestamp() * 1000)
    ivs = open_intervals(ms, ms + 15 * DAY_MS)
    if ivs and ivs[0].open_ms == ms:
        return True, when, ""
    nxt = datetime.fromtimestamp(ivs[0].open_ms / 1000, ET) if ivs else None
    et = when.astimezone(ET)
    today = calendar_session(et.date())
    if et.weekday() == 5 or (et.weekday() == 4 and et.time() >= time(17, 0)) or (et.weekday() == 6 and et.time() < time(18, 0)):
        reason = "weekend (Globex trades Sunday 18:00 - Friday 17:00 ET)"
    elif today is not None and today[0] <= ms:  # today's session has begun and ended: early or normal close
        close = datetime.fromtimestamp(today[1] / 1000, ET)
        reason = ("daily halt 17:00-18:00 ET" if close.time() == time(17, 0)
                  else f"early close at {close:%H:%M} ET ({CALENDAR} calendar)")
    else:
        reason = f"CME holiday ({CALENDAR} calendar)"
    return False, nxt, reason


def open_intervals(start_ms: int, end_ms: int) -> list[OpenInterval]:
    """Globex open intervals intersecting [start_ms, end_ms), in time order.

    >>> from datetime import datetime, timezone
    >>> s = int(datetime(2025, 8, 22, 20, 0, tzinfo=timezone.utc).timestamp() * 1000)  # Fri 16:00 ET
    >>> [(i.close_ms - i.open_ms) // 60_000 for i in open_intervals(s, s + 3 * DAY_MS)]  # Fri 16-17, Sun 18 - Mon 16
    [60, 1320]
    """
    first = datetime.fromtimestamp(start_ms / 1000, ET).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end_ms / 1000, ET).date()
    out: list[OpenInterval] = []
    day = first
    while day <= last:
        session = calendar_session(day + timedelta(days=1))  # the trading day closing tomorrow (ET)
        if session is not None:
            o, c = session
            lo, hi = max(o, start_ms), min(c, end_ms)
            if lo < hi:
                offset = int(datetime.fromtimestamp(o / 1000, ET).utcoffset().total_seconds() * 1000)
                out.append(OpenInterval(lo, hi, offset, (day + timedelta(days=1)).toordinal()))
        day += timedelta(days=1)
    return out


def open_times(start_ms: int, end_ms: int, interval_ms: int, intervals: list[OpenInterval]) -> np.ndarray:
    """Times ``start_ms + k * interval_ms`` that fall inside an open interval (int64 epoch ms)."""
    parts = []
    for iv in intervals:
        k0 = -(-(iv.open_ms - start_ms) // interval_ms)
        k1 = -(-(iv.close_ms - start_ms) // interval_ms)
        parts.append(start_ms + np.arange(k0, k1, dtype=np.int64) * interval_ms)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


@dataclass
class Grid:
    """Time grids of one session. "Seconds" are the epoch seconds that contain at least one L1 row."""

    intervals: list[OpenInterval]
    l1_ts: np.ndarray  # (n_steps,) int64 epoch ms
    l2_ts: np.ndarray  # (n_snapshots,) int64 epoch ms
    sec_ms: np.ndarray  # (n_sec,) int64 epoch ms of each second's start
    step_sec: np.ndarray  # (n_steps,) index into sec_ms
    sec_et_hour: np.ndarray  # (n_sec,) float ET hour of day
    sec_day: np.ndarray  # (n_sec,) trading-day index 0..n_days-1

    @property
    def n_steps(self) -> int:
        return len(self.l1_ts)

    @property
    def n_sec(self) -> int:
        return len(self.sec_ms)

    @property
    def day_ordinal(self) -> np.ndarray:
        """(n_days,) date ordinal of each trading day (the ET date it closes on), by ``sec_day`` index."""
        return np.array(sorted({iv.trading_day for iv in self.intervals}), dtype=np.int64)


def build_grid(start_ms: int, end_ms: int, l1_interval_ms: int, l2_interval_ms: int) -> Grid:
    intervals = open_intervals(start_ms, end_ms)
    l1 = open_times(start_ms, end_ms, l1_interval_ms, intervals)
    l2 = open_times(start_ms, end_ms, l2_interval_ms, intervals)
    sec = l1 // 1000
    new = np.empty(len(sec), dtype=bool)
    new[:1] = True
    np.not_equal(sec[1:], sec[:-1], out=new[1:])
    step_sec = np.cumsum(new) - 1
    sec_ms = sec[new] * 1000
    if not intervals:
        empty = np.zeros(0, dtype=np.int64)
        return Grid(intervals, l1, l2, sec_ms, step_sec, np.zeros(0), empty)
    # Per-second ET offset and trading day, from the interval of the second's first L1 row.
    first_ts = l1[new]
    bounds = np.array([iv.open_ms for iv in intervals], dtype=np.int64)
    which = np.searchsorted(bounds, first_ts, side="right") - 1
    offsets = np.array([iv.utc_offset_ms for iv in intervals], dtype=np.int64)
    days = np.array([iv.trading_day for iv in intervals], dtype=np.int64)
    et_hour = ((first_ts + offsets[which]) % DAY_MS) / HOUR_MS
    sec_day = np.unique(days, return_inverse=True)[1][which]
    return Grid(intervals, l1, l2, sec_ms, step_sec, et_hour, sec_day.astype(np.int64))


def is_open(ts_ms: np.ndarray) -> np.ndarray:
    """True where an epoch-ms time falls inside a Globex open interval."""
    ts_ms = np.asarray(ts_ms, dtype=np.int64)
    if ts_ms.size == 0:
        return np.zeros(0, dtype=bool)
    ivs = open_intervals(int(ts_ms.min()), int(ts_ms.max()) + 1)
    if not ivs:
        return np.zeros(ts_ms.shape, dtype=bool)
    opens = np.array([i.open_ms for i in ivs])
    closes = np.array([i.close_ms for i in ivs])
    k = np.searchsorted(opens, ts_ms, side="right") - 1
    return (k >= 0) & (ts_ms < closes[np.clip(k, 0, None)])


def et_hour(ts_ms: np.ndarray) -> np.ndarray:
    """ET hour of day (float) of epoch-ms times inside Globex open intervals (NaN elsewhere)."""
    ts_ms = np.asarray(ts_ms, dtype=np.int64)
    out = np.full(ts_ms.shape, np.nan)
    if ts_ms.size == 0:
        return out
    ivs = open_intervals(int(ts_ms.min()), int(ts_ms.max()) + 1)
    if not ivs:
        return out
    opens = np.array([i.open_ms for i in ivs])
    closes = np.array([i.close_ms for i in ivs])
    offsets = np.array([i.utc_offset_ms for i in ivs])
    k = np.clip(np.searchsorted(opens, ts_ms, side="right") - 1, 0, None)
    inside = (ts_ms >= opens[k]) & (ts_ms < closes[k])
    out[inside] = ((ts_ms[inside] + offsets[k[inside]]) % DAY_MS) / HOUR_MS
    return out
