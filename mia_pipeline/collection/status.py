"""Figures for `mia collect status`: events per day (archived days included), lag, last event time,
quarantine counts, and the days held by each archived month."""

from __future__ import annotations

import pyarrow.compute as pc

from mia_pipeline.collection import landing
from mia_pipeline.collection.collector import collector_state
from mia_pipeline.collection.quarantine import counts_by_reason
from mia_pipeline.layout import DATASETS, RAW_EVENTS, Layout
from mia_pipeline.storage import PartitionStore, archive_index


def last_event_time(store: PartitionStore, days: list[str]):
    """The newest stored event's ts (the newest of ``days`` holding raw lines), or None."""
    for day in reversed(days):
        raw = store.read(day, RAW_EVENTS, columns=["ts"])
        if raw is not None and raw.num_rows:
            return pc.max(raw.column("ts")).as_py()
    return None


def collection_status(layout: Layout, store: PartitionStore, last_days: int = 10) -> dict:
    manifests, damaged = store.readable_manifests()
    per_day = {}
    for day in list(manifests)[-last_days:]:
        ds = manifests[day]["datasets"]
        per_day[day] = {name: ds[name]["rows"] for name in DATASETS if name in ds}
    last_event = last_event_time(store, list(manifests))
    try:
        landing.load_state(layout, strict=True)
        state_problem = None
    except landing.StateFileError as exc:
        state_problem = str(exc)
    state = landing.load_state(layout)
    lag: dict[str, dict] = {}
    for p in landing.pending(layout, state):
        f = lag.setdefault(p.name, {"bytes": 0, "lines": 0})
        f["bytes"] += p.size
        f["lines"] += landing.count_lines(p)
    partial = {name: b for name, b in landing.landing_lag(layout).items() if b and name not in lag}
    return {
        "collector": collector_state(layout),
        "events_per_day": per_day,
        "last_event_time": last_event.isoformat() if last_event else None,
        "lag": {"files": lag, "pending_lines": sum(v["lines"] for v in lag.values()),
                "pending_bytes": sum(v["bytes"] for v in lag.values()),
                "in_progress_bytes": partial},
        "landing_files": len(landing.landing_files(layout)),
        "skipped_files": [{"name": sk.name, "reason": sk.reason} for sk in landing.skipped_files(layout)],
        "ingest_state_problem": state_problem,
        "damaged_days": damaged,
        "archived_days": {m: sorted({d for e in man["datasets"].values() for d in e["days"]})
                          for m, man in archive_index.archived_manifests(layout)[0].items()},
        "quarantine": {d: dict(c) for d, c in counts_by_reason(layout).items()},
    }
