"""DuckDB warehouse: ``data/warehouse.duckdb`` holds one view per dataset over all daily partitions.

The views read the Parquet files live (a glob over ``snapshots/daily/*/<dataset>.parquet``), so a
newly written day shows up without refreshing; refreshing is only needed when a dataset appears
for the first time. DuckDB is single-writer: only :func:`refresh_views` opens the file for writing
(run it from one process at a time: the Dagster asset uses a pool of 1); readers use
:func:`connect_readonly`.
"""

from __future__ import annotations

import duckdb

from mia_pipeline.layout import DATASETS, Layout


def _glob(layout: Layout, dataset: str) -> str:
    return str(layout.daily_dir / "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]" / f"{dataset}.parquet")


def refresh_views(layout: Layout) -> dict[str, int]:
    """(Re)create a view per dataset that has at least one partition; drop views of vanished ones.

    Returns ``{dataset: row count}`` for the views that exist afterwards.
    """
    layout.warehouse_file.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with duckdb.connect(str(layout.warehouse_file)) as con:
        for ds in DATASETS:
            has_files = any(layout.daily_dir.glob(f"*/{ds}.parquet"))
            if has_files:
                pattern = _glob(layout, ds).replace("'", "''")
                con.execute(
                    f"CREATE OR REPLACE VIEW {ds} AS "
                    f"SELECT * FROM read_parquet('{pattern}', union_by_name = true, filename = true)"
                )
                counts[ds] = con.execute(f"SELECT count(*) FROM {ds}").fetchone()[0]
            else:
                con.execute(f"DROP VIEW IF EXISTS {ds}")
    return counts


def connect_readonly(layout: Layout) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse (raises if it was never created: run `mia init`)."""
    if not layout.warehouse_file.exists():
        raise FileNotFoundError(f"{layout.warehouse_file} does not exist yet; run `mia init` or `make demo` first")
    return duckdb.connect(str(layout.warehouse_file), read_only=True)
