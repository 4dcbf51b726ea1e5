"""The alert engine: one alert per incident, a resolution when it clears, state that survives restarts
and damage, clocks that jump, a market that closes. Time is injected (``now``/``mono``), never slept."""

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from alert_doubles import Clock, settings_for

from mia_pipeline.quality.alerts import (
    evaluate_alerts,
    open_alerts,
    raise_incident,
    read_alerts,
    report_alert,
    resolve_incident,
)


def set_cursor(layout, offset: int) -> None:
    """What the collector commits: ingest_state.json with one file's offset."""
    layout.ingest_state_file.parent.mkdir(parents=True, exist_ok=True)
    layout.ingest_state_file.write_text(json.dumps({"files": {"a.jsonl": {"offset": offset, "inode": 1}}}))


def incidents(layout, name=None):
    return [a for a in read_alerts(layout) if a.get("name") and (name is None or a["name"] == name)]


def run(layout, settings, clock, **kw):
    return evaluate_alerts(layout, settings, **clock.kw, **{"market_open": True, **kw})


def test_collection_stopped_fires_once_stays_quiet_and_resolves_once(layout):
    settings, clock = settings_for(layout, collection_stopped_minutes=5), Clock()
    set_cursor(layout, 100)
    assert run(layout, settings, clock).fired == []  # the first look sets the baseline
    for _ in range(4):
        assert run(layout, settings, clock.advance(1)).fired == []  # 4 min: under the threshold
    ev = run(layout, settings, clock.advance(1))
    (fired,) = ev.fired
    assert fired["name"] == "collection_stopped" and fired["level"] == "CRITICAL" and fired["state"] == "firing"
    assert "5 min" in fired["message"] and "collector: never started" in fired["message"]
    assert [a["name"] for a in ev.open] == ["collection_stopped"]
    for _ in range(10):  # still stopped: nothing new
        ev = run(layout, settings, clock.advance(1))
        assert ev.fired == [] and len(ev.open) == 1
    set_cursor(layout, 250)
    ev = run(layout, settings, clock.advance(1))
    (resolved,) = ev.resolved
    assert resolved["state"] == "resolved" and resolved["incident"] == fired["incident"] and ev.open == []
    assert run(layout, settings, clock.advance(1)).resolved == []
    assert [a["state"] for a in incidents(layout)] == ["firing", "resolved"]


def test_any_cursor_change_is_progress_even_a_lower_one(layout):
    """A reset lowers the sum of offsets: still progress, not a stall."""
    settings, clock = settings_for(layout, collection_stopped_minutes=5), Clock()
    set_cursor(layout, 500)
    run(layout, settings, clock)
    run(layout, settings, clock.advance(4))
    set_cursor(layout, 10)
    assert run(layout, settings, clock.advance(4)).fired == []
    assert run(layout, settings, clock.advance(4)).fired == []  # 4 min since the change
    assert len(run(layout, settings, clock.advance(1)).fired) == 1


EVALUATE_IN_A_NEW_PROCESS = """
import sys
from datetime import datetime
from alert_doubles import settings_for
from mia_pipeline.layout import Layout
from mia_pipeline.quality.alerts import evaluate_alerts
layout = Layout(sys.argv[1])
ev = evaluate_alerts(layout, settings_for(layout), now=datetime.fromisoformat(sys.argv[2]), mono=float(sys.argv[3]),
                     market_open=True)
print(len(ev.fired), len(ev.resolved), len(ev.open))
"""


def test_state_survives_a_restart(layout):
    """A new process reads the open incident from disk: no second alert, one resolution."""
    settings, clock = settings_for(layout), Clock()
    set_cursor(layout, 100)
    run(layout, settings, clock)
    assert len(run(layout, settings, clock.advance(6)).fired) == 1

    def in_new_process():
        out = subprocess.run([sys.executable, "-c", EVALUATE_IN_A_NEW_PROCESS, str(layout.root),
                              clock.now.isoformat(), str(clock.mono)], capture_output=True, text=True,
                             cwd=str(__import__("pathlib").Path(__file__).parent), check=True)
        return out.stdout.split()

    assert in_new_process() == ["0", "0", "1"]
    clock.advance(3)
    assert in_new_process() == ["0", "0", "1"]
    set_cursor(layout, 200)
    clock.advance(1)
    assert in_new_process() == ["0", "1", "0"]
    assert [a["state"] for a in incidents(layout)] == ["firing", "resolved"]


@pytest.mark.parametrize("damage", [b"\x00\xff garbage \x9c", b"[]", b'{"version": 1, "incidents": []}',
                                    b'{"version": 1, "incidents": {"x": 3}, "outbox": []}'],
                         ids=["garbage-bytes", "a-list", "incidents-a-list", "incident-not-an-object"])
