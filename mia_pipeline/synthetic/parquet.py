"""Deterministic Parquet writing of the session tables.

Same tables -> same bytes: fixed writer settings (zstd level 1, dictionary pages, format 2.6), no
timestamps or pandas metadata in the files, one file per table. Tables are written on two threads (Arrow releases the
GIL), the largest first; the output does not depend on the thread schedule.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

WRITE_OPTIONS = {
    "compression": "zstd",
    "compression_level": 1,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "row_group_size": 1 << 20,
}


def write_table_file(table: pa.Table, path: Path, fsync: bool = False) -> Path:
    """Write one table with ``WRITE_OPTIONS`` (optionally fsynced); returns ``path``."""
    # No pandas metadata: files must not depend on how the table was built (Arrow or pandas), and
    # pandas cannot rebuild ArrowDtype list columns from it (plain readers get numpy arrays).
    table = table.replace_schema_metadata(None)
    with open(path, "wb") as fh:
        pq.write_table(table, fh, **WRITE_OPTIONS)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return path


def write_tables(tables: dict[str, pa.Table], out_dir: Path, *, fsync: bool = False) -> dict[str, Path]:
    """Write ``<out_dir>/<name>.parquet`` for each table; returns paths by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    order = sorted(tables, key=lambda name: -tables[name].nbytes)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(write_table_file, tables[name], out_dir / f"{name}.parquet", fsync) for name in order}
    return {name: futures[name].result() for name in tables}
