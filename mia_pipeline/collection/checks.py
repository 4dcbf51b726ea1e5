"""Partition checks for the daily datasets (library side of the Dagster asset checks).

Each check looks at the stored partitions of a window of days and returns a :class:`CheckOutcome`
with the number of failing rows and examples. Column names follow ``mia_pipeline.schemas``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.layout import RAW_EVENTS
from mia_pipeline.schemas import DATASET_KEYS, KIND_TO_DATASET
from mia_pipeline.storage import PartitionStore

# Price-like columns per dataset: (column path, human name). Nested struct fields use dots.
PRICE_COLUMNS = {
    "trades": ("price", "execution.fill_price", "market_context.bid", "market_context.ask"),
    "trade_exits": ("exit_price",),
    "market_bars": ("open", "high", "low", "close"),
    "market_ticks": ("bid", "ask"),
}
BID_ASK = {"trades": ("market_context.bid", "market_context.ask"), "market_ticks": ("bid", "ask")}


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    failing: int = 0
    detail: str = ""
    examples: list = field(default_factory=list)


def _col(table: pa.Table, path: str):
    parts = path.split(".")
    if parts[0] not in table.column_names:
        return None
    arr = table.column(parts[0])
    for p in parts[1:]:
        arr = pc.struct_field(arr, p)
    return arr


def _days(start: str, end: str) -> list[str]:
    a, b = datetime.fromisoformat(start).date(), datetime.fromisoformat(end).date()
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def unique_keys(store: PartitionStore, dataset: str, start: str, end: str) -> CheckOutcome:
    keys = list(DATASET_KEYS[dataset])
    t = store.read_window(dataset, start, end, columns=keys)
    name = "has_unique_keys"
    if t.num_rows == 0:
        return CheckOutcome(name, True, detail="no rows")
    dup = t.to_pandas().duplicated(keep=False)
    n = int(dup.sum())
    examples = t.filter(pa.array(dup.to_numpy())).slice(0, 5).to_pylist()
    return CheckOutcome(name, n == 0, n, f"{n} rows share a key" if n else f"{t.num_rows} rows, keys unique", examples)


def non_empty_when_events(store: PartitionStore, dataset: str, start: str, end: str) -> CheckOutcome:
    """A day whose raw lines hold events of this dataset's kind must have a non-empty partition."""
    kinds = [k for k, d in KIND_TO_DATASET.items() if d == dataset]
    missing = []
    for day in _days(start, end):
        raw = store.read(day, RAW_EVENTS, columns=["kind"])
        if raw is None or not raw.num_rows:
            continue
        if pc.any(pc.is_in(raw.column("kind"), value_set=pa.array(kinds))).as_py():
            entry = store.entry(day, dataset)
            if entry is None or entry.rows == 0:
                missing.append(day)
    return CheckOutcome("non_empty_when_events_exist", not missing, len(missing),
                        f"days with events but no rows: {missing}" if missing else "ok", missing[:5])


def positive_prices(store: PartitionStore, dataset: str, start: str, end: str) -> CheckOutcome:
    t = store.read_window(dataset, start, end)
    bad = 0
    examples = []
    for path in PRICE_COLUMNS.get(dataset, ()):
        arr = _col(t, path) if t.num_rows else None
        if arr is None:
            continue
        mask = pc.fill_null(pc.less_equal(arr, 0), False)
        n = pc.sum(mask).as_py() or 0
        if n:
            bad += n
            examples.append(f"{path}: {n} rows <= 0")
    return CheckOutcome("prices_positive", bad == 0, bad, "; ".join(examples) or "ok", examples)


def ask_above_bid(store: PartitionStore, dataset: str, start: str, end: str) -> CheckOutcome:
    t = store.read_window(dataset, start, end)
    if dataset not in BID_ASK or t.num_rows == 0:
        return CheckOutcome("ask_above_bid", True, detail="no quotes")
    bid, ask = (_col(t, p) for p in BID_ASK[dataset])
    if bid is None or ask is None:
        return CheckOutcome("ask_above_bid", True, detail="no quote columns")
    mask = pc.fill_null(pc.less(ask, bid), False)
    n = pc.sum(mask).as_py() or 0
    return CheckOutcome("ask_above_bid", n == 0, n, f"{n} rows with ask < bid" if n else "ok")


def timestamps_inside_day(store: PartitionStore, dataset: str, start: str, end: str) -> CheckOutcome:
    bad = []
    for day in store.days(dataset, start, end):
        t = store.read(day, dataset, columns=["ts"])
        lo = pa.scalar(datetime.fromisoformat(day).replace(tzinfo=UTC), pa.timestamp("ms", tz="UTC"))
        hi = pa.scalar(datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1), pa.timestamp("ms", tz="UTC"))
        ts = t.column("ts")
        n = pc.sum(pc.or_(pc.less(ts, lo), pc.greater_equal(ts, hi))).as_py() or 0
        if n:
            bad.append((day, n))
    total = sum(n for _, n in bad)
    return CheckOutcome("timestamps_inside_partition_day", total == 0, total,
                        f"rows outside their day: {bad}" if bad else "ok", bad[:5])


ALL_CHECKS = (unique_keys, non_empty_when_events, positive_prices, ask_above_bid, timestamps_inside_day)
CHECK_NAMES = ("has_unique_keys", "non_empty_when_events_exist", "prices_positive", "ask_above_bid",
               "timestamps_inside_partition_day")
CHECK_DESCRIPTIONS = {
    "has_unique_keys": "No two rows share the dataset key (trade_id, signal_id, or the composite key).",
    "non_empty_when_events_exist": "A day whose raw lines hold events of this kind has a non-empty partition.",
    "prices_positive": "Every price column is > 0.",
    "ask_above_bid": "Quotes have ask >= bid (never crossed).",
    "timestamps_inside_partition_day": "Every row's ts falls inside its UTC partition day.",
}


def run_checks(store: PartitionStore, dataset: str, start: str, end: str) -> list[CheckOutcome]:
    return [fn(store, dataset, start, end) for fn in ALL_CHECKS]
