"""Live session views in ``data/live/current_session/``, rewritten atomically after each ingestion.

- ``live_signals.json``: the latest signals (newest last) of the most recent day with signals;
- ``open_positions.json``: trades of the last ``lookback_days`` days without a trade_exit;
- ``system_status.json``: the latest ``system_status`` event per component, plus the collector's
  own figures (last event time, events landed by the last ingestion, landing-zone lag in bytes).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.collection import landing
from mia_pipeline.layout import Layout, LayoutError
from mia_pipeline.schemas import dataset_table_to_events
from mia_pipeline.storage import PartitionStore, StorageError, atomic_write_json

MAX_LIVE_SIGNALS = 100


def _latest_day(store: PartitionStore, dataset: str) -> str | None:
    days = store.days(dataset)
    return days[-1] if days else None


def _read(store: PartitionStore, day: str, dataset: str, skipped: list[str] | None, columns=None) -> pa.Table | None:
    """The day's rows, or None when the partition is damaged (named in ``skipped``): one damaged day
    never stops the views, nor the collector that refreshes them."""
    try:
        return store.read(day, dataset, columns)
    except (StorageError, LayoutError) as exc:
        if skipped is not None:
            skipped.append(f"{day}/{dataset}: {exc}")
        return None


def _window(store: PartitionStore, dataset: str, start: date, end: date, skipped, columns=None) -> pa.Table:
    tables = [t for d in store.days(dataset, start, end) if (t := _read(store, d, dataset, skipped, columns))
              is not None]
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def live_signals(store: PartitionStore, skipped: list[str] | None = None) -> list[dict]:
    day = _latest_day(store, "signals")
    table = _read(store, day, "signals", skipped) if day else None
    if table is None:
        return []
    return dataset_table_to_events("signals", table.slice(max(0, table.num_rows - MAX_LIVE_SIGNALS)))


def open_positions(store: PartitionStore, lookback_days: int = 7, skipped: list[str] | None = None) -> list[dict]:
    last = _latest_day(store, "trades")
    if last is None:
        return []
    end = date.fromisoformat(last)
    start = end - timedelta(days=lookback_days)
    trades = _window(store, "trades", start, end + timedelta(days=1), skipped)
    if trades.num_rows == 0:
        return []
    exits = _window(store, "trade_exits", start, date.today() + timedelta(days=1), skipped, columns=["trade_id"])
    if exits.num_rows:
        trades = trades.filter(pc.invert(pc.is_in(trades.column("trade_id"), value_set=exits.column("trade_id"))))
    return dataset_table_to_events("trades", trades)


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def system_status(layout: Layout, store: PartitionStore, report=None, skipped: list[str] | None = None) -> dict:
    path = layout.live_view("system_status.json")
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        previous = {}
    components = dict(previous.get("components", {}))
    for ev in (report.status_events if report else []):
        name = str(ev.get("component") or ev.get("source") or "system")
        ts = _iso(ev.get("ts"))
        if name not in components or (ts or "") >= (components[name].get("timestamp") or ""):
            components[name] = {k: _iso(v) if isinstance(v, datetime) else v for k, v in ev.items()
                                if k not in ("ts", "content_hash", "extra")} | {"timestamp": ts}
    last_event = None
    for ds in ("market_ticks", "market_bars", "signals", "trades", "trade_exits", "performance"):
        day = _latest_day(store, ds)
        if day:
            t = _read(store, day, ds, skipped, columns=["ts"])
            if t is not None and t.num_rows:
                cand = _iso(pc.max(t.column("ts")).as_py())
                last_event = max(filter(None, [last_event, cand]))
    lag = landing.landing_lag(layout)
    return {
        "updated_at": _iso(datetime.now(UTC)),
        "last_event_time": last_event,
        "landing_zone_lag_bytes": sum(lag.values()),
        "last_ingestion": report.as_dict() if report else previous.get("last_ingestion"),
        "components": components,
        # partitions the views could not read (damaged): left out, said here; `mia check-integrity` details them
        "unreadable_partitions": sorted(set(skipped or [])),
    }


def update_live_views(layout: Layout, store: PartitionStore, report=None) -> dict[str, int]:
    """Rewrite the three live views atomically; returns item counts per view."""
    layout.current_session_dir.mkdir(parents=True, exist_ok=True)
    skipped: list[str] = []
    signals = live_signals(store, skipped)
    positions = open_positions(store, skipped=skipped)
    status = system_status(layout, store, report, skipped)
    atomic_write_json(layout.live_view("live_signals.json"), signals)
    atomic_write_json(layout.live_view("open_positions.json"), positions)
    atomic_write_json(layout.live_view("system_status.json"), status)
    return {"live_signals": len(signals), "open_positions": len(positions), "components": len(status["components"])}
