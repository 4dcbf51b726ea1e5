"""`mia health` (the guide's ``data_health_check.py``): the daily checklist on one screen, read from disk.

:func:`health_report` gathers, without changing anything: the collector (state, pid, system-metrics
sampler), the landing-zone lag and last stored event, today's collection metrics against the guide's
targets (and the newest day with data when today has none yet), open alerts, the last backup, free space
on the data and backup volumes, and the last integrity verdict. Each item has a status:

- ``fail``: unhealthy (an open CRITICAL/ERROR alert, a dead collector, a volume under the
  ``monitoring.storage_min_free_*`` threshold, an integrity run that found problems, a damaged state file);
- ``warn``: worth a look (a metric outside its target, an open WARNING alert, no backup or integrity
  run yet, collector never started);
- ``ok``.

``healthy`` is True when no item fails (`mia health` exits 1 otherwise).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

from mia_pipeline.layout import Layout
from mia_pipeline.quality.metrics import TARGETS, compute_day_metrics, target_text, within
from mia_pipeline.settings import Settings
from mia_pipeline.storage import PartitionStore

OK, WARN, FAIL = "ok", "warn", "fail"


def _item(name: str, status: str, summary: str, **details) -> dict:
    return {"name": name, "status": status, "summary": summary, "details": details}


def _collector(layout: Layout) -> dict:
    from mia_pipeline.collection.collector import collector_state

    state = collector_state(layout)
    what = str(state.get("state", "unknown"))
    sampler = (state.get("system_metrics") or {}).get("state")
    extra = f"; system metrics {sampler}" if sampler and what == "running" else ""
    if what == "running":
        return _item("collector", OK, f"running (pid {state.get('pid')}), last pass {state.get('last_run_at', '-')}"
                     + extra, **state)
    if what.startswith(("dead", "damaged")):
        return _item("collector", FAIL, what, **state)
    return _item("collector", WARN, f"{what}: nothing collects the landing zone live (`mia collect start`, or "
                 "the landing_zone_sensor under `make ui`)", **state)


def _lag(layout: Layout, store: PartitionStore) -> dict:
    from mia_pipeline.collection.landing import landing_lag
    from mia_pipeline.collection.status import last_event_time

    pending = sum(landing_lag(layout).values())
    last = last_event_time(store, store.days_present())
    when = last.isoformat() if last else "none stored"
    return _item("landing lag", OK, f"{pending:,} byte(s) waiting in the landing zone; last stored event {when}",
                 pending_bytes=pending, last_event=last.isoformat() if last else None)


def _metrics(layout: Layout, store: PartitionStore, day: str, label: str) -> dict:
    m = compute_day_metrics(layout, store, day)
    if not m["events"]:
        return _item(label, WARN if label == "today" else OK, f"{day}: no events stored yet", **m)
    missed = [n for n in TARGETS if within(n, m.get(n)) is False]
    parts = [f"{m['events']:,} events", f"snapshots/h {m['snapshots_per_hour']}",
             f"quality {m['data_quality_score']}", f"missing {m['missing_data_rate']}",
             f"storage {m['storage_mb']} MB",
             (f"lag p50 {m['ingestion_lag_p50_s']:.0f}s p99 {m['ingestion_lag_p99_s']:.0f}s" if m["live"]
              else f"landed after the fact (lag p50 {m['ingestion_lag_p50_s'] / 3600:.1f} h: not live)")]
    summary = f"{day}: " + ", ".join(parts)
    if missed:
        summary += "; outside target: " + ", ".join(f"{n} (target {target_text(n)})" for n in missed)
    return _item(label, WARN if missed else OK, summary, **m)


def _alerts(layout: Layout) -> dict:
    from mia_pipeline.quality.alerts import open_alerts, state_problem

    alerts = open_alerts(layout)
    damaged = state_problem(layout)
    note = (f" (the alert state file is damaged: {damaged}; open alerts read from alerts.jsonl; the next "
            "alert_sensor tick rebuilds it)") if damaged else ""
    if not alerts:
        return _item("open alerts", WARN if damaged else OK, "none" + note, alerts=[])
    worst = FAIL if any(a.get("level") in ("CRITICAL", "ERROR") for a in alerts) else WARN
    text = "; ".join(f"{a.get('level')} {a.get('name')} since {a.get('opened_at')}: "
                     f"{a.get('last_message', a.get('message'))}" for a in alerts)
    return _item("open alerts", worst, text + note, alerts=alerts)


def _backup(layout: Layout, settings: Settings) -> dict:
    from mia_pipeline.lifecycle.blobstore import TargetEmpty, TargetError
    from mia_pipeline.lifecycle.catalog import list_backups, target_for

    try:
        target = target_for(layout, settings)
        target.prepare(create=False)  # a missing mount or bucket, a damaged marker: not "no backup yet"
        good, damaged = list_backups(target)
    except TargetEmpty:
        good, damaged = [], {}
    except (TargetError, OSError, ValueError) as exc:  # a disk or object store failing; a malformed S3 endpoint
        return _item("last backup", FAIL, f"the backup target cannot be read: {exc}")
    if not good:
        return _item("last backup", WARN, "no backup yet (`mia backup --full`; the schedules make one nightly)",
                     damaged=damaged)
    b = good[0]
    status = WARN if damaged or b.damaged else OK
    note = f"; {len(damaged)} damaged manifest(s)" if damaged else ""
    return _item("last backup", status, f"{b.kind}/{b.id} ({b.mode}) finished {b.finished_at}, {len(b.files):,} "
                 f"file(s){note}", id=b.id, kind=b.kind, finished_at=b.finished_at, damaged=damaged)


def volume_free(path) -> tuple[int, float]:
    """(free bytes, free %) of the volume holding ``path`` (its nearest existing parent)."""
    from pathlib import Path

    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    usage = shutil.disk_usage(p)
    return usage.free, 100.0 * usage.free / usage.total if usage.total else 0.0


def _disk(layout: Layout, settings: Settings) -> dict:
    mon = settings.monitoring
    volumes = {"data": layout.root}
    if settings.backup.local_target is not None:  # object storage has no local volume to watch
        volumes["backup"] = settings.backup.local_target
    figures, low = {}, []
    for name, path in volumes.items():
        free, pct = volume_free(path)
        figures[name] = {"path": str(path), "free_mb": round(free / 1e6, 1), "free_pct": round(pct, 2)}
        if free / 1e6 < mon.storage_min_free_mb or pct < mon.storage_min_free_pct:
            low.append(name)
    text = ", ".join(f"{n} {f['free_mb']:,.0f} MB free ({f['free_pct']:.1f}%)" for n, f in figures.items())
    limit = f" (threshold {mon.storage_min_free_mb} MB / {mon.storage_min_free_pct}%)"
    return _item("disk free", FAIL if low else OK, text + (f"; LOW on {', '.join(low)}{limit}" if low else ""),
                 volumes=figures, low=low)


def _integrity(layout: Layout) -> dict:
    from mia_pipeline.collection.integrity import INTEGRITY_RESULT, last_integrity_result

    r = last_integrity_result(layout)
    if r is None and (layout.reports_dir / INTEGRITY_RESULT).exists():
        return _item("last integrity", WARN, f"the verdict file reports/{INTEGRITY_RESULT} is damaged: run "
                     "`mia check-integrity` to record a new one")
    if r is None:
        return _item("last integrity", WARN, "never run (`mia check-integrity`; the daily_integrity job runs 04:00)")
    if r["problems"]:
        return _item("last integrity", FAIL, f"{r['problems']} problem(s) at {r['checked_at']} ({r['by']}): "
                     + "; ".join(r.get("first") or []), **r)
    return _item("last integrity", OK, f"0 problems at {r['checked_at']} ({r['by']}, {r['scope']})", **r)


def health_report(layout: Layout, store: PartitionStore, settings: Settings, now: datetime | None = None) -> dict:
    """Every item of the health screen (see the module docstring) and the verdict."""
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date().isoformat()
    items = [_collector(layout), _lag(layout, store), _metrics(layout, store, today, "today")]
    stored = [d for d in store.days_present() if d < today]
    if stored:
        items.append(_metrics(layout, store, stored[-1], "last day stored"))
    items += [_alerts(layout), _backup(layout, settings), _disk(layout, settings), _integrity(layout)]
    from mia_pipeline.collection.integrity import hidden_local_partitions

    items += [_item("local partitions", WARN, note) for note in hidden_local_partitions(layout)]
    return {"checked_at": now.isoformat(timespec="seconds"), "data_dir": str(layout.root),
            "healthy": not any(i["status"] == FAIL for i in items), "items": items}
