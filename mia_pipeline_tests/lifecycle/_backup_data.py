"""Shared by the backup/recover tests: a small data root with real events (so raw lines exist and a
day can be rebuilt), helpers to flip a byte and to snapshot every partition's rows."""

from __future__ import annotations

from pathlib import Path

from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.layout import STORED_DATASETS, Layout
from mia_pipeline.settings import Settings, load_settings
from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.guide_examples import make_event, to_line

DAYS = ("2025-06-23", "2025-06-24", "2025-06-25")


def trade_lines(day: str, n: int = 3) -> bytes:
    out = b""
    for i in range(n):
        tid = f"TRADE_{day.replace('-', '')}_{i:03d}"
        out += to_line(make_event("trade", event_id=f"t-{day}-{i}", trade_id=tid, timestamp=f"{day}T14:3{i}:00.000Z",
                                  price=1.08 + i / 100))
        out += to_line(make_event("trade_exit", event_id=f"x-{day}-{i}", trade_id=tid,
                                  timestamp=f"{day}T15:3{i}:00.000Z", pnl=10.0 * (i + 1)))
        out += to_line(make_event("market_tick", event_id=f"k-{day}-{i}", seq=i, timestamp=f"{day}T14:3{i}:01.000Z"))
    return out


def build(layout: Layout, days=DAYS, name: str = "a.jsonl") -> PartitionStore:
    """Land trades, exits and ticks on ``days`` and ingest them; returns the store."""
    with open(layout.streaming_dir / name, "ab") as fh:
        for day in days:
            fh.write(trade_lines(day))
    store = PartitionStore(layout)
    ingest_once(layout, store, None)
    return store


def settings_for(layout: Layout, **env: str) -> Settings:
    return load_settings(env={"MIA_DATA_DIR": str(layout.root), "MIA_RETENTION_DAYS": "100000",
                              "MIA_ARCHIVE_AFTER_DAYS": "90", **env})


def flip(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if at is None else at
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def contents(store: PartitionStore) -> dict[tuple[str, str], list]:
    """{(day, dataset): rows as Python dicts} of every committed partition."""
    out = {}
    for day in store.layout.days_present():
        for ds in STORED_DATASETS:
            table = store.read(day, ds)
            if table is not None:
                out[(day, ds)] = table.to_pylist()
    return out


def backed_up(layout: Layout, monkeypatch):
    """(layout, store, settings) of the three days, ingested, with one full backup of them."""
    from mia_pipeline.lifecycle.backup import run_backup

    monkeypatch.setenv("MIA_RETENTION_DAYS", "100000")
    store = build(layout)
    settings = settings_for(layout)
    run_backup(layout, settings, "full")
    return layout, store, settings
