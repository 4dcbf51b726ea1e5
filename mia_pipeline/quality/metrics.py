"""Collection metrics of one UTC day (guide §4.1), computed from what is stored, not from a writer's claims.

Inputs: the day's stored raw lines (``raw_events``: every landed event with its ``ts`` and the time it was
``received_at``; the collector's own system-metrics samples are left out: they run all day whatever the
market data does), its ``trades`` and ``signals`` partitions, its quarantine and the size of its folder.

- ``snapshots_per_hour`` (target 50-200): trade and signal snapshots stored, per hour of the *recorded
  session* (from the day's first to its last event); ``hourly`` lists the count of every UTC hour.
- ``completeness``: share of the CME Globex open minutes (exchange_calendars ``CMES`` sessions, daily halt) inside the recorded
  session that hold at least one event; ``missing_data_rate`` (target < 0.01) is ``1 - completeness``.
  ``session_coverage`` (information): the recorded session's open minutes / the day's CME open minutes
  (a trading system that runs regular hours only records about 0.28 of Globex).
- ``validity``: ``1 - quarantined / (stored + quarantined)`` lines of the day.
- ``ingestion_lag_p50_s`` / ``_p99_s``: ``received_at - ts`` of the day's events. A day is *live* when its
  median lag is under an hour; then ``timeliness`` is the share landed within
  :data:`TIMELY_S`; a day landed later (imported, backfilled, simulated) has ``timeliness`` None: it says
  nothing about live collection.
- ``data_quality_score`` (target > 0.95): ``completeness * validity * timeliness`` (timeliness counts
  as 1 when None). None when the day has no event (there is nothing to score).
- ``storage_mb``: the day's folder on disk (partitions, manifest, raw lines): the storage growth of that day.

:func:`compute_day_metrics` returns the figures; :func:`write_day_metrics` also stores them atomically in
``reports/metrics/YYYY-MM-DD.json`` (the ``collection_metrics`` partition); :func:`read_day_metrics`
reads one back (None when absent or damaged).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import numpy as np
import pyarrow.compute as pc

from mia_pipeline.collection.system_sampler import EVENT_ID_PREFIX
from mia_pipeline.layout import RAW_EVENTS, Layout, parse_day
from mia_pipeline.storage import PartitionStore
from mia_pipeline.storage.atomic import atomic_write_json

TIMELY_S = 300          # an event landed within 5 minutes of its timestamp is on time
LIVE_MEDIAN_LAG_S = 3600
TARGETS = {
    "snapshots_per_hour": (50, 200),
    "data_quality_score": (0.95, None),
    "missing_data_rate": (None, 0.01),
}
SNAPSHOT_DATASETS = ("trades", "signals")


def _open_minutes(day: date) -> np.ndarray:
    """Epoch minutes of the UTC day when CME Globex is open (CMES sessions, daily halt, early closes)."""
    from mia_pipeline.synthetic.schedule import open_intervals

    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) // 60
    end = start + 24 * 60
    parts = [np.arange(max(iv.open_ms // 60_000, start), min(-(-iv.close_ms // 60_000), end), dtype=np.int64)
             for iv in open_intervals(start * 60_000, end * 60_000)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _ms(table, column: str) -> np.ndarray:
    return pc.cast(table.column(column), "int64").to_numpy(zero_copy_only=False)


def within(name: str, value) -> bool | None:
    """Whether a figure meets its guide target (None: no target, or no value)."""
    if name not in TARGETS or value is None:
        return None
    lo, hi = TARGETS[name]
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def target_text(name: str) -> str:
    """The guide's target of a figure, e.g. ``50-200``, ``> 0.95``, ``< 0.01``."""
    lo, hi = TARGETS[name]
    return f"{lo}-{hi}" if lo is not None and hi is not None else (f"> {lo}" if lo is not None else f"< {hi}")


def _raw_facts(store: PartitionStore, day: str) -> dict:
    """Counts by kind, first/last event, the minutes holding an event, lag percentiles (linear, as numpy's)
    and the share landed within TIMELY_S, of the day's raw lines without the collector's host samples.
    One DuckDB scan of the day's file, in bounded memory (a day of ticks is millions of lines); a day
    read back from the archive goes through Arrow."""
    from mia_pipeline.quality.checks import scan_connection

    path = None if store.archived(day, RAW_EVENTS) else store.committed_file(day, RAW_EVENTS)
    with scan_connection() as con:
        if path is not None:
            con.read_parquet(str(path)).create_view("raw_all")
        else:
            table = store.read(day, RAW_EVENTS, columns=["ts", "received_at", "kind", "event_id"])
            if table is None:
                return {"events": 0, "by_kind": {}}
            con.register("raw_all", table)
        base = (f"SELECT epoch_ms(ts) AS t, epoch_ms(received_at) AS r, kind FROM raw_all "
                f"WHERE NOT starts_with(event_id, '{EVENT_ID_PREFIX}')")
        by_kind = {k: int(c) for k, c in con.execute(f"SELECT kind, count(*) FROM ({base}) GROUP BY kind").fetchall()}
        n = sum(by_kind.values())
        if not n:
            return {"events": 0, "by_kind": {}}
        first, last, p50, p99, timely = con.execute(
            f"SELECT min(t), max(t), quantile_cont((r - t) / 1000.0, 0.5), quantile_cont((r - t) / 1000.0, 0.99), "
            f"avg(((r - t) / 1000.0 <= {TIMELY_S})::DOUBLE) FROM ({base})").fetchone()
        minutes = con.execute(f"SELECT DISTINCT t // 60000 AS m FROM ({base})").fetchnumpy()["m"]
    return {"events": n, "by_kind": by_kind, "first": int(first), "last": int(last), "lag_p50_s": p50,
            "lag_p99_s": p99, "timely": timely, "minutes": np.asarray(minutes, dtype=np.int64)}


