"""Alert events: one JSON line each in ``<data root>/reports/alerts.jsonl``, for monitoring to consume.

A line looks like::

    {"ts": "2026-12-01T13:00:00.123Z", "level": "WARNING", "source": "backup",
     "message": "backup failed: ...", "context": {"mode": "incremental", "target": "/mnt/b"}}

Lines are appended with one ``write`` on an ``O_APPEND`` descriptor and fsynced, so concurrent writers
never interleave inside a line and a recorded alert survives a crash.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from mia_pipeline.layout import Layout

ALERTS_FILE = "alerts.jsonl"
LEVELS = ("INFO", "WARNING", "ERROR", "CRITICAL")


def alerts_file(layout: Layout) -> Path:
    return layout.reports_dir / ALERTS_FILE


def record_alert(layout: Layout, level: str, source: str, message: str, **context) -> dict:
    """Append one alert event and return it. ``level`` is one of :data:`LEVELS` (ValueError otherwise);
    ``context`` values that are not JSON types are written as their ``str``."""
    if level not in LEVELS:
        raise ValueError(f"unknown alert level {level!r}; levels: {', '.join(LEVELS)}")
    event = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "source": source,
        "message": message,
        "context": context,
    }
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


def read_alerts(layout: Layout) -> list[dict]:
    """Every alert recorded so far, oldest first (a damaged line is skipped)."""
    path = alerts_file(layout)
    if not path.exists():
        return []
    out = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    return out
