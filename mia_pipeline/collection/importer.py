"""`mia import`: bring files into the landing zone, then ingest them like any other event.

Accepted inputs:
- JSON Lines of landing-zone events (copied as they are);
- the guide's per-day files, JSON arrays: ``trades.json`` (kind trade), ``signals.json`` (signal),
  ``market_data.json`` (market_bar when a record has OHLC, else market_tick), ``performance.json``
  (performance), ``trade_exits.json`` (trade_exit). Records lacking ``kind``, ``schema_version``,
  ``event_id`` or ``source`` get them (``event_id`` = trade_id / signal_id, or a content hash;
  ``source`` = ``import``). A record that is not an object is kept as it is so that ingestion
  quarantines it with a reason.

A UTF-8 byte-order mark at the start of the file is dropped, as the landing zone does at offset 0
of a landing file (``landing.strip_bom``).

The landing file is named ``import_<name>_<sha256 of content>.jsonl`` and written atomically, so
importing the same file twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mia_pipeline.collection.landing import strip_bom
from mia_pipeline.layout import Layout
from mia_pipeline.storage import atomic_write_bytes

GUIDE_FILES = {
    "trades": "trade",
    "trade_exits": "trade_exit",
    "signals": "signal",
    "performance": "performance",
    "market_data": None,  # bar or tick, by record
}
ID_FIELDS = {"trade": "trade_id", "signal": "signal_id"}


class ImportError_(ValueError):
    """The file cannot be imported as given (message says why and what is accepted)."""


def _guess_kind(stem: str, record: dict) -> str | None:
    if "kind" in record:
        return record["kind"]
    if stem not in GUIDE_FILES:
        return None
    kind = GUIDE_FILES[stem]
    if kind is None:
        kind = "market_bar" if {"open", "high", "low", "close"} <= record.keys() else "market_tick"
    return kind


def _complete(record, stem: str) -> str:
    if not isinstance(record, dict):
        return json.dumps(record)
    kind = _guess_kind(stem, record)
    out = dict(record)
    if kind is not None:
        out.setdefault("kind", kind)
    out.setdefault("schema_version", 1)
    out.setdefault("source", "import")
    if "event_id" not in out:
        ident = out.get(ID_FIELDS.get(kind or "", ""), None)
        out["event_id"] = ident or "imp-" + hashlib.sha256(
            json.dumps(record, sort_keys=True).encode()).hexdigest()[:24]
    return json.dumps(out, ensure_ascii=False, allow_nan=True)


def to_landing_lines(path: Path) -> bytes:
    """The file's events as landing-zone JSON Lines."""
    raw = path.read_bytes()
    raw = raw[strip_bom(raw, 0):]
    head = raw.lstrip()[:1]
    if head == b"[":
        try:
            records = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ImportError_(f"{path}: looks like a JSON array but does not parse ({exc}); "
                               "fix the file or convert it to JSON Lines (one event per line)") from None
        stem = path.stem.lower()
        return "".join(_complete(r, stem) + "\n" for r in records).encode("utf-8")
    if head in (b"{", b""):
        stem = path.stem.lower()
        if stem in GUIDE_FILES:
            # The guide's file names in JSON Lines form: complete each line, keep bad ones verbatim.
            out = []
            for line in raw.splitlines():
                if not line.strip():
                    continue
                try:
                    out.append(_complete(json.loads(line), stem).encode("utf-8"))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    out.append(line)
            return b"".join(x + b"\n" for x in out)
        return raw if raw.endswith(b"\n") or not raw else raw + b"\n"
    raise ImportError_(f"{path}: neither JSON Lines nor a JSON array (first byte {head!r}); "
                       "accepted: landing-zone .jsonl, or the guide's trades/signals/market_data/performance.json")


def stage_import(layout: Layout, path: Path) -> Path:
    """Write the file's events into the landing zone (idempotent); returns the landing file."""
    if not path.is_file():
        if path.exists():
            raise ImportError_(f"{path}: not a regular file (a device, a pipe or a socket); name a .jsonl or .json "
                               "file, or a folder holding them")
        raise ImportError_(f"{path}: no such file")
    data = to_landing_lines(path)
    digest = hashlib.sha256(data).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem)[:60] or "file"
    target = layout.streaming_dir / f"import_{safe}_{digest}.jsonl"
    if not target.exists():
        atomic_write_bytes(target, data)
    return target
