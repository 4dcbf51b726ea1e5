"""The landing-zone event contract: every kind's fields, Arrow types, keys and value rules.

One event per JSON line::

    {"kind": "trade", "schema_version": 1, "event_id": "...", "source": "...",
     "timestamp": "2025-06-23T14:30:15.123Z", ...payload}

The payload is the guide's snapshot shape at the top level (§2.2). :data:`PAYLOADS` is the single
definition of each kind's payload as an Arrow struct; everything else is derived from it:

- the *stored* schema (:data:`DATASET_SCHEMAS`): envelope columns + payload columns with nested
  structs and lists kept as they are; timestamps become ``timestamp[ms, tz=UTC]``;
- the *parse* schema: the same with every timestamp as a JSON string (validated and converted after
  parsing, so a missing zone gets its own reason code instead of failing the whole block).

Schema evolution: a field added in version 2 is a new *nullable* column appended to the payload.
Old partitions lack it and read back as nulls when concatenated with permissive promotion
(``pa.concat_tables(..., promote_options="permissive")``). Required fields are only ever required
of events, never of stored columns, so every stored column is nullable.
"""

from __future__ import annotations

import pyarrow as pa

CURRENT_SCHEMA_VERSION = 1

EVENT_KINDS = ("trade", "trade_exit", "signal", "market_bar", "market_tick", "performance", "system_status",
               "market_depth")

KIND_TO_DATASET: dict[str, str | None] = {
    "trade": "trades",
    "trade_exit": "trade_exits",
    "signal": "signals",
    "market_bar": "market_bars",
    "market_tick": "market_ticks",
    "performance": "performance",
    "system_status": None,  # live status view only, no dataset
    "market_depth": "market_depth",
}
#: dataset (or "system_status") -> kind; parse_lines returns its tables under these names
TABLE_TO_KIND = {(d or k): k for k, d in KIND_TO_DATASET.items()}

DATASET_KEYS: dict[str, tuple[str, ...]] = {
    "trades": ("trade_id",),
    "trade_exits": ("trade_id",),
    "signals": ("signal_id",),
    "market_bars": ("source", "symbol", "timeframe", "ts"),
    "market_ticks": ("source", "symbol", "ts", "seq"),
    # a sample is one series' value at one instant: two sources or two tag sets are two series
    "performance": ("source", "metric", "ts", "tags.symbol", "tags.strategy", "tags.timeframe", "tags.account",
                    "tags.session", "tags.component"),
    "market_depth": ("source", "symbol", "ts", "seq"),
}

TIMEFRAMES = ("1s", "5s", "15s", "30s", "1min", "2min", "3min", "5min", "10min", "15min", "30min",
              "1h", "2h", "4h", "1d")
ACTIONS = ("BUY", "SELL")
DECISION_ACTIONS = ("BUY", "SELL", "HOLD")
EXIT_REASONS = ("stop_loss", "take_profit", "trailing_stop", "signal", "manual", "timeout",
                "end_of_day", "liquidation")
STATUSES = ("starting", "running", "ok", "degraded", "warning", "error", "critical", "stopped", "down")
FEATURE_COUNT = 8
# order-book commands of a depth update (Sierra .depth codes 0..7, in that order)
DEPTH_COMMANDS = ("none", "clear", "add_bid", "add_ask", "modify_bid", "modify_ask", "delete_bid", "delete_ask")

F, INT, S, B = pa.float64(), pa.int64(), pa.string(), pa.bool_()
TS = pa.timestamp("ms", tz="UTC")


def _st(*fields) -> pa.StructType:
    return pa.struct(list(fields))


