"""`mia optimize --compress --index`: rewrite closed daily partitions so DuckDB reads less.

``index``: rows sorted by (symbol, ts) (``metric`` for performance samples, ``ts`` alone where there is
neither), row groups of :data:`ROW_GROUP_ROWS` rows with min/max statistics, the sort order recorded
in the row-group metadata, a page index, and Bloom filters on the id columns (``trade_id``,
``signal_id``; pyarrow ≥ 21 writes them, DuckDB uses them for ``= 'id'`` filters): a query for one
symbol over one month skips the row groups and pages of the other symbols and times. Small row groups
are compacted into full ones on the way.
``compress``: zstd level :data:`COMPRESS_LEVEL` (default level otherwise).

Each rewrite goes through :meth:`PartitionStore.write_many` (atomic, manifest sha256 updated at the
same commit) as a compare-and-swap on the file it read, so a concurrent ingest is never undone; the
content hash of the rows (:func:`~mia_pipeline.lifecycle.archive.content_digest`) is checked equal
before and after, and the previous file is put back if it is not. A partition already optimized the
same way is skipped (the options are recorded in the file's metadata), so re-running is cheap.
Archived months are written sorted by day with statistics by the archive and are not rewritten here.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mia_pipeline.layout import DATASETS, Layout, parse_day, parse_month
from mia_pipeline.lifecycle.archive import content_digest
from mia_pipeline.storage import PartitionStore, StorageError, partition_store

ROW_GROUP_ROWS = 128 * 1024
COMPRESS_LEVEL = 9
BLOOM_COLUMNS = ("trade_id", "signal_id")
BLOOM_FPP = 0.05
MARK = b"mia.optimized"


@dataclass
class OptimizeReport:
    rewritten: list[str] = field(default_factory=list)   # "day/dataset"
    skipped: int = 0                                      # already optimized the same way
    bytes_before: int = 0                                 # of the files rewritten
    bytes_after: int = 0
    row_groups_before: int = 0
    row_groups_after: int = 0
    query: dict | None = None  # {"dataset", "symbol", "month", "before_s", "after_s"} when measured


def sort_keys(names: list[str]) -> list[str]:
    head = next((k for k in ("symbol", "metric") if k in names), None)
    return [k for k in (head, "ts") if k and k in names]


def _options(table: pa.Table, compress: bool, index: bool) -> tuple[dict, str]:
    """(extra write_table arguments, the mark recorded in the file) for these switches."""
    opts: dict = {}
    if compress:
        opts["compression_level"] = COMPRESS_LEVEL
    if index:
        keys = sort_keys(table.column_names)
        opts.update(row_group_size=ROW_GROUP_ROWS, write_page_index=True,
                    sorting_columns=[pq.SortingColumn(table.schema.get_field_index(k)) for k in keys],
                    write_statistics=True)
        blooms = {c: {"ndv": max(1, pc.count_distinct(table.column(c)).as_py()), "fpp": BLOOM_FPP} for c in BLOOM_COLUMNS
                  if c in table.column_names}
        if blooms:
            opts["bloom_filter_options"] = blooms
    return opts, f"compress={int(compress)};index={int(index)};rows={table.num_rows}"


def _is_optimized(path, compress: bool, index: bool, rows: int) -> bool:
    md = pq.ParquetFile(path).metadata
    mark = (md.metadata or {}).get(MARK)
    if mark != f"compress={int(compress)};index={int(index)};rows={rows}".encode():
        return False
    return not index or all(md.row_group(i).sorting_columns for i in range(md.num_row_groups))


def closed_days(layout: Layout, today: date | None = None) -> list[str]:
    """Day folders before today (UTC): days no longer being written."""
    today = (today or datetime.now(UTC).date()).isoformat()
    return [d for d in partition_store(layout).days_present() if d < today]


def optimize_partition(store: PartitionStore, day: str, dataset: str, *, compress: bool = True,
                       index: bool = True) -> tuple[int, int, int, int] | None:
    """Rewrite one partition; ``(bytes before, after, row groups before, after)``, None when skipped.

    Raises StorageError when the file does not match its manifest (it is never rebuilt upon) or
    when it changed under the rewrite (nothing written)."""
    entry = store.entry(day, dataset)
    if entry is None:
        return None
    path = store.committed_file(day, dataset)
    if _is_optimized(path, compress, index, entry.rows):
        return None
    if problem := store.verify_dataset(day, dataset):
        raise StorageError(f"{problem}; not optimized: run `mia check-integrity`")
    before_bytes, before_groups = entry.bytes, pq.ParquetFile(path).metadata.num_row_groups
    original = pq.read_table(path)
    digest = content_digest(original)
    table = original
    if index and (keys := sort_keys(table.column_names)):
        table = table.take(pc.sort_indices(table, [(k, "ascending") for k in keys]))
    opts, mark = _options(table, compress, index)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), MARK: mark.encode()})
    comp = "zstd" if compress else None
    new = store.write_many(day, {dataset: table}, schema_version=entry.schema_version, compression=comp,
                           parquet_options=opts, expect_sha256={dataset: entry.sha256})[dataset]
    written = store.committed_file(day, dataset)
    if content_digest(pq.read_table(written)) != digest:  # never keep a rewrite that changed a value
        store.write_many(day, {dataset: original}, schema_version=entry.schema_version,
                         compression=entry.compression, expect_sha256={dataset: new.sha256})
        raise StorageError(f"{day}/{dataset}: the optimized file does not hold the same rows; the previous "
                           "file was put back (report this)")
    return before_bytes, new.bytes, before_groups, pq.ParquetFile(written).metadata.num_row_groups


def probe_query(store: PartitionStore, dataset: str, symbol: str, month: str, repeat: int = 3) -> float:
    """Best-of-``repeat`` seconds of a DuckDB query over one symbol and one month of daily files."""
    import duckdb

    year, mon = parse_month(month)
    last = calendar.monthrange(year, mon)[1]
    files = [str(p) for p in store.files(dataset, f"{month}-01", f"{month}-{last:02d}")]
    if not files:
        return 0.0
    sql = ("SELECT count(*), min(ts), max(ts) FROM read_parquet(?, union_by_name = true) "
           "WHERE symbol = ? AND ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ + INTERVAL 1 MONTH")
    best = float("inf")
    with duckdb.connect() as con:
        for _ in range(repeat):
            t0 = time.perf_counter()
            con.execute(sql, [files, symbol, f"{month}-01 00:00:00+00", f"{month}-01 00:00:00+00"]).fetchall()
            best = min(best, time.perf_counter() - t0)
    return best


def _probe_target(store: PartitionStore, days: list[str]) -> tuple[str, str, str] | None:
    """(dataset, symbol, month): the busiest symbol of the latest month among ``days``."""
    for dataset in ("market_ticks", "market_bars", "signals"):
        have = [d for d in days if store.entry(d, dataset) is not None]
        if have:
            month = have[-1][:7]
            col = store.read(have[-1], dataset, columns=["symbol"]).column("symbol")
            counts = pc.value_counts(col).to_pylist()
            if counts:
                return dataset, max(counts, key=lambda c: c["counts"])["values"], month
    return None


def optimize(layout: Layout, store: PartitionStore, *, compress: bool = True, index: bool = True,
             days: list[str] | None = None, measure: bool = False, today: date | None = None) -> OptimizeReport:
    """Optimise every dataset of ``days`` (default: every closed day, see :func:`closed_days`).

    ``measure``: time one symbol over one month (:func:`probe_query`) before and after."""
    days = closed_days(layout, today) if days is None else sorted(parse_day(d).isoformat() for d in days)
    report = OptimizeReport()
    target = _probe_target(store, days) if measure else None
    before_s = probe_query(store, *target) if target else None
    for day in days:
        for dataset in DATASETS:
            outcome = optimize_partition(store, day, dataset, compress=compress, index=index)
            if outcome is None:
                report.skipped += store.entry(day, dataset) is not None
                continue
            report.rewritten.append(f"{day}/{dataset}")
            report.bytes_before += outcome[0]
            report.bytes_after += outcome[1]
            report.row_groups_before += outcome[2]
            report.row_groups_after += outcome[3]
    if target:
        report.query = {"dataset": target[0], "symbol": target[1], "month": target[2],
                        "before_s": before_s, "after_s": probe_query(store, *target)}
    return report