def compute_day_metrics(layout: Layout, store: PartitionStore, day: str | date) -> dict:
    """The figures of one day (see the module docstring); every value is a plain JSON type."""
    from mia_pipeline.collection.quarantine import counts_by_reason

    d = parse_day(day)
    key = d.isoformat()
    raw = _raw_facts(store, key)
    n = raw["events"]
    quarantined = sum(counts_by_reason(layout, [key]).get(key, {}).values())
    out: dict = {"day": key, "events": n, "quarantined": int(quarantined),
                 "computed_at": datetime.now(UTC).isoformat(timespec="seconds")}
    out["events_by_kind"] = raw["by_kind"]
    out["validity"] = round(1 - quarantined / (n + quarantined), 6) if n + quarantined else None
    out["storage_mb"] = round(store.day_bytes(key) / 1e6, 3)
    open_all = _open_minutes(d)
    out["cme_open_minutes"] = int(len(open_all))
    hourly = np.zeros(24, dtype=np.int64)
    for ds in SNAPSHOT_DATASETS:
        t = store.read(key, ds, columns=["ts"])
        if t is not None and t.num_rows:
            hours = (_ms(t, "ts") // 3_600_000) % 24
            hourly += np.bincount(hours, minlength=24)
    out["hourly_snapshots"] = hourly.tolist()
    if not n:
        out.update(recorded_session=None, snapshots_per_hour=None, completeness=None, missing_data_rate=None,
                   session_coverage=0.0 if len(open_all) else None, ingestion_lag_p50_s=None,
                   ingestion_lag_p99_s=None, live=False, timeliness=None, data_quality_score=None)
        return out
    first, last = raw["first"], raw["last"]
    span_h = max((last - first) / 3_600_000, 1 / 60)
    out["recorded_session"] = [datetime.fromtimestamp(first / 1000, UTC).isoformat(timespec="seconds"),
                               datetime.fromtimestamp(last / 1000, UTC).isoformat(timespec="seconds")]
    out["snapshots_per_hour"] = round(float(hourly.sum()) / span_h, 2)
    minutes = raw["minutes"]
    in_span = open_all[(open_all >= first // 60_000) & (open_all <= last // 60_000)]
    if len(in_span):
        covered = np.isin(in_span, minutes).sum()
        out["completeness"] = round(float(covered) / len(in_span), 6)
        out["missing_data_rate"] = round(1 - out["completeness"], 6)
    else:  # events only while the market was closed (weekend, holiday): nothing was expected
        out["completeness"], out["missing_data_rate"] = None, None
    out["session_coverage"] = round(len(in_span) / len(open_all), 6) if len(open_all) else None
    p50, p99 = raw["lag_p50_s"], raw["lag_p99_s"]
    out["ingestion_lag_p50_s"], out["ingestion_lag_p99_s"] = round(float(p50), 3), round(float(p99), 3)
    out["live"] = bool(p50 < LIVE_MEDIAN_LAG_S)
    out["timeliness"] = round(float(raw["timely"]), 6) if out["live"] else None
    parts = [out["completeness"], out["validity"], out["timeliness"]]
    out["data_quality_score"] = round(float(np.prod([p for p in parts if p is not None])), 6)
    return out


def write_day_metrics(layout: Layout, store: PartitionStore, day: str | date) -> dict:
    """Compute one day's figures and store them (atomically) as its ``collection_metrics`` partition."""
    figures = compute_day_metrics(layout, store, day)
    path = layout.metrics_file(figures["day"])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, figures)
    return figures


def read_day_metrics(layout: Layout, day: str | date) -> dict | None:
    """A stored day's figures; None when never computed or the file is damaged."""
    try:
        figures = json.loads(layout.metrics_file(day).read_bytes())
    except (OSError, ValueError):
        return None
    return figures if isinstance(figures, dict) and figures.get("day") == parse_day(day).isoformat() else None