PAYLOADS: dict[str, pa.StructType] = {
    # guide §2.2 "Trade Snapshot", every field kept
    "trade": _st(
        ("trade_id", S), ("symbol", S), ("action", S), ("quantity", INT), ("price", F),
        ("battle_navale", _st(
            ("signal_type", S), ("pattern", S), ("confluence_score", F),
            ("features", _st(*[(f"feature_{i}", F) for i in range(1, FEATURE_COUNT + 1)])),
            ("market_regime", S), ("strength", S))),
        ("market_context", _st(("bid", F), ("ask", F), ("spread", F), ("volume", INT), ("volatility", F))),
        ("execution", _st(("order_id", S), ("fill_price", F), ("slippage", F), ("latency_ms", F),
                          ("commission", F))),
        ("risk_management", _st(("position_size_pct", F), ("stop_loss", F), ("take_profit", F),
                                ("risk_reward_ratio", F), ("portfolio_heat", F))),
    ),
    # a position closed: the event timestamp is the exit time
    "trade_exit": _st(
        ("trade_id", S), ("symbol", S), ("action", S), ("quantity", INT), ("exit_price", F),
        ("entry_price", F), ("entry_timestamp", TS), ("pnl", F), ("pnl_pct", F), ("commission", F),
        ("slippage", F), ("holding_time_s", F), ("reason", S), ("order_id", S),
    ),
    # guide §2.2 "Signal Snapshot", every field kept
    "signal": _st(
        ("signal_id", S), ("symbol", S), ("timeframe", S),
        ("battle_navale_analysis", _st(
            ("primary_pattern", S), ("secondary_patterns", pa.list_(S)),
            ("confluence_levels", _st(("technical", F), ("fundamental", F), ("sentiment", F), ("overall", F))),
            ("vikings_defenseurs", _st(("mode", S), ("strength", F), ("momentum", S))))),
        ("features_snapshot", _st(
            ("calculation_timestamp", TS), ("raw_features", pa.list_(F)),
            ("normalized_features", pa.list_(F)), ("feature_importance", pa.list_(F)))),
        ("decision", _st(("action", S), ("confidence", F), ("reasoning", S), ("executed", B),
                         ("execution_delay_ms", F))),
    ),
    # OHLCV bar; sizes are float64 because feeds (IBKR) report fractional FX volumes
    "market_bar": _st(
        ("symbol", S), ("timeframe", S), ("open", F), ("high", F), ("low", F), ("close", F),
        ("volume", F), ("vwap", F), ("bid_volume", F), ("ask_volume", F), ("trade_count", INT),
    ),
    # quote and/or trade tick; seq orders ticks sharing a millisecond
    "market_tick": _st(
        ("symbol", S), ("seq", INT), ("bid", F), ("ask", F), ("last", F),
        ("bid_size", F), ("ask_size", F), ("last_size", F),
    ),
    # one order-book (L2) update; seq orders updates sharing a millisecond; end_of_batch: the book is
    # consistent after this update; price is null for "clear"
    "market_depth": _st(
        ("symbol", S), ("seq", INT), ("command", S), ("price", F), ("quantity", INT), ("num_orders", INT),
        ("end_of_batch", B),
    ),
    # one metric sample; tags is a fixed struct (the Arrow JSON reader has no map type): other tag
    # keys are kept in `extra`
    "performance": _st(
        ("metric", S), ("value", F), ("unit", S),
        ("tags", _st(("symbol", S), ("strategy", S), ("timeframe", S), ("account", S), ("session", S),
                     ("component", S))),
    ),
    # live status only; unlisted metrics are kept in `extra`
    "system_status": _st(
        ("component", S), ("status", S), ("message", S),
        ("metrics", _st(("cpu_pct", F), ("memory_pct", F), ("memory_mb", F), ("disk_pct", F),
                        ("disk_free_gb", F), ("latency_ms", F), ("queue_depth", F), ("events_per_s", F),
                        ("uptime_s", F), ("error_count", F))),
    ),
}

# Envelope: `kind` is implied by the dataset and not stored; `timestamp` is stored as `ts`.
ENVELOPE_PARSE = [("kind", S), ("schema_version", INT), ("event_id", S), ("source", S), ("timestamp", S)]
ENVELOPE_REQUIRED = ("kind", "schema_version", "event_id", "source", "timestamp")

# Value rules: the rule table, mia_pipeline.quality.rules (one place for every data rule).
SYMBOL_FIELD = {"trade": "symbol", "trade_exit": "symbol", "signal": "symbol", "market_bar": "symbol",
                "market_tick": "symbol", "market_depth": "symbol"}

