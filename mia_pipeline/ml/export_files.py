"""Export files: frames written as Parquet / CSV / JSON Lines (vectorised, no per-row loop), and the
statistics of an export (per column, label balance). Used by :mod:`mia_pipeline.ml.export`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from mia_pipeline.ml.bundle import DatasetBundle, write_parquet


# ---------------------------------------------------------------------------------------------- writers
def _flat_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table with its named index as the first column; times as ISO-8601 UTC text."""
    flat = frame.reset_index() if frame.index.name else frame
    table = pa.Table.from_pandas(flat, preserve_index=False)
    for i, fld in enumerate(table.schema):
        if pa.types.is_timestamp(fld.type):
            col = table.column(i).cast(pa.timestamp(fld.type.unit, "UTC"))
            try:  # milliseconds when that loses nothing: one form across columns stored in ms and ns
                col = col.cast(pa.timestamp("ms", "UTC"))
            except pa.ArrowInvalid:
                pass
            table = table.set_column(i, fld.name, pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ"))
    return table.combine_chunks()


def _json_values(col: pa.ChunkedArray) -> pa.Array:
    arr = col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    if pa.types.is_floating(arr.type):
        text = pc.if_else(pc.is_finite(arr), pc.cast(arr, pa.string()), pa.scalar(None, pa.string()))
    elif pa.types.is_boolean(arr.type) or pa.types.is_integer(arr.type):
        text = pc.cast(arr, pa.string())
    else:  # text: JSON-escape each distinct value once
        enc = pc.dictionary_encode(pc.cast(arr, pa.large_string()))
        quoted = pa.array([json.dumps(v) for v in enc.dictionary.to_pylist()], pa.large_string())
        text = pc.take(quoted, enc.indices)
    return pc.fill_null(pc.cast(text, pa.large_string()), "null")


def _json_lines(table: pa.Table) -> pa.Buffer:
    def text(s: str) -> pa.Scalar:
        return pa.scalar(s, pa.large_string())

    parts = [pc.binary_join_element_wise(text(json.dumps(name) + ":"), _json_values(table.column(name)), text(""))
             for name in table.column_names]
    lines = pc.binary_join_element_wise(text("{"), pc.binary_join_element_wise(*parts, text(",")), text("}\n"),
                                        text(""))
    if not len(lines):
        return pa.py_buffer(b"")
    # The rows are contiguous in the array's data buffer: write that span as is (no per-row copy).
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset:lines.offset + len(lines) + 1]
    return lines.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def write_frame(frame: pd.DataFrame, path: Path, fmt: str, compression: str | None) -> None:
    """``frame`` to ``path`` as parquet (``compression`` snappy/zstd/gzip, dtypes kept) or csv/json (gzip when
    ``compression``; times as ISO-8601 UTC text; missing values empty / null)."""
    if fmt == "parquet":
        write_parquet(frame, path, compression=compression or "snappy")
        return
    with pa.CompressedOutputStream(str(path), "gzip") if compression else pa.OSFile(str(path), "wb") as out:
        table = _flat_table(frame)
        if fmt == "csv":
            pcsv.write_csv(table, out)
        else:
            out.write(_json_lines(table))


# ---------------------------------------------------------------------------------------------- statistics
def jsonable(obj):
    """NaN/inf → None, numpy and pandas scalars → Python ones, times → ISO-8601 UTC (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, pd.Timestamp):
        return None if pd.isna(obj) else obj.tz_convert("UTC").isoformat().replace("+00:00", "Z")
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def column_statistics(frame: pd.DataFrame) -> dict[str, dict]:
    """Per column: ``count``, ``missing`` and, by kind, mean/std/min/25%/50%/75%/max (numbers),
    ``true``/``true_share`` (booleans), min/max (times), ``distinct``/``top``/``top_count`` (text)."""
    out: dict[str, dict] = {}
    count, missing = frame.count(), frame.isna().sum()
    num = frame.select_dtypes("number")
    desc = num.describe().T if len(num.columns) else pd.DataFrame()
    for name in frame.columns:
        s, row = frame[name], {"count": int(count[name]), "missing": int(missing[name])}
        if pd.api.types.is_bool_dtype(s):
            row |= {"true": int(s.sum()), "true_share": float(s.mean()) if len(s) else None}
        elif name in desc.index:
            d = desc.loc[name]
            row |= {"mean": d["mean"], "std": d["std"], "min": d["min"], "q25": d["25%"], "median": d["50%"],
                    "q75": d["75%"], "max": d["max"]}
        elif pd.api.types.is_datetime64_any_dtype(s):
            row |= {"min": s.min(), "max": s.max()}
        else:
            counts = s.value_counts()
            row |= {"distinct": int(len(counts)), "top": counts.index[0] if len(counts) else None,
                    "top_count": int(counts.iloc[0]) if len(counts) else 0}
        out[str(name)] = row
    return out


LABEL_TARGETS = ("tb_label", "success", "executed")


def label_balance(labels: pd.DataFrame) -> dict[str, dict]:
    """Per target label: ``{value: {"rows": n, "share": n / labelled rows}}`` plus ``missing`` rows."""
    out = {}
    for name in (c for c in LABEL_TARGETS if c in labels.columns):
        counts = labels[name].value_counts().sort_index()
        total = int(counts.sum())
        key = (lambda v: str(v).lower()) if pd.api.types.is_bool_dtype(labels[name]) else (lambda v: f"{v:g}")
        out[name] = {"values": {key(v): {"rows": int(n), "share": n / total} for v, n in counts.items()},
                     "missing": int(labels[name].isna().sum())}
    return out


def statistics(frames: dict[str, pd.DataFrame], bundle: DatasetBundle) -> dict:
    return jsonable({"window": bundle.metadata.get("window"), "rows": len(frames["features_dataset"]),
                      "features": column_statistics(frames["features_dataset"]),
                      "labels": column_statistics(frames["labels_dataset"]),
                      "label_balance": label_balance(frames["labels_dataset"])})
