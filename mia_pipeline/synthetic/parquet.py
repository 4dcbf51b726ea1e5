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
    "version": "2.6",
    "data_page_version": "1.0",
}


def _options(schema: pa.Schema) -> dict:
    """WRITE_OPTIONS + min/max statistics on the flat columns (not on list elements: ~10 % of the
    L2 write for statistics nobody filters on)."""
    return dict(WRITE_OPTIONS, write_statistics=[f.name for f in schema if not pa.types.is_list(f.type)])


# Row groups of a fixed size: a table written at once and the same table streamed chunk by chunk
# (``StreamWriter``) give the same bytes when the chunks hold ROW_GROUP_ROWS rows.
ROW_GROUP_ROWS = 1 << 18


def write_table_file(table: pa.Table, path: Path, fsync: bool = False) -> Path:
    """Write one table with ``WRITE_OPTIONS`` (optionally fsynced); returns ``path``."""
    # No pandas metadata: files must not depend on how the table was built (Arrow or pandas), and
    # pandas cannot rebuild ArrowDtype list columns from it (plain readers get numpy arrays).
    table = table.replace_schema_metadata(None)
    with open(path, "wb") as fh:
        pq.write_table(table, fh, row_group_size=ROW_GROUP_ROWS, **_options(table.schema))
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


class StreamWriter:
    """Write a table chunk by chunk (each chunk ``ROW_GROUP_ROWS`` rows, the last one shorter);
    the file is byte-identical to ``write_table_file`` of the concatenated table."""

    def __init__(self, path: Path, schema: pa.Schema, fsync: bool = False):
        self.path, self.fsync = path, fsync
        self.fh = open(path, "wb")
        self.writer = pq.ParquetWriter(self.fh, schema.remove_metadata(), **_options(schema))

    def write(self, chunk: pa.Table) -> None:
        self.writer.write_table(chunk.replace_schema_metadata(None), row_group_size=ROW_GROUP_ROWS)

    def abort(self) -> None:
        """Close without caring whether the file is complete (it is deleted by the caller)."""
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - the file is being discarded
            pass
        self.fh.close()

    def close(self) -> Path:
        self.writer.close()
        if self.fsync:
            self.fh.flush()
            os.fsync(self.fh.fileno())
        self.fh.close()
        return self.path