REASONS: dict[str, str] = {
    "non_utf8": "the line contains bytes that are not valid UTF-8",
    "oversize_line": "the line is longer than max_line_bytes",
    "malformed_json": "not valid JSON (syntax error, truncated line, several values on one line, "
                      "invalid escape or lone surrogate)",
    "nesting_too_deep": "objects/arrays nested deeper than 64 levels (lines.MAX_DEPTH)",
    "not_an_object": "valid JSON but not an object",
    "duplicate_key": "the same key appears twice in one JSON object",
    "unknown_kind": "`kind` is not one of " + ", ".join(EVENT_KINDS),
    "missing_field": "a required field is absent, null or an empty string",
    "wrong_type": "a field has the wrong JSON type (e.g. a string for a number, 1.0 for an integer)",
    "unsupported_schema_version": "schema_version is below 1",
    "bad_timestamp": "a timestamp is not an ISO-8601 date-time string",
    "timestamp_no_zone": "a timestamp has no zone (expected e.g. 2025-06-23T14:30:15.123Z)",
    "timestamp_in_future": "the event timestamp is later than now_ms + max_future_ms",
    "non_finite_number": "a number is NaN or +/-Infinity",
    "invalid_price": "a price is zero or negative",
    "invalid_quantity": "a quantity, size or volume is negative (or zero for a position quantity)",
    "negative_value": "a value that cannot be negative is (commission, latency, spread, seq...)",
    "out_of_range": "a score or confidence is outside [0, 1]",
    "invalid_enum": "a categorical field has a value outside its allowed set",
    "crossed_quote": "ask is below bid",
    "inconsistent_bar": "OHLC inconsistent: low > high, or open/close outside [low, high]",
    "bad_feature_vector": f"a features_snapshot vector does not have {FEATURE_COUNT} values",
    "unknown_symbol": "the symbol is not in known_symbols",
    "source_disabled": "the event's source is off in the settings (data_collection.sources.<name>: false)",
    "out_of_order": "a Sierra record earlier than the one before it (Sierra writes in time order)",
    "sierra_record_kind": "a Sierra record that is not of its file's kind (a bar among single trades: "
                          "NumTrades > 1, or an Open that is no trade flag)",
    "sierra_bad_price": "a Sierra record whose Close is zero or negative (damaged: the bars built from it "
                        "would be wrong)",
    "sierra_bad_bar": "a Sierra bar record whose High is below its Low (damaged)",
    "sierra_bad_command": "a Sierra depth record whose command is not 0..7 (damaged)",
}


def _to_parse_type(t: pa.DataType) -> pa.DataType:
    """Timestamps arrive as JSON strings; structs/lists recurse."""
    if pa.types.is_timestamp(t):
        return S
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _to_parse_type(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(_to_parse_type(t.value_type))
    return t


def _stored_schema(kind: str) -> pa.Schema:
    payload = list(PAYLOADS[kind])
    return pa.schema(
        [("ts", TS), ("event_id", S), ("source", S), ("schema_version", pa.int32())]
        + [(f.name, f.type) for f in payload]
        + [("extra", S), ("content_hash", S)],
        metadata={b"mia.kind": kind.encode(), b"mia.schema_version": str(CURRENT_SCHEMA_VERSION).encode()},
    )


def kind_parse_schema(kind: str) -> pa.Schema:
    """The JSON-side schema of one kind: envelope + payload, timestamps as strings."""
    return pa.schema(ENVELOPE_PARSE + [(f.name, _to_parse_type(f.type)) for f in PAYLOADS[kind]])


def _union_parse_schema() -> pa.Schema:
    fields: dict[str, pa.DataType] = {}
    for kind in EVENT_KINDS:
        for f in kind_parse_schema(kind):
            if fields.setdefault(f.name, f.type) != f.type:
                raise TypeError(f"field {f.name!r} has two types across kinds: {fields[f.name]} / {f.type}")
    return pa.schema(list(fields.items()))


#: stored schema per dataset name, plus "system_status" (returned by parse_lines, not stored)
DATASET_SCHEMAS: dict[str, pa.Schema] = {
    d: _stored_schema(k) for k, d in KIND_TO_DATASET.items() if d is not None
}
TABLE_SCHEMAS: dict[str, pa.Schema] = {**DATASET_SCHEMAS, "system_status": _stored_schema("system_status")}
KIND_PARSE_SCHEMAS: dict[str, pa.Schema] = {k: kind_parse_schema(k) for k in EVENT_KINDS}
UNION_PARSE_SCHEMA: pa.Schema = _union_parse_schema()
