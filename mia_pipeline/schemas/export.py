"""The export: stored rows → the original event dicts (guide shape), the inverse of ``parse_lines``.

For each row: ``kind`` (from the dataset), ``schema_version``, ``event_id``, ``source``,
``timestamp`` (``YYYY-MM-DDTHH:MM:SS.mmmZ``), then the payload with nested objects as objects;
null fields are omitted (an absent optional field and an explicit ``null`` both come back absent);
finally ``extra`` is deep-merged back in (unknown keys, original timestamp spellings), so parse →
store → export gives back every value of the input. Columns unknown to this schema version (a
newer partition read by older code) are exported as top-level keys when non-null. ``_line`` and
``content_hash`` are bookkeeping and never exported.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.schemas.contract import TABLE_SCHEMAS, TABLE_TO_KIND

_BOOKKEEPING = ("_line", "content_hash", "extra")


def _strings_for_timestamps(arr: pa.Array) -> pa.Array:
    """Same array with every timestamp (at any struct depth) as its canonical string."""
    t = arr.type
    if pa.types.is_timestamp(t):
        utc = arr.cast(pa.timestamp("ms", tz="UTC"))
        return pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ")
    if pa.types.is_struct(t) and any(_has_ts(f.type) for f in t):
        children = [_strings_for_timestamps(pc.struct_field(arr, [i])) for i in range(t.num_fields)]
        return pa.StructArray.from_arrays(children, names=[f.name for f in t], mask=pc.is_null(arr))
    return arr


def _has_ts(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or (pa.types.is_struct(t) and any(_has_ts(f.type) for f in t))


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value


def _merge(base: dict, patch: dict) -> dict:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def dataset_table_to_events(dataset: str, table: pa.Table) -> list[dict[str, Any]]:
    """Rebuild the events of a stored (or freshly parsed) table of ``dataset`` (or "system_status")."""
    if dataset not in TABLE_SCHEMAS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(TABLE_SCHEMAS)}")
    kind = TABLE_TO_KIND[dataset]
    known = TABLE_SCHEMAS[dataset].names
    names = [n for n in table.column_names if n not in _BOOKKEEPING]
    ordered = [n for n in known if n in names] + [n for n in names if n not in known]
    cols = []
    for name in ordered:
        col = table.column(name)
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        cols.append(_strings_for_timestamps(col))
    rows = pa.Table.from_arrays(cols, names=ordered).to_pylist() if ordered else [{} for _ in range(table.num_rows)]
    extras = table.column("extra").to_pylist() if "extra" in table.column_names else [None] * table.num_rows
    events = []
    for row, extra in zip(rows, extras, strict=True):
        event = {"kind": kind}
        for key, value in row.items():
            if value is not None:
                event["timestamp" if key == "ts" else key] = _drop_nulls(value)
        if extra:
            _merge(event, json.loads(extra))
        events.append(event)
    return events


def events_to_json(dataset: str, table: pa.Table) -> bytes:
    """The same events as JSON Lines (compact, UTF-8, one ``\\n``-terminated line per event)."""
    return b"".join(
        json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
        for e in dataset_table_to_events(dataset, table)
    )
