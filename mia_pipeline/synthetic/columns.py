"""Column access that works the same on pandas DataFrames and pyarrow Tables (as numpy arrays).

The invariant checks and the realism battery read tables through these helpers so they can run on
what the generator returns, on Arrow tables before any pandas conversion, or on frames read back
from Parquet (where list cells may be numpy arrays).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

Table = pd.DataFrame | pa.Table


def nrows(t: Table) -> int:
    return t.num_rows if isinstance(t, pa.Table) else len(t)


def names(t: Table) -> list[str]:
    return list(t.column_names if isinstance(t, pa.Table) else t.columns)


def _one_array(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The column as one Arrow array, without copying when it is a single chunk (the usual case)."""
    if isinstance(arr, pa.ChunkedArray):
        return arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    return arr


def _arrow(t: Table, name: str) -> pa.Array | None:
    if isinstance(t, pa.Table):
        return _one_array(t.column(name))
    s = t[name]
    if isinstance(s.dtype, pd.ArrowDtype) or isinstance(s.dtype, pd.StringDtype):
        return _one_array(pa.array(s.array))
    return None


def col(t: Table, name: str, dtype=None) -> np.ndarray:
    """A numeric column as a numpy array (zero-copy where Arrow allows)."""
    if isinstance(t, pa.Table):
        out = _one_array(t.column(name)).to_numpy(zero_copy_only=False)
    else:
        out = t[name].to_numpy()
    return out if dtype is None else out.astype(dtype, copy=False)


def codes(t: Table, name: str) -> tuple[np.ndarray, list]:
    """(integer codes, distinct values in order of first appearance) of a string column; -1 = null."""
    arr = _arrow(t, name)
    if arr is None:
        c, uniques = pd.factorize(t[name])
        return np.asarray(c), list(uniques)
    enc = arr.dictionary_encode()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist()


def rows_by_value(t: Table, name: str = "symbol") -> dict[str, np.ndarray]:
    """Row positions per distinct value of a string column (e.g. per symbol)."""
    c, uniques = codes(t, name)
    if len(uniques) <= 8:
        return {str(u): np.flatnonzero(c == k) for k, u in enumerate(uniques)}
    order = np.argsort(c, kind="stable")
    bounds = np.searchsorted(c[order], np.arange(len(uniques) + 1))
    return {str(u): order[bounds[k]:bounds[k + 1]] for k, u in enumerate(uniques)}


def list_matrix(t: Table | pa.Array, name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(values as a (rows, width) array, lengths) for a list column (or a ListArray when ``name`` is
    None); ragged rows are NaN-padded. Uniform lists come back as a zero-copy view."""
    arr = t if name is None else _arrow(t, name)
    if arr is None:  # object column of lists / numpy arrays (e.g. read with plain pandas)
        arr = pa.array([np.asarray(v).tolist() for v in t[name]])
    offsets = arr.offsets.to_numpy()
    lengths = np.diff(offsets)
    values = arr.values.to_numpy(zero_copy_only=False)[offsets[0]:offsets[-1]]
    width = int(lengths.max(initial=0))
    if len(lengths) and np.all(lengths == width):
        return values.reshape(len(lengths), width), lengths
    out = np.full((len(lengths), width), np.nan)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    cells = np.arange(len(values)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    out[rows, cells] = values
    return out, lengths


def batches(t: Table, cols: list[str]) -> Iterator[pa.RecordBatch]:
    """The columns as Arrow record batches (aligned chunks, no copy for Arrow-backed data)."""
    if isinstance(t, pa.Table):
        yield from t.select(cols).to_batches()
        return
    arrays = {}
    for c in cols:
        arr = _arrow(t, c)
        if arr is None:
            values = t[c]
            arr = pa.array([np.asarray(v).tolist() for v in values]) if values.dtype == object else pa.array(values)
        arrays[c] = arr
    yield from pa.table(arrays).to_batches()
