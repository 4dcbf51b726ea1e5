"""Vectorized merge of new typed rows into a stored day: dedup by key, conflicts detected.

The first version of a key wins. A later row with the same key and the same ``content_hash`` is a
harmless re-delivery (dropped, counted); with a different ``content_hash`` it is a conflict (returned
so the caller can quarantine it). Works on whole Arrow tables: no per-row Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class Merged:
    table: pa.Table      # existing rows + accepted new rows, sorted by ts (stable)
    added: int           # new rows accepted
    duplicates: int      # new rows dropped as exact re-deliveries
    conflicts: pa.Table  # new rows whose key exists with different content


def concat(tables: list[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t is not None]
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def key_columns(table: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """The key columns of ``table``; a dotted name (``tags.symbol``) is a field of a struct column."""
    tops = list(dict.fromkeys(k.split(".", 1)[0] for k in keys))
    flat = table.select(tops)
    if any("." in k for k in keys):
        flat = flat.flatten()
    return flat.select(list(keys))


def merge_rows(existing: pa.Table | None, new: pa.Table, keys: tuple[str, ...]) -> Merged:
    """Merge ``new`` (already in arrival order) into ``existing`` (already deduplicated)."""
    n_old = existing.num_rows if existing is not None else 0
    combined = concat([existing, new]) if existing is not None else new
    key_table = key_columns(combined, keys)
    if _all_unique(combined, key_table, keys):
        return Merged(_sort(combined), new.num_rows, 0, new.slice(0, 0))  # no key seen twice: fast path
    key_df = key_table.append_column("content_hash", combined.column("content_hash")).to_pandas()
    dup = key_df.duplicated(subset=list(keys), keep="first").to_numpy()
    if not dup.any():
        return Merged(_sort(combined), new.num_rows, 0, new.slice(0, 0))
    first_hash = key_df.groupby(list(keys), sort=False, dropna=False)["content_hash"].transform("first")
    conflict = dup & (key_df["content_hash"].to_numpy() != first_hash.to_numpy())
    keep = ~dup
    new_conflict = conflict[n_old:]
    return Merged(
        table=_sort(combined.filter(pa.array(keep))),
        added=int(keep[n_old:].sum()),
        duplicates=int((dup & ~conflict)[n_old:].sum()),
        conflicts=new.filter(pa.array(new_conflict)),
    )


def _all_unique(combined: pa.Table, key_table: pa.Table, keys: tuple[str, ...]) -> bool:
    """Whether no key occurs twice. With ``ts`` in the key only rows sharing a timestamp can collide:
    those few are grouped, not the whole table (a day of ticks is millions of distinct instants)."""
    if "ts" in keys and combined.num_rows > 1:
        ts = pc.cast(combined.column("ts"), pa.int64()).to_numpy()
        _, inverse, counts = np.unique(ts, return_inverse=True, return_counts=True)
        shared = counts[inverse] > 1
        if not shared.any():
            return True
        key_table = key_table.filter(pa.array(shared))
    return key_table.group_by(list(keys)).aggregate([]).num_rows == key_table.num_rows


def _sort(table: pa.Table) -> pa.Table:
    if table.num_rows < 2:
        return table
    ts = table.column("ts")
    if pc.all(pc.greater_equal(ts.slice(1), ts.slice(0, table.num_rows - 1))).as_py():
        return table  # already ordered: skip the take
    return table.take(pc.sort_indices(table, [("ts", "ascending")]))


def split_by_day(table: pa.Table, ts_column: str = "ts") -> list[tuple[str, pa.Table]]:
    """[(YYYY-MM-DD, rows of that UTC day)] in day order; rows keep their relative order."""
    if table.num_rows == 0:
        return []
    ms = pc.cast(table.column(ts_column), pa.timestamp("ms", tz="UTC")).cast(pa.int64())
    if ms.null_count:
        raise ValueError(f"split_by_day: {ms.null_count} row(s) without {ts_column}")
    day_num = np.floor_divide(ms.to_numpy(), 86_400_000)  # UTC day number (no time-zone lookup per row)
    if len(day_num) > 1 and (np.diff(day_num) < 0).any():  # out of order: group days (stable)
        order = np.argsort(day_num, kind="stable")
        sorted_days = day_num[order]
        table = table.take(pa.array(order))
    else:
        sorted_days = day_num
    bounds = np.flatnonzero(np.diff(sorted_days)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(sorted_days)]])
    epoch = np.datetime64("1970-01-01", "D")
    return [
        (str(epoch + np.timedelta64(int(sorted_days[s]), "D")), table.slice(s, e - s))
        for s, e in zip(starts, ends, strict=True)
    ]
