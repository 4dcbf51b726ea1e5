"""Partition checks for the daily datasets (library side of the Dagster asset checks).

One DuckDB scan per dataset over every committed file of the window computes all five checks, so a
one-run backfill of a year costs a few scans, not thousands of file reads. Column names follow
``mia_pipeline.schemas``; nested struct fields are written with dots (``market_context.bid``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from mia_pipeline.layout import RAW_EVENTS
from mia_pipeline.schemas import DATASET_KEYS, KIND_TO_DATASET
from mia_pipeline.storage import PartitionStore

CHECKED_DATASETS = tuple(d for d in dict.fromkeys(KIND_TO_DATASET.values()) if d)
PRICE_COLUMNS = {
    "trades": ("price", "execution.fill_price", "market_context.bid", "market_context.ask"),
    "trade_exits": ("exit_price",),
    "market_bars": ("open", "high", "low", "close"),
    "market_ticks": ("bid", "ask"),
}
BID_ASK = {"trades": ("market_context.bid", "market_context.ask"), "market_ticks": ("bid", "ask")}
CHECK_NAMES = ("has_unique_keys", "non_empty_when_events_exist", "prices_positive", "ask_above_bid",
               "timestamps_inside_partition_day")
CHECK_DESCRIPTIONS = {
    "has_unique_keys": "No two rows share the dataset key (trade_id, signal_id, or the composite key).",
    "non_empty_when_events_exist": "A day whose raw lines hold events of this kind has a non-empty partition.",
    "prices_positive": "Every price column is > 0.",
    "ask_above_bid": "Quotes have ask >= bid (never crossed).",
    "timestamps_inside_partition_day": "Every row's ts falls inside its UTC partition day.",
}
_DAY_OF_FILE = r"regexp_extract(filename, '(\d{4}-\d{2}-\d{2})[/\\][^/\\]+$', 1)"


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    failing: int = 0
    detail: str = ""
    examples: list = field(default_factory=list)


def _sql_path(path: str) -> str:
    head, *rest = path.split(".")
    return '"' + head + '"' + "".join(f".{p}" for p in rest)


def _files(store: PartitionStore, dataset: str, start: str, end: str) -> list[str]:
    return [str(p) for p in store.files(dataset, start, end)]


def _days_with_kinds(con, store: PartitionStore, start: str, end: str) -> dict[str, set]:
    files = _files(store, RAW_EVENTS, start, end)
    if not files:
        return {}
    rows = con.execute(
        f"SELECT {_DAY_OF_FILE} AS day, list(DISTINCT kind) FROM read_parquet(?, filename = true) GROUP BY day",
        [files],
    ).fetchall()
    return {day: set(kinds) for day, kinds in rows}


def _dataset_outcomes(con, store: PartitionStore, ds: str, start: str, end: str, kinds: dict) -> list[CheckOutcome]:
    wanted = {k for k, d in KIND_TO_DATASET.items() if d == ds}
    have = {d: store.entry(d, ds) for d in store.days(ds, start, end)}
    missing = sorted(d for d, ks in kinds.items() if ks & wanted and (have.get(d) is None or have[d].rows == 0))
    files = _files(store, ds, start, end)
    empty = [CheckOutcome("has_unique_keys", True, detail="no rows"),
             CheckOutcome("prices_positive", True, detail="no rows"),
             CheckOutcome("ask_above_bid", True, detail="no rows"),
             CheckOutcome("timestamps_inside_partition_day", True, detail="no rows")]
    if files:
        con.read_parquet(files, union_by_name=True, filename=True).create_view("part", replace=True)
        keys = ", ".join(f'"{k}"' for k in DATASET_KEYS[ds])
        as_text = "concat_ws(' | ', " + ", ".join(f'"{k}"::VARCHAR' for k in DATASET_KEYS[ds]) + ")"
        dups = con.execute(f"SELECT coalesce(sum(n), 0), list({as_text})[1:5] FROM "
                           f"(SELECT {keys}, count(*) AS n FROM part GROUP BY ALL HAVING n > 1)").fetchall()[0]
        prices = PRICE_COLUMNS.get(ds, ())
        bad_price = [f"coalesce(sum(({_sql_path(p)} <= 0)::INT), 0)" for p in prices] or ["0"]
        bid, ask = BID_ASK.get(ds, (None, None))
        crossed = f"coalesce(sum(({_sql_path(ask)} < {_sql_path(bid)})::INT), 0)" if bid else "0"
        day = f"CAST({_DAY_OF_FILE} AS DATE)"
        outside = (f"coalesce(sum((ts < {day}::TIMESTAMPTZ OR ts >= ({day} + 1)::TIMESTAMPTZ)::INT), 0)")
        row = con.execute(f"SELECT count(*), {', '.join(bad_price)}, {crossed}, {outside} FROM part").fetchall()[0]
        n_rows, price_counts, n_crossed, n_outside = row[0], row[1:1 + len(bad_price)], row[-2], row[-1]
        bad = {p: n for p, n in zip(prices, price_counts, strict=False) if n}
        n_dup = int(dups[0])
        empty = [
            CheckOutcome("has_unique_keys", n_dup == 0, n_dup,
                         f"{n_dup} rows share a key" if n_dup else f"{n_rows} rows, keys unique", dups[1] or []),
            CheckOutcome("prices_positive", not bad, sum(bad.values()),
                         "; ".join(f"{k}: {v} rows <= 0" for k, v in bad.items()) or "ok"),
            CheckOutcome("ask_above_bid", n_crossed == 0, int(n_crossed),
                         f"{n_crossed} rows with ask < bid" if n_crossed else "ok"),
            CheckOutcome("timestamps_inside_partition_day", n_outside == 0, int(n_outside),
                         f"{n_outside} rows outside their partition day" if n_outside else "ok"),
        ]
    non_empty = CheckOutcome("non_empty_when_events_exist", not missing, len(missing),
                             f"days with events but no rows: {missing}" if missing else "ok", missing[:5])
    return [empty[0], non_empty, *empty[1:]]


def run_all_checks(store: PartitionStore, start: str, end: str, datasets=None) -> dict[str, list[CheckOutcome]]:
    """All checks of ``datasets`` (default: every dataset) over the closed window [start, end]."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'").fetchall()
        kinds = _days_with_kinds(con, store, start, end)
        return {ds: _dataset_outcomes(con, store, ds, start, end, kinds) for ds in (datasets or CHECKED_DATASETS)}


def run_checks(store: PartitionStore, dataset: str, start: str, end: str) -> list[CheckOutcome]:
    return run_all_checks(store, start, end, [dataset])[dataset]
