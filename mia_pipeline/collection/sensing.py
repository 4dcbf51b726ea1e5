"""What the landing-zone sensor should request, as a pure function of disk state and its cursor.

Cursor: ``{"requested": {file: end offset}, "requested_at": epoch seconds}``. Committed offsets are
the ingestion's (``landing.load_state``). A request covers everything uncommitted up to the current
complete end of each file; the run it asks for lands those bytes into whatever days they belong to
(and records exactly those days).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from mia_pipeline.collection import landing
from mia_pipeline.layout import Layout


@dataclass
class RequestPlan:
    until: dict[str, int]
    run_key: str
    cursor: dict


def plan_landing_zone_request(layout: Layout, cursor: dict, *, now: float, retry_after_s: float) -> RequestPlan | None:
    requested = cursor.get("requested", {})
    fresh = now - float(cursor.get("requested_at", 0)) < retry_after_s
    todo = landing.pending(layout)
    if not todo:
        return None
    if fresh and not [p for p in todo if p.end > requested.get(p.name, 0)]:
        return None  # already asked for up to `requested`: only bytes beyond it are news
    until = {p.name: p.end for p in todo}
    # A retry (the earlier request never committed) needs a new run key: Dagster skips used ones.
    retry = not fresh and any(requested.get(p.name, 0) >= p.end for p in todo)
    digest = hashlib.sha256(json.dumps([until, int(now) if retry else 0], sort_keys=True).encode()).hexdigest()[:16]
    return RequestPlan(until=until, run_key=f"landing-{digest}",
                       cursor={"requested": {**requested, **until}, "requested_at": now})
