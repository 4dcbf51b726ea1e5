"""Alerts (guide §4.1): the rules, one alert per incident, its resolution, and delivery.

**The log.** Every alert is one JSON line in ``<data root>/reports/alerts.jsonl``::

    {"ts": "2026-12-01T13:00:00.123Z", "level": "CRITICAL", "source": "alerts",
     "name": "collection_stopped", "state": "firing", "incident": "collection_stopped-20261201T130000Z-1a2b3c",
     "message": "no events landed for 6 min while the CME market is open ...", "context": {...}}

Lines are appended with one ``write`` on an ``O_APPEND`` descriptor and fsynced, so concurrent writers
never interleave inside a line and a recorded alert survives a crash. Plain events (retention,
integrity) are written by :func:`record_alert` without ``name``/``state``.

**Incidents.** A rule names a condition (``collection_stopped``, ``data_quality_low``, ``storage_full``
per volume, ``backup_failed`` per backup mode, ``job_failed`` per run). When it becomes true one
``firing`` line is written; while it stays true nothing new; when it clears one ``resolved`` line.
Open incidents, the ingestion progress seen last and the webhook outbox live in
``reports/alert_state.json`` (written atomically under a lock, so survives restarts). A damaged state
file is moved aside as ``alert_state.json.bad-<UTC stamp>``, reported (a WARNING line and a note), and
rebuilt: open incidents are recovered from the log, so nothing fires twice.

**Time.** Durations ("minutes without progress") add up monotonic-clock deltas between evaluations
(``CLOCK_MONOTONIC`` is system-wide, so every process of one boot agrees; the boot id is stored with
it, and after a reboot the wall clock is used once). A wall-clock jump (wall delta and monotonic
delta differ by more than a minute) is reported in the evaluation's notes and changes no duration,
so it neither fires nor swallows an alert. Only minutes when the CME Globex market is open count
(weekends, CME holidays and the daily 17:00-18:00 ET halt from ``synthetic.schedule.globex_status``).

**Delivery.** Every firing/resolved event also goes to an outbox in the state file; each
:func:`evaluate_alerts` POSTs the outbox to ``monitoring.webhook_url`` (see :mod:`.webhook`), bounded
in total time; undelivered events stay for the next evaluation (at most ``OUTBOX_MAX``). Nothing here
runs inside the collector's ingest loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mia_pipeline.layout import Layout, is_object_url
from mia_pipeline.settings import Settings
from mia_pipeline.storage.atomic import atomic_write_json, locked

ALERTS_FILE = "alerts.jsonl"
LEVELS = ("INFO", "WARNING", "ERROR", "CRITICAL")
RULES = {  # alert name -> level (the guide's names and severities, plus failed Dagster jobs)
    "collection_stopped": "CRITICAL",
    "data_quality_low": "WARNING",
    "storage_full": "CRITICAL",
    "backup_failed": "WARNING",
    "job_failed": "ERROR",
}
STATE_VERSION = 1
OUTBOX_MAX = 200  # undelivered webhook events kept; older ones are dropped (they stay in alerts.jsonl)
CLOCK_JUMP_S = 60.0
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


# ------------------------------------------------------------------------------------------ the log
def alerts_file(layout: Layout) -> Path:
    return layout.reports_dir / ALERTS_FILE


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _append(layout: Layout, event: dict) -> dict:
    line = (json.dumps(event, sort_keys=True, default=str) + "\n").encode()
    path = alerts_file(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return json.loads(line)


def record_alert(layout: Layout, level: str, source: str, message: str, **context) -> dict:
    """Append one plain alert event (no incident) and return it. ``level`` is one of :data:`LEVELS`
    (ValueError otherwise); ``context`` values that are not JSON types are written as their ``str``."""
    if level not in LEVELS:
        raise ValueError(f"unknown alert level {level!r}; levels: {', '.join(LEVELS)}")
    return _append(layout, {"ts": _stamp(datetime.now(UTC)), "level": level, "source": source,
                            "message": message, "context": context})


def report_alert(layout: Layout, level: str, source: str, message: str, **context) -> dict | None:
    """:func:`record_alert`'s signature for the lifecycle doors: a ``backup`` alert raises (or keeps)
    the ``backup_failed`` incident of its mode (resolved once a later clean backup of that mode
    exists); any other source is recorded as a plain event. Returns the line written, or None when
    the incident was already open."""
    if source == "backup":
        key = str(context.get("mode") or "any")
        return raise_incident(layout, "backup_failed", message, key=key, level=level, source=source, **context)
    return record_alert(layout, level, source, message, **context)


def read_alerts(layout: Layout) -> list[dict]:
    """Every alert recorded so far, oldest first (a damaged line is skipped)."""
    path = alerts_file(layout)
    if not path.exists():
        return []
    out = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            out.append(event)
    return out


# ---------------------------------------------------------------------------------------- the state
def _empty_state() -> dict:
    return {"version": STATE_VERSION, "incidents": {}, "outbox": [], "progress": None, "last_eval": None}


def _well_formed(state) -> bool:
    return (isinstance(state, dict) and state.get("version") == STATE_VERSION
            and isinstance(state.get("incidents"), dict)
            and all(isinstance(v, dict) and isinstance(v.get("incident"), str) for v in state["incidents"].values())
            and isinstance(state.get("outbox"), list) and all(isinstance(e, dict) for e in state["outbox"])
            and isinstance(state.get("progress"), dict | None) and isinstance(state.get("last_eval"), dict | None))


def _incident_key(name: str, key: str | None) -> str:
    return f"{name}:{key}" if key else name


def _open_from_log(layout: Layout) -> dict[str, dict]:
    """Open incidents as the log tells them: the last line of each incident key is ``firing``."""
    last: dict[str, dict] = {}
    for event in read_alerts(layout):
        if event.get("name") and event.get("state") in ("firing", "resolved") and event.get("incident"):
            last[_incident_key(event["name"], event.get("key"))] = event
    return {k: {**e, "opened_at": e.get("ts")} for k, e in last.items() if e["state"] == "firing"}


def _read_state(layout: Layout) -> tuple[dict | None, str | None]:
    """(state, None), (None, why it is damaged) or (empty state, None) when there is none."""
    path = layout.alerts_state_file
    try:
        state = json.loads(path.read_bytes())
    except FileNotFoundError:
        return _empty_state(), None
    except (ValueError, RecursionError) as exc:
        return None, f"not JSON ({str(exc)[:80]})"
    if not _well_formed(state):
        return None, "not the expected shape"
    return state, None


def state_problem(layout: Layout) -> str | None:
    """Why the alert state file is damaged (None when sound or absent): the next evaluation rebuilds it."""
    return _read_state(layout)[1]


def _load_state(layout: Layout, now: datetime, notes: list[str]) -> dict:
    """The state; a damaged file is moved aside, reported and rebuilt from the log (caller holds the lock)."""
    state, why = _read_state(layout)
    if state is not None:
        return state
    path = layout.alerts_state_file
    aside = layout.set_aside(path, now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ"))
    os.replace(path, aside)
    state = _empty_state()
    state["incidents"] = _open_from_log(layout)
    message = (f"the alert state file {path.name} was damaged ({why}); moved aside as {aside.name} and rebuilt "
               f"from alerts.jsonl ({len(state['incidents'])} open incident(s) recovered)")
    record_alert(layout, "WARNING", "alerts", message, moved_to=str(aside))
    notes.append(message)
    return state


def _save_state(layout: Layout, state: dict) -> None:
    state["outbox"] = state["outbox"][-OUTBOX_MAX:]  # bounded even when nothing delivers
    atomic_write_json(layout.alerts_state_file, state)


@contextlib.contextmanager
def _state_lock(layout: Layout) -> Iterator[None]:
    with locked(layout.alerts_state_file.with_name(".alert_state.lock")):
        yield


def open_alerts(layout: Layout) -> list[dict]:
    """Open incidents, oldest first (for ``mia health``): each the ``firing`` event plus ``opened_at``
    (and, once the condition was seen again, ``last_seen``, ``repeats`` and a changed ``last_message``).
    Read-only; with a damaged state file, what the log says is open."""
    state, why = _read_state(layout)
    incidents = _open_from_log(layout) if state is None else state["incidents"]
    return sorted(incidents.values(), key=lambda e: e.get("opened_at") or "")


# ------------------------------------------------------------------------------------ transitions
def _event(name: str, state: str, incident: str, level: str, message: str, now: datetime, key: str | None,
           source: str, context: dict) -> dict:
    return {"ts": _stamp(now), "level": level, "source": source, "name": name, "state": state,
            "incident": incident, "key": key, "message": message, "context": context}


def _fire(layout: Layout, state: dict, name: str, message: str, now: datetime, *, key: str | None = None,
          level: str | None = None, source: str = "alerts", context: dict | None = None) -> dict | None:
    ik = _incident_key(name, key)
    if (opened := state["incidents"].get(ik)) is not None:  # still the same incident: no new alert line
        if message != opened.get("last_message", opened.get("message")):
            opened.update(last_message=message, last_context=context or {})
        opened.update(last_seen=_stamp(now), repeats=int(opened.get("repeats", 0)) + 1)
        return None
    level = level or RULES.get(name, "WARNING")
    if level not in LEVELS:
        raise ValueError(f"unknown alert level {level!r}; levels: {', '.join(LEVELS)}")
    incident = f"{name}-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    # the log first: a crash before the state is saved costs a repeated line, never a lost one
    event = _append(layout, _event(name, "firing", incident, level, message, now, key, source, context or {}))
    state["incidents"][ik] = {**event, "opened_at": event["ts"]}
    state["outbox"].append(event)
    return event


def _resolve(layout: Layout, state: dict, name: str, message: str, now: datetime, *,
             key: str | None = None, context: dict | None = None) -> dict | None:
    opened = state["incidents"].get(_incident_key(name, key))
    if opened is None:
        return None
    event = _append(layout, _event(name, "resolved", opened["incident"], "INFO", message, now, key,
                                   opened.get("source", "alerts"), {**(context or {}), "opened_at": opened["opened_at"]}))
    del state["incidents"][_incident_key(name, key)]
    state["outbox"].append(event)
    return event


def raise_incident(layout: Layout, name: str, message: str, *, key: str | None = None, level: str | None = None,
                   source: str = "alerts", now: datetime | None = None, settings: Settings | None = None,
                   **context) -> dict | None:
    """Open the incident ``name`` (``key`` tells apart incidents of one name, e.g. a backup mode or a run
    id) for an event-driven alert. Returns the ``firing`` line, or None when it is already open.
    The webhook gets it at the next :func:`evaluate_alerts`, or now when ``settings`` are given."""
    now = now or datetime.now(UTC)
    with _state_lock(layout):
        state = _load_state(layout, now, [])
        event = _fire(layout, state, name, message, now, key=key, level=level, source=source, context=context)
        _save_state(layout, state)
    if event is not None and settings is not None:
        deliver_outbox(layout, settings)
    return event


def resolve_incident(layout: Layout, name: str, message: str, *, key: str | None = None,
                     now: datetime | None = None, settings: Settings | None = None, **context) -> dict | None:
    """Close the incident ``name``/``key`` if open; returns the ``resolved`` line or None."""
    now = now or datetime.now(UTC)
    with _state_lock(layout):
        state = _load_state(layout, now, [])
        event = _resolve(layout, state, name, message, now, key=key, context=context)
        _save_state(layout, state)
    if event is not None and settings is not None:
        deliver_outbox(layout, settings)
    return event


# ---------------------------------------------------------------------------------------- delivery
def deliver_outbox(layout: Layout, settings: Settings, notes: list[str] | None = None) -> tuple[int, int]:
    """POST the outbox to the webhook (none configured: it is emptied). Returns (delivered, left).

    Bounded: one webhook budget (:func:`.webhook.budget_s`) for the whole outbox; after an event
    fails every retry the rest wait for the next evaluation. The lock is not held while posting."""
    notes = [] if notes is None else notes
    with _delivery_lock(layout) as mine:
        if not mine:  # another process is posting this outbox now: posting it too could deliver twice
            notes.append("another process is delivering alerts to the webhook; left to it")
            return 0, 0
        return _deliver(layout, settings, notes)


@contextlib.contextmanager
def _delivery_lock(layout: Layout) -> Iterator[bool]:
    """Non-blocking flock: yields False when another process holds it (released if that one dies)."""
    path = layout.alerts_state_file.with_name(".alert_delivery.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _deliver(layout: Layout, settings: Settings, notes: list[str]) -> tuple[int, int]:
    from mia_pipeline.quality import webhook

    mon = settings.monitoring
    with _state_lock(layout):
        state, _ = _read_state(layout)
        if state is None:
            return 0, 0
        if mon.webhook_url is None:
            if state["outbox"]:
                state["outbox"] = []
                _save_state(layout, state)
            return 0, 0
        todo = list(state["outbox"])
    url = mon.webhook_url.get_secret_value()
    deadline = time.monotonic() + webhook.budget_s(mon.webhook_timeout_s, mon.webhook_retries)
    done: set[tuple[str, str]] = set()
    for event in todo:
        result = webhook.post(url, webhook.slack_body(event), timeout_s=mon.webhook_timeout_s,
                              retries=mon.webhook_retries, deadline=deadline)
        if not result.ok:
            notes.append(f"alert {event.get('name')} ({event.get('state')}) not delivered: {result.error}; "
                         "kept for the next evaluation")
            break
        done.add((event.get("incident"), event.get("state")))
    with _state_lock(layout):
        state, _ = _read_state(layout)
        if state is None:
            return len(done), 0
        state["outbox"] = [e for e in state["outbox"] if (e.get("incident"), e.get("state")) not in done]
        _save_state(layout, state)
        return len(done), len(state["outbox"])


# -------------------------------------------------------------------------------------- evaluation
@dataclass
class Evaluation:
    """What one evaluation found: events written, incidents open after it, and anything worth saying."""

    fired: list[dict] = field(default_factory=list)
    resolved: list[dict] = field(default_factory=list)
    open: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    clock_jump_s: float | None = None
    delivered: int = 0
    undelivered: int = 0

    def summary(self) -> str:
        parts = [f"{len(self.fired)} fired", f"{len(self.resolved)} resolved", f"{len(self.open)} open"]
        names = ", ".join(sorted({_incident_key(e['name'], e.get('key')) for e in self.open}))
        text = "alerts: " + ", ".join(parts) + (f" ({names})" if names else "")
        return text + "".join(f"; {n}" for n in self.notes)


def boot_id() -> str:
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return "unknown"


def _elapsed(state: dict, wall: float, mono: float, boot: str, ev: Evaluation) -> float:
    """Seconds since the previous evaluation, on the monotonic clock (wall clock after a reboot)."""
    last = state.get("last_eval")
    if not last:
        return 0.0
    wall_delta = wall - float(last.get("wall", wall))
    if last.get("boot") != boot:
        ev.notes.append("first evaluation since a reboot: the time since the last one is taken from the wall clock")
        return max(0.0, wall_delta)
    mono_delta = max(0.0, mono - float(last.get("mono", mono)))
    if abs(wall_delta - mono_delta) > CLOCK_JUMP_S:
        ev.clock_jump_s = wall_delta - mono_delta
        ev.notes.append(f"the wall clock jumped {ev.clock_jump_s:+.0f} s since the last evaluation; "
                        "durations are measured on the monotonic clock, so no alert fires or clears for it")
    return mono_delta


def _cursor(layout: Layout) -> tuple[list, int]:
    from mia_pipeline.collection.landing import load_state

    files = load_state(layout)["files"]
    sig = sorted([name, int(rec.get("offset", 0)), rec.get("inode")] for name, rec in files.items())
    return sig, sum(s[1] for s in sig)


def _collection_stopped(layout: Layout, settings: Settings, state: dict, ev: Evaluation, wall: float,
                        mono: float, boot: str, delta: float, market_open: bool) -> tuple[bool | None, str, dict]:
    """Fires after ``collection_stopped_minutes`` of open market without any change of the ingestion
    cursor (committed offsets in ingest_state.json; a lower one counts: a reset is progress too).
    Open minutes are summed from monotonic deltas between evaluations that both saw the market open."""
    sig, total = _cursor(layout)
    prog = state.get("progress")
    if prog is None or prog.get("sig") != sig:
        first = prog is None
        state["progress"] = {"sig": sig, "total": total, "wall": wall, "mono": mono, "boot": boot, "stalled_s": 0.0}
        if first:
            return None, "", {}
        return False, f"events are landing again (ingestion cursor at {total} bytes)", {"cursor_bytes": total}
    was_open = bool((state.get("last_eval") or {}).get("market_open"))
    if market_open and was_open:
        prog["stalled_s"] = float(prog.get("stalled_s", 0.0)) + delta
    limit = settings.monitoring.collection_stopped_minutes
    if settings.off_reason():  # collection is off on purpose: no decision, and no minutes piling up
        prog["stalled_s"] = 0.0
        return None, "", {}
    if prog["stalled_s"] < limit * 60:
        return None, "", {}
    from mia_pipeline.collection.collector import collector_state
    from mia_pipeline.collection.landing import landing_lag

    collector = collector_state(layout)
    if not sig and collector.get("state") == "never started":  # a fresh data root: nothing to miss yet
        ev.notes.append("collection has never run on this data root: collection_stopped is armed by its first event")
        return None, "", {}
    since = (mono - prog["mono"]) if prog.get("boot") == boot else (wall - prog["wall"])
    try:
        waiting = sum(landing_lag(layout).values())
    except OSError:
        waiting = None
    who = collector.get("state", "unknown") + (f", pid {collector['pid']}" if collector.get("pid") else "")
    message = (f"no events landed for {prog['stalled_s'] / 60:.0f} min of open CME market (threshold {limit} min; "
               f"{since / 60:.0f} min since the last progress); collector: {who}"
               + (f"; {waiting} byte(s) waiting in the landing zone" if waiting is not None else ""))
    return True, message, {"open_market_minutes": round(prog["stalled_s"] / 60, 1),
                           "minutes_since_progress": round(since / 60, 1), "collector": collector.get("state"),
                           "pid": collector.get("pid"), "pending_bytes": waiting, "cursor_bytes": total}


def _data_quality(layout: Layout, settings: Settings, now: datetime, ev: Evaluation) -> tuple[bool | None, str, dict]:
    day = now.astimezone(UTC).date()
    path = layout.metrics_file(day)
    try:
        metrics = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, "", {}
    except (OSError, ValueError) as exc:
        ev.notes.append(f"today's metrics file {path.name} cannot be read ({type(exc).__name__}): no quality decision")
        return None, "", {}
    score = metrics.get("data_quality_score") if isinstance(metrics, dict) else None
    if not isinstance(score, int | float) or isinstance(score, bool):
        return None, "", {}
    floor = settings.monitoring.quality_min
    context = {"day": str(metrics.get("day", day)), "data_quality_score": score, "quality_min": floor}
    if score < floor:
        return True, f"data quality score {score:.3f} on {context['day']} is below {floor}", context
    return False, f"data quality score {score:.3f} on {context['day']} is back at or above {floor}", context


def _existing(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mount_point(path: Path) -> Path:
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _storage(layout: Layout, settings: Settings) -> list[tuple[str, bool | None, str, dict]]:
    mon = settings.monitoring
    volumes = [("data", _existing(layout.root))]
    if not is_object_url(settings.backup.target):  # object storage has no local volume to watch
        volumes.append(("backup", _existing(settings.backup.local_target or layout.root / "backups")))
    devices = {label: os.stat(p).st_dev for label, p in volumes}
    one_disk = devices.get("backup") == devices["data"]
    out = []
    for label, path in volumes:
        if label == "backup" and one_disk:  # one disk: judged once, as the data volume
            out.append((label, False, "the backup target is now on the data volume", {}))
            continue
        name = "data and backup volume" if label == "data" and one_disk else f"{label} volume"
        usage = shutil.disk_usage(path)
        free_mb, pct = usage.free / 2**20, 100.0 * usage.free / usage.total if usage.total else 0.0
        mount = _mount_point(path)
        context = {"volume": label, "path": str(path), "mount": str(mount), "free_mb": round(free_mb, 1),
                   "free_pct": round(pct, 2), "total_mb": round(usage.total / 2**20, 1),
                   "min_free_mb": mon.storage_min_free_mb, "min_free_pct": mon.storage_min_free_pct}
        figures = f"{free_mb:.0f} MB free of {usage.total / 2**20:.0f} MB ({pct:.1f}%)"
        if free_mb < mon.storage_min_free_mb or pct < mon.storage_min_free_pct:
            out.append((label, True, f"the {name} ({path}, mounted at {mount}) has {figures}: below "
                                     f"{mon.storage_min_free_mb} MB or {mon.storage_min_free_pct}%", context))
        else:
            out.append((label, False, f"the {name} ({path}) has {figures} again", context))
    return out


def _backup_clean_since(layout: Layout, settings: Settings, key: str, opened_at: str) -> str | None:
    """The id of a clean backup (no damaged item) of mode ``key`` (``any``: every mode) made after
    ``opened_at``; None if there is none yet."""
    from mia_pipeline.lifecycle.catalog import MODES, decode_manifest, target_for

    target = target_for(layout, settings)
    after = datetime.fromisoformat(opened_at).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")  # a backup id's form
    kinds = [MODES[key]] if key in MODES else sorted(set(MODES.values()))
    for kind in kinds:
        try:
            ids = sorted(i for i in target.manifest_ids(kind) if i > after)
        except OSError:
            continue
        if ids:
            try:
                backup = decode_manifest(target.get_manifest(kind, ids[-1]), kind, ids[-1])
            except (ValueError, OSError):
                continue
            if not backup.damaged:
                return f"{kind}/{ids[-1]}"
    return None


def _apply(layout: Layout, state: dict, ev: Evaluation, name: str, decision: bool | None, message: str,
           context: dict, now: datetime, key: str | None = None) -> None:
    if decision is True:
        if (event := _fire(layout, state, name, message, now, key=key, context=context)) is not None:
            ev.fired.append(event)
    elif decision is False:
        if (event := _resolve(layout, state, name, message, now, key=key, context=context)) is not None:
            ev.resolved.append(event)


def evaluate_alerts(layout: Layout, settings: Settings, *, now: datetime | None = None, mono: float | None = None,
                    market_open: bool | None = None, deliver: bool = True) -> Evaluation:
    """Evaluate every rule once, write what fired or cleared, deliver the outbox (``deliver``).

    ``now`` (tz-aware wall time) and ``mono`` (a ``time.monotonic()`` value) default to the clocks;
    ``market_open`` defaults to the CME Globex calendar at ``now``. A rule that cannot be evaluated
    is a note, never an exception: a monitoring tick does not crash."""
    now = now or datetime.now(UTC)
    mono = time.monotonic() if mono is None else mono
    wall, boot, ev = now.timestamp(), boot_id(), Evaluation()
    layout.reports_dir.mkdir(parents=True, exist_ok=True)
    with _state_lock(layout):
        state = _load_state(layout, now, ev.notes)
        delta = _elapsed(state, wall, mono, boot, ev)
        if market_open is None:
            from mia_pipeline.synthetic.schedule import globex_status

            market_open, _, why = globex_status(now)
            if not market_open:
                ev.notes.append(f"CME market closed ({why})")
        try:
            decision, message, context = _collection_stopped(layout, settings, state, ev, wall, mono, boot, delta,
                                                             market_open)
            _apply(layout, state, ev, "collection_stopped", decision, message, context, now)
        except (OSError, ValueError) as exc:
            ev.notes.append(f"collection_stopped could not be evaluated: {exc}")
        _apply(layout, state, ev, "data_quality_low", *_data_quality(layout, settings, now, ev), now)
        try:
            for label, decision, message, context in _storage(layout, settings):
                _apply(layout, state, ev, "storage_full", decision, message, context, now, key=label)
        except OSError as exc:
            ev.notes.append(f"storage_full could not be evaluated: {exc}")
        for opened in [i for i in state["incidents"].values() if i.get("name") == "backup_failed"]:
            try:
                clean = _backup_clean_since(layout, settings, opened.get("key") or "any", opened["opened_at"])
            except (OSError, ValueError) as exc:
                ev.notes.append(f"backup_failed could not be checked: {exc}")
                break
            if clean:
                _apply(layout, state, ev, "backup_failed", False, f"backup {clean} succeeded", {"backup": clean},
                       now, key=opened.get("key"))
        state["last_eval"] = {"wall": wall, "mono": mono, "boot": boot, "market_open": market_open,
                              "ts": _stamp(now)}
        _save_state(layout, state)
    if deliver:
        ev.delivered, ev.undelivered = deliver_outbox(layout, settings, ev.notes)
    ev.open = open_alerts(layout)
    return ev
