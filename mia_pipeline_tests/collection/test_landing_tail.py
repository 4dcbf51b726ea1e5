"""A last line without its newline waits for its writer, but never forever.

Protects: a writer that crashed between an event and its newline (the event must land once the file
has been idle for ``TAIL_SETTLE_SECONDS``, exactly once, and a later newline must not duplicate it),
a file written with CR-only line endings (no newline at all: quarantined with the parser's reason after
settling, never "being written" forever), the line counts of ``mia collect status`` (in 8 MiB reads,
the settled tail counted), and a line between ``max_line_bytes`` and a batch: quarantined from a
64 KiB prefix with its length, not copied whole.
"""

import os
import time

from conftest import append, tick

from mia_pipeline.collection import landing
from mia_pipeline.collection.ingest import ingest_landing_zone
from mia_pipeline.collection.quarantine import read_rejects
from mia_pipeline.collection.status import collection_status
from mia_pipeline.schemas.parser import OVERSIZE_PREFIX

DAY = "2025-06-23"


def _age(layout, name: str, seconds: float) -> None:
    path = layout.streaming_dir / name
    t = time.time() - seconds
    os.utime(path, (t, t))


def _ticks(store) -> list:
    t = store.read(DAY, "market_ticks")
    return [] if t is None else sorted(t.column("event_id").to_pylist())


def test_an_unterminated_last_line_lands_once_its_file_has_settled(layout, store):
    append(layout, "a.jsonl", tick(1) + tick(2).rstrip(b"\n"))
    assert ingest_landing_zone(layout, store).lines == 1  # fresh: a write in progress
    assert _ticks(store) == ["tick-1"]
    _age(layout, "a.jsonl", landing.TAIL_SETTLE_SECONDS + 1)
    report = ingest_landing_zone(layout, store)
    assert report.lines == 1 and not report.quarantined
    assert _ticks(store) == ["tick-1", "tick-2"]
    assert landing.landing_lag(layout) == {"a.jsonl": 0}
    append(layout, "a.jsonl", b"\n" + tick(3))   # the writer comes back: its newline is a blank line
    ingest_landing_zone(layout, store)
    assert _ticks(store) == ["tick-1", "tick-2", "tick-3"]
    assert not layout.quarantine_days()


def test_cr_only_line_endings_are_quarantined_after_settling_not_waited_on_forever(layout, store):
    body = b"\r".join(tick(i).rstrip(b"\n") for i in (1, 2, 3))
    append(layout, "mac.jsonl", body)
    _age(layout, "mac.jsonl", landing.TAIL_SETTLE_SECONDS + 1)
    status = collection_status(layout, store)
    assert status["lag"]["files"] == {"mac.jsonl": {"bytes": len(body), "lines": 1}}
    report = ingest_landing_zone(layout, store)
    assert report.lines == 1 and sum(report.quarantined.values()) == 1
    (qday,) = layout.quarantine_days()
    (reject,) = read_rejects(layout, qday).to_pylist()
    assert reject["line"] == body and reject["file"] == "mac.jsonl"   # every byte kept, with a reason
    assert landing.landing_lag(layout) == {"mac.jsonl": 0}
    assert ingest_landing_zone(layout, store).lines == 0


def test_status_counts_pending_lines_without_reading_them_whole(layout, store, monkeypatch):
    append(layout, "a.jsonl", tick(1) + tick(2) + tick(3))
    monkeypatch.setattr(landing, "read_pieces", lambda _: (_ for _ in ()).throw(AssertionError("read whole")))
    assert collection_status(layout, store)["lag"]["pending_lines"] == 3


def test_a_line_over_max_line_bytes_is_quarantined_from_a_prefix(layout, store):
    big = b'{"kind":"market_tick","timestamp":"2025-06-23T10:00:00.000Z","junk":"' + b"a" * 1_200_000 + b'"}\n'
    append(layout, "a.jsonl", tick(1) + big)
    report = ingest_landing_zone(layout, store)
    assert report.quarantined == {"oversize_line": 1} and _ticks(store) == ["tick-1"]
    (qday,) = layout.quarantine_days()
    (reject,) = read_rejects(layout, qday).to_pylist()
    assert len(reject["line"]) == OVERSIZE_PREFIX and reject["line"] == big[:OVERSIZE_PREFIX]
    assert "1,200,0" in reject["detail"]