def test_a_damaged_state_file_is_reported_moved_aside_and_rebuilt_without_duplicates(layout, damage):
    settings, clock = settings_for(layout), Clock()
    set_cursor(layout, 100)
    run(layout, settings, clock)
    (fired,) = run(layout, settings, clock.advance(6)).fired
    layout.alerts_state_file.write_bytes(damage)

    ev = run(layout, settings, clock.advance(1))
    assert ev.fired == [] and [a["incident"] for a in ev.open] == [fired["incident"]]  # recovered from the log
    assert any("damaged" in n and "moved aside" in n for n in ev.notes), ev.notes
    (aside,) = layout.alerts_state_file.parent.glob("alert_state.json.bad-*")
    assert aside.read_bytes() == damage
    warning = [a for a in read_alerts(layout) if a.get("source") == "alerts" and not a.get("name")]
    assert len(warning) == 1 and warning[0]["level"] == "WARNING" and "damaged" in warning[0]["message"]
    assert json.loads(layout.alerts_state_file.read_bytes())["version"] == 1  # rebuilt, well formed

    assert run(layout, settings, clock.advance(1)).fired == []  # no flood: nothing new on later ticks
    set_cursor(layout, 200)
    (resolved,) = run(layout, settings, clock.advance(1)).resolved
    assert resolved["incident"] == fired["incident"]


def test_open_alerts_reads_the_log_when_the_state_is_damaged(layout):
    raise_incident(layout, "backup_failed", "backup failed: x", key="full")
    layout.alerts_state_file.write_bytes(b"{oops")
    assert [a["name"] for a in open_alerts(layout)] == ["backup_failed"]
    assert layout.alerts_state_file.read_bytes() == b"{oops"  # read-only: moved aside by the next evaluation


def test_a_forward_clock_jump_neither_fires_nor_resolves(layout):
    settings, clock = settings_for(layout), Clock()
    set_cursor(layout, 100)
    run(layout, settings, clock)
    ev = run(layout, settings, clock.advance(1).jump(180))  # wall +3 h, monotonic +1 min
    assert ev.fired == [] and ev.clock_jump_s == pytest.approx(180 * 60)
    assert any("clock jumped +10800 s" in n for n in ev.notes)
    assert run(layout, settings, clock.advance(3)).fired == []  # 4 real minutes: not yet
    assert len(run(layout, settings, clock.advance(1)).fired) == 1  # 5 real minutes: now


def test_a_backward_clock_jump_does_not_swallow_the_alert(layout):
    settings, clock = settings_for(layout), Clock()
    set_cursor(layout, 100)
    run(layout, settings, clock)
    ev = run(layout, settings, clock.advance(6).jump(-180))  # 6 real minutes while the wall went back 3 h
    assert len(ev.fired) == 1 and ev.clock_jump_s == pytest.approx(-180 * 60)
    ev = run(layout, settings, clock.advance(1).jump(200))  # and forward again: still one incident, still open
    assert ev.fired == [] and ev.resolved == [] and len(ev.open) == 1


@pytest.mark.parametrize(("start", "why"), [
    (datetime(2025, 12, 25, 15, 0, tzinfo=UTC), "CME holiday"),   # Christmas
    (datetime(2025, 12, 27, 15, 0, tzinfo=UTC), "weekend"),       # Saturday
    (datetime(2025, 6, 23, 21, 2, tzinfo=UTC), "daily halt"),     # 16:02 CT: the 16:00-17:00 CT halt
])
def test_no_collection_stopped_while_the_market_is_closed(layout, start, why):
    settings, clock = settings_for(layout, collection_stopped_minutes=5), Clock(start)
    set_cursor(layout, 100)
    for _ in range(12):  # 55 min without progress (the halt lasts 60)
        ev = evaluate_alerts(layout, settings, **clock.kw)
        assert ev.fired == [] and any(why in n for n in ev.notes), ev.notes
        clock.advance(5)


def test_the_calendar_counts_only_open_minutes(layout):
    """Stalled from 15:50 CT: 9 counted open minutes before the halt, none during it, 6 after the 17:00 CT
    reopen (the first look after a closure counts nothing), so a 15-minute alert fires at 17:06 CT, not
    at 16:05 CT as wall time since the last progress would have it."""
    settings, clock = settings_for(layout, collection_stopped_minutes=15), Clock(datetime(2025, 6, 23, 20, 50, tzinfo=UTC))
    set_cursor(layout, 100)
    fired_at = None
    for _ in range(90):
        if evaluate_alerts(layout, settings, **clock.kw).fired:
            fired_at = clock.now
            break
        clock.advance(1)
    assert fired_at == datetime(2025, 6, 23, 22, 6, tzinfo=UTC)


