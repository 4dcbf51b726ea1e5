"""Subprocess for the kill test: rewrites one day's partition forever with versions v, v+1, ...

Version v has ``rows(v)`` rows, all with ``version == v``, so a reader can tell a complete version
from a torn one.
"""

import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet  # noqa: F401  (imported before "ready": kills should land in writes, not imports)

from mia_pipeline.layout import Layout
from mia_pipeline.storage import partition_store


def rows(v: int) -> int:
    return 1000 + (v * 7919) % 20000


def table(v: int) -> pa.Table:
    n = rows(v)
    # numpy-backed arrays: building from Python lists would import pandas (~2 s) in the child
    return pa.table({"version": np.full(n, v, dtype=np.int64), "x": np.arange(n, dtype=np.int64)})


if __name__ == "__main__":
    root, first = sys.argv[1], int(sys.argv[2])
    store = partition_store(Layout(root, store=sys.argv[3] if len(sys.argv) > 3 else None))  # [s3://bucket/prefix]
    v = first
    table(v)  # warm up so kills land in writes, not in lazy initialisation
    print("ready", flush=True)
    while True:
        store.write("2025-06-23", "trades", table(v))
        v += 1
