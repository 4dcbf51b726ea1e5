"""The seven tables' schemas (the seed's columns) and Arrow <-> pandas conversion.

Types: ``ts``/``bar_start_ts`` int64 epoch ms UTC; prices float64 on the tick grid; quote sizes
int32; aggregated volumes int64; ``symbol``/``label``/``volatility_regime`` strings; L2 price/size
lists are Arrow list columns (in pandas: ``ArrowDtype(list<...>)``; a cell reads as a Python list).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

TABLES: tuple[str, ...] = ("l1", "l2", "bars", "footprint", "context", "leadership_features", "ground_truth")

_F, _I, _I32, _S = pa.float64(), pa.int64(), pa.int32(), pa.string()

SCHEMAS: dict[str, pa.Schema] = {
    "l1": pa.schema([("ts", _I), ("symbol", _S), ("bid", _F), ("ask", _F), ("last_price", _F),
                     ("bid_size", _I32), ("ask_size", _I32), ("last_size", _I32)]),
    "l2": pa.schema([("ts", _I), ("symbol", _S), ("levels", _I32), ("bid_px", pa.list_(_F)),
                     ("bid_sz", pa.list_(_I32)), ("ask_px", pa.list_(_F)), ("ask_sz", pa.list_(_I32)),
                     ("mid", _F), ("spread", _F)]),
    "bars": pa.schema([("ts", _I), ("symbol", _S), ("open", _F), ("high", _F), ("low", _F), ("close", _F),
                       ("volume", _I), ("vwap", _F), ("vwap_sd1", _F), ("vwap_sd2", _F)]),
    "footprint": pa.schema([("bar_start_ts", _I), ("symbol", _S), ("price_level", _F), ("bid_volume", _I),
                            ("ask_volume", _I), ("delta", _I)]),
    "context": pa.schema([("ts", _I), ("vix", _F), ("gamma_flip", _F), ("call_wall", _F), ("put_wall", _F),
                          ("pin_strength", _F), ("put_call_ratio", _F)]),
    "leadership_features": pa.schema([("ts", _I), ("symbol", _S), ("confluence_score", _F),
                                      ("delta_divergence", _F), ("volume_imbalance", _F),
                                      ("sierra_pattern_strength", _F), ("leadership_strength", _F),
                                      ("volatility_regime", _S), ("options_flow_bias", _F),
                                      ("gamma_proximity", _F)]),
    "ground_truth": pa.schema([("ts", _I), ("symbol", _S), ("label", _S), ("confidence", _F),
                               ("side", pa.int8())]),
}


def strings(codes: np.ndarray, vocabulary) -> pa.Array:
    """A string column from integer codes into a small vocabulary (no Python objects per row)."""
    dictionary = pa.array(list(vocabulary), type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)), dictionary).cast(_S)


def lists(values: np.ndarray, width: int) -> pa.Array:
    """A list column from a (rows, width) array, built from offsets (no Python lists)."""
    rows = values.shape[0]
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(values).reshape(-1)))


def table(name: str, columns: dict) -> pa.Table:
    """Build a table in the schema's column order; every schema column must be given."""
    schema = SCHEMAS[name]
    arrays = [pa.array(columns[f.name], type=f.type) if not isinstance(columns[f.name], pa.Array)
              else columns[f.name].cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def empty(name: str) -> pa.Table:
    return SCHEMAS[name].empty_table()


def _types_mapper(t: pa.DataType):
    return pd.ArrowDtype(t) if pa.types.is_list(t) else None


def to_pandas(t: pa.Table) -> pd.DataFrame:
    return t.to_pandas(types_mapper=_types_mapper)


def to_arrow(name: str, df: pd.DataFrame) -> pa.Table:
    """Back to Arrow in the table's exact schema (columns in schema order; extra columns rejected)."""
    schema = SCHEMAS[name]
    missing = [c for c in schema.names if c not in df.columns]
    extra = [c for c in df.columns if c not in schema.names]
    if missing or extra:
        raise ValueError(f"table {name!r}: missing columns {missing}, unexpected columns {extra}")
    return pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