def test_data_quality_low_fires_below_the_floor_and_decides_nothing_without_a_score(layout):
    settings, clock = settings_for(layout, quality_min=0.95), Clock()
    path = layout.metrics_file(clock.now.date())
    path.parent.mkdir(parents=True, exist_ok=True)
    market_closed = {"market_open": False}
    assert run(layout, settings, clock, **market_closed).fired == []  # no metrics file: no decision
    path.write_text(json.dumps({"day": "2025-06-23", "data_quality_score": 0.91}))
    (fired,) = run(layout, settings, clock.advance(1), **market_closed).fired
    assert fired["level"] == "WARNING" and "0.910" in fired["message"] and "0.95" in fired["message"]
    path.write_text(json.dumps({"day": "2025-06-23", "data_quality_score": None}))
    ev = run(layout, settings, clock.advance(1), **market_closed)
    assert ev.fired == ev.resolved == [] and len(ev.open) == 1  # null: neither fire nor resolve
    path.unlink()
    assert run(layout, settings, clock.advance(1), **market_closed).resolved == []
    path.write_text(json.dumps({"day": "2025-06-23", "data_quality_score": 0.97}))
    (resolved,) = run(layout, settings, clock.advance(1), **market_closed).resolved
    assert resolved["incident"] == fired["incident"]


def test_storage_full_names_the_volume_and_resolves(layout, tmp_path):
    clock = Clock()
    full = settings_for(layout, storage_min_free_pct=99.99, backup_target=tmp_path / "bk")
    (fired,) = run(layout, full, clock, market_open=False).fired  # data and backup share this disk: one alert
    assert fired["name"] == "storage_full" and fired["level"] == "CRITICAL" and fired["key"] == "data"
    assert "data and backup volume" in fired["message"] and str(layout.root) in fired["message"]
    assert fired["context"]["free_mb"] >= 0 and "99.99%" in fired["message"]
    assert run(layout, full, clock.advance(1), market_open=False).fired == []
    (resolved,) = run(layout, settings_for(layout), clock.advance(1), market_open=False).resolved
    assert resolved["incident"] == fired["incident"]


def test_backup_failures_join_the_incident_path_and_a_clean_backup_resolves(layout):
    from mia_pipeline.lifecycle.backup import run_backup

    settings, clock = settings_for(layout), Clock(datetime.now(UTC))
    first = report_alert(layout, "WARNING", "backup", "backup failed: disk full", mode="full", target="/mnt/b")
    again = report_alert(layout, "WARNING", "backup", "backup failed: read-only", mode="full", target="/mnt/b")
    assert first["name"] == "backup_failed" and first["state"] == "firing" and again is None
    (opened,) = open_alerts(layout)
    assert opened["repeats"] == 1 and "read-only" in opened["last_message"]
    assert report_alert(layout, "WARNING", "retention", "kept 2 items")["context"] == {}  # other sources: plain
    assert run(layout, settings, clock, market_open=False).resolved == []  # no clean backup yet
    run_backup(layout, settings, "incremental")
    assert run(layout, settings, clock.advance(1), market_open=False).resolved == []  # another mode
    run_backup(layout, settings, "full")
    (resolved,) = run(layout, settings, clock.advance(1), market_open=False).resolved
    assert resolved["name"] == "backup_failed" and resolved["incident"] == first["incident"]
    assert "succeeded" in resolved["message"]


def test_event_driven_incidents_open_and_close_once(layout):
    assert raise_incident(layout, "job_failed", "job x failed", key="run-1", job="x")["level"] == "ERROR"
    assert raise_incident(layout, "job_failed", "job x failed", key="run-1", job="x") is None
    assert raise_incident(layout, "job_failed", "job x failed", key="run-2", job="x") is not None
    assert resolve_incident(layout, "job_failed", "job x succeeded", key="run-1")["state"] == "resolved"
    assert resolve_incident(layout, "job_failed", "job x succeeded", key="run-1") is None
    assert [a["key"] for a in open_alerts(layout)] == ["run-2"]


def test_a_data_root_that_never_collected_does_not_raise_collection_stopped(layout):
    """Fresh or demo roots: no cursor and a collector never started — nothing to miss until the first event."""
    settings, clock = settings_for(layout), Clock()
    run(layout, settings, clock)
    ev = run(layout, settings, clock.advance(30))
    assert ev.fired == [] and any("never run" in n for n in ev.notes)
    set_cursor(layout, 10)  # the first event lands: armed
    run(layout, settings, clock.advance(1))
    assert len(run(layout, settings, clock.advance(5)).fired) == 1


def test_collection_turned_off_raises_nothing(layout):
    settings, clock = settings_for(layout), Clock()
    off = settings.model_copy(update={"data_collection": settings.data_collection.model_copy(update={"enabled": False})})
    set_cursor(layout, 10)
    run(layout, off, clock)
    assert run(layout, off, clock.advance(60)).fired == []
    assert run(layout, settings, clock.advance(1)).fired == []  # turned on again: the count starts afresh
