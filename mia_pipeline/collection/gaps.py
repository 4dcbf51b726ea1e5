"""One rule for "a trading day without data" (a gap), used by `mia check-integrity`, `mia status --by-day`
and the ``trading_day_has_data`` partition check, so the UI and the CLI name the same days.

A day is a gap when it is a CME Globex trading day (the "CMES" calendar of exchange_calendars: weekends
and CME full-day holidays are not) and nothing is stored for it (no daily folder, no archived day).

Example: with 2025-06-23 and 2025-06-25 stored, ``gap_days({"2025-06-23", "2025-06-25"})`` is
``["2025-06-24"]`` (a Tuesday); 2025-06-21/22 (a weekend) are never gaps.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from mia_pipeline.layout import parse_day

CALENDAR = "CME Globex (exchange_calendars CMES)"


def is_trading_day(day: str | date) -> bool:
    from mia_pipeline.synthetic.schedule import calendar_session

    return calendar_session(parse_day(day)) is not None


def gap_message(day: str) -> str:
    return f"{day}: a {CALENDAR} trading day with no stored data (collection missed it?)"


def gap_days(stored: Iterable[str], start: date | None = None, end: date | None = None) -> list[str]:
    """Trading days in [start, end] (default: first..last stored day) with nothing stored, oldest first."""
    from mia_pipeline.synthetic.schedule import trading_days

    stored = set(stored)
    if start is None or end is None:
        if not stored:
            return []
        start, end = start or parse_day(min(stored)), end or parse_day(max(stored))
    return [d.isoformat() for d in trading_days(start, end) if d.isoformat() not in stored]
