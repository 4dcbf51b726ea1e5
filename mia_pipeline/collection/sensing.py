"""What the landing-zone sensor should request, as a pure function of disk state and its cursor.

Cursor: ``{"requested": {file: end offset}, "requested_at": epoch seconds}``. Committed offsets are
the ingestion's (``landing.load_state``). A request covers everything uncommitted up to the current
complete end of each file; the day range spans the UTC days of those events (clamped to the
partition range).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from mia_pipeline.collection import landing
from mia_pipeline.collection.merge import split_by_day
from mia_pipeline.collection.quarantine import reject_day
from mia_pipeline.layout import Layout
from mia_pipeline.schemas import parse_lines


@dataclass
class RequestPlan:
    until: dict[str, int]
    day_range: tuple[str, str]
    run_key: str
    cursor: dict


def event_days(data: bytes, now_ms: int) -> set[str]:
    res = parse_lines(data, now_ms=now_ms)
    days = set()
    for table in res.tables.values():
        days.update(d for d, _ in split_by_day(table))
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date().isoformat()
    days.update(reject_day(r.raw, today) for r in res.rejects)
    return days


def plan_landing_zone_request(
    layout: Layout, cursor: dict, *, now: float, retry_after_s: float, first_day: str, last_day: str
) -> RequestPlan | None:
    requested = cursor.get("requested", {})
    fresh = now - float(cursor.get("requested_at", 0)) < retry_after_s
    todo = landing.pending(layout)
    if fresh:
        # Already asked for up to `requested`: only bytes beyond it are news.
        if not [p for p in todo if p.end > requested.get(p.name, 0)]:
            return None
    if not todo:
        return None
    days: set[str] = set()
    now_ms = int(now * 1000)
    for p in todo:
        days |= event_days(landing.read_range(p), now_ms)
    clamped = sorted(min(max(d, first_day), last_day) for d in days) or [last_day]
    until = {p.name: p.end for p in todo}
    # A retry (the earlier request never committed) needs a new run key: Dagster skips used ones.
    retry = not fresh and any(requested.get(p.name, 0) >= p.end for p in todo)
    digest = hashlib.sha256(json.dumps([until, int(now) if retry else 0], sort_keys=True).encode()).hexdigest()[:16]
    return RequestPlan(
        until=until,
        day_range=(clamped[0], clamped[-1]),
        run_key=f"landing-{digest}",
        cursor={"requested": {**requested, **until}, "requested_at": now},
    )
