"""Typed event contract of the landing zone and the fast JSON-lines parser.

Public API (ground floor: no Dagster, no I/O)::

    EVENT_KINDS             the 8 event kinds
    KIND_TO_DATASET         kind -> daily dataset name (system_status -> None: live view only)
    DATASET_KEYS            dataset -> key columns
    DATASET_SCHEMAS         dataset -> stored pa.Schema (ts, event_id, source, schema_version,
                            payload with nested structs/lists, extra, content_hash)
    TABLE_SCHEMAS           DATASET_SCHEMAS + "system_status"
    CURRENT_SCHEMA_VERSION  1
    REASONS                 reject reason code -> explanation
    parse_lines(data, *, now_ms, known_symbols=None, max_line_bytes=1_000_000, max_future_ms=300_000)
        -> ParseResult(tables, rejects: list[Reject], line_offsets, n_lines)
    dataset_table_to_events(dataset, table) -> list[dict]   the export (inverse of parse_lines)
    events_to_json(dataset, table) -> bytes                 the same as JSON Lines
    record_hash(table) -> pa.Array                          recompute content_hash

Example::

    >>> from mia_pipeline.schemas import parse_lines
    >>> tick = (b'{"kind":"market_tick","schema_version":1,"event_id":"t-1","source":"ibkr",'
    ...         b'"timestamp":"2025-06-23T14:30:15.125Z","symbol":"ES","seq":1,"bid":6022.5,"ask":6022.75}')
    >>> r = parse_lines(tick + b"\\n" + b"{oops\\n", now_ms=1_800_000_000_000)
    >>> r.tables["market_ticks"].num_rows, [(x.line, x.reason) for x in r.rejects]
    (1, [(1, 'malformed_json')])
"""

from mia_pipeline.schemas.contract import (
    CURRENT_SCHEMA_VERSION,
    DATASET_KEYS,
    DATASET_SCHEMAS,
    EVENT_KINDS,
    KIND_TO_DATASET,
    REASONS,
    TABLE_SCHEMAS,
)
from mia_pipeline.schemas.export import dataset_table_to_events, events_to_json
from mia_pipeline.schemas.hashing import record_hash
from mia_pipeline.schemas.parser import ParseResult, Reject, parse_lines

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "DATASET_KEYS",
    "DATASET_SCHEMAS",
    "EVENT_KINDS",
    "KIND_TO_DATASET",
    "REASONS",
    "TABLE_SCHEMAS",
    "ParseResult",
    "Reject",
    "dataset_table_to_events",
    "events_to_json",
    "parse_lines",
    "record_hash",
]
