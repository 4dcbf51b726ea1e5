"""The rule table: every data rule of the project, written once (dataset, rule, severity, ...).

One row per rule. The same rows drive:

- **ingestion** (:mod:`mia_pipeline.schemas.validate`): rows with a ``reason`` reject an event into
  quarantine with that reason (the first failing row, in :func:`ingest_rules` order, names it);
- **the per-day Dagster checks** (:mod:`mia_pipeline.quality.checks`): the rows whose ``check`` names a
  partition check are re-verified on the stored rows of each day (DuckDB), with the row's severity
  (``ERROR``: blocking, ``WARN``: a warning); day rules (keys, lost rows, day bounds, trading days) are
  rows too;
- **the Great Expectations suites** (:mod:`mia_pipeline.quality.gx`): every row whose test has a GX form
  becomes one or more expectations of the dataset's ``gx_completeness`` suite, grouped by ``gx``;
- **the quality score** (:mod:`mia_pipeline.quality.metrics`): validity is the share of a day's lines
  that no ingestion row rejected.

Ground floor: data only, imports :mod:`mia_pipeline.schemas.contract` and nothing else of the project.
Columns are dotted paths of the event payload (``market_context.bid``); ``timestamp`` is stored as ``ts``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mia_pipeline.schemas.contract import (
    ACTIONS,
    DECISION_ACTIONS,
    DEPTH_COMMANDS,
    EXIT_REASONS,
    FEATURE_COUNT,
    KIND_TO_DATASET,
    STATUSES,
    TIMEFRAMES,
)

ERROR, WARN = "ERROR", "WARN"
ANY = "*"           # a row for every dataset
I32_MAX = 2**31 - 1

# per-day partition checks (Dagster check names)
HAS_UNIQUE_KEYS = "has_unique_keys"
NON_EMPTY_WHEN_EVENTS_EXIST = "non_empty_when_events_exist"
PRICES_POSITIVE = "prices_positive"
MAX_PRICE = 1e9
ASK_ABOVE_BID = "ask_above_bid"
TIMESTAMPS_INSIDE_PARTITION_DAY = "timestamps_inside_partition_day"
TRADING_DAY_HAS_DATA = "trading_day_has_data"
# groups of the Great Expectations suite
REQUIRED, KEYS, DOMAIN = "required_fields_present", "keys_unique", "values_in_domain"


@dataclass(frozen=True)
class Rule:
    """One rule. ``test`` is one of :data:`TESTS`; ``reason`` the ingestion reject code (None: not checked
    at ingestion); ``check`` the per-day partition check that re-verifies it on stored rows (None: the GX
    suite only); ``gx`` its group in the GX suite (None: no GX form)."""

    dataset: str
    rule: str
    severity: str
    test: str
    columns: tuple[str, ...] = ()
    values: tuple = ()
    reason: str | None = None
    check: str | None = None
    gx: str | None = None
    description: str = ""


#: what each test means (the interpreters in schemas.validate, quality.checks and quality.gx implement them)
TESTS = {
    "not_null": "not null (and, for text, not empty)",
    "any_not_null": "at least one of the columns is not null",
    "gt0": "> 0 where present",
    "ge0": ">= 0 where present",
    "unit": "in [0, 1] where present",
    "in_set": "one of `values` where present",
    "a_ge_b": "columns[0] >= columns[1] where both present",
    "ohlc": "low <= open, close <= high",
    "vector_len": "a list of `values[0]` numbers, none null",
    "between": "in [values[0], values[1]]",
    # ingestion only: the text of the line becomes typed values (a stored column is typed already)
    "timestamps": "every timestamp is ISO-8601 with a zone, inside 1970-2100",
    "not_future": "the event timestamp is not later than now + max_future_ms",
    "decimal_fits": "a decimal fits its precision",
    "finite": "floats are finite",
    "known_symbol": "the symbol is one of the known symbols (when a list is given)",
    # day rules (per partition)
    "unique_key": "no two rows of the day share the dataset key",
    "non_empty": "a day whose raw lines hold events of the dataset's kind has rows",
    "inside_day": "every ts falls inside the partition's UTC day",
    "trading_day": "a CME trading day has data stored",
}
#: order of evaluation at ingestion: the first failing row names the reason
STAGES = {"not_null": 0, "between": 1, "timestamps": 2, "not_future": 3, "decimal_fits": 4, "finite": 5,
          "known_symbol": 7}
VALUE_STAGE = 6


def _rows(ds: str, *, required=(), price=(), positive_qty=(), quantity=(), nonnegative=(), unit=(), enum=None,
          any_of=(), quote=None, bar=False, vectors=()) -> list[Rule]:
    """One dataset's row rules in ingestion order (a compact way of writing the table, not a second one)."""
    out = [Rule(ds, f"required:{c}", WARN, "not_null", (c,), reason="missing_field", gx=REQUIRED) for c in required]
    out += [Rule(ds, f"price_positive:{c}", WARN, "gt0", (c,), reason="invalid_price", check=PRICES_POSITIVE,
                 gx=DOMAIN) for c in price]
    # no instrument trades above MAX_PRICE in its currency: a 1e300 is damage, not a price
    out += [Rule(ds, f"price_plausible:{c}", WARN, "between", (c,), (-MAX_PRICE, MAX_PRICE), reason="invalid_price",
                 gx=DOMAIN) for c in price]
    out += [Rule(ds, f"quantity_positive:{c}", WARN, "gt0", (c,), reason="invalid_quantity", gx=DOMAIN)
            for c in positive_qty]
    out += [Rule(ds, f"quantity_nonnegative:{c}", WARN, "ge0", (c,), reason="invalid_quantity", gx=DOMAIN)
            for c in quantity]
    out += [Rule(ds, f"nonnegative:{c}", WARN, "ge0", (c,), reason="negative_value", gx=DOMAIN) for c in nonnegative]
    out += [Rule(ds, f"unit_interval:{c}", WARN, "unit", (c,), reason="out_of_range", gx=DOMAIN) for c in unit]
    out += [Rule(ds, f"in_set:{c}", WARN, "in_set", (c,), tuple(v), reason="invalid_enum", gx=DOMAIN)
            for c, v in (enum or {}).items()]
    if any_of:
        out.append(Rule(ds, "any_price", WARN, "any_not_null", tuple(any_of), reason="missing_field"))
    if quote:
        out.append(Rule(ds, "quote_not_crossed", WARN, "a_ge_b", quote, reason="crossed_quote", check=ASK_ABOVE_BID,
                        gx=DOMAIN))
    if bar:
        out.append(Rule(ds, "bar_consistent", WARN, "ohlc", ("open", "high", "low", "close"),
                        reason="inconsistent_bar", gx=DOMAIN))
    out += [Rule(ds, f"feature_vector:{c}", WARN, "vector_len", (c,), (FEATURE_COUNT,), reason="bad_feature_vector")
            for c in vectors]
    return out


RULES: tuple[Rule, ...] = (
    # -- every dataset: the envelope and the typing of the line (ingestion), the day rules (per partition)
    *(Rule(ANY, f"required:{c}", WARN, "not_null", (c,), reason="missing_field", gx=REQUIRED)
      for c in ("schema_version", "event_id", "source", "timestamp")),
    Rule(ANY, "schema_version_supported", WARN, "between", ("schema_version",), (1, I32_MAX),
         reason="unsupported_schema_version", gx=DOMAIN),
    Rule(ANY, "timestamps_valid", ERROR, "timestamps", reason="bad_timestamp"),
    Rule(ANY, "not_in_future", ERROR, "not_future", ("timestamp",), reason="timestamp_in_future"),
    Rule(ANY, "decimals_fit", ERROR, "decimal_fits", reason="wrong_type"),
    Rule(ANY, "numbers_finite", ERROR, "finite", reason="non_finite_number"),
    Rule(ANY, "symbol_known", ERROR, "known_symbol", ("symbol",), reason="unknown_symbol"),
    Rule(ANY, HAS_UNIQUE_KEYS, ERROR, "unique_key", check=HAS_UNIQUE_KEYS, gx=KEYS,
         description="No two rows of the day share the dataset key (trade_id, signal_id, or the composite key). "
                     "Blocking: live views and joins rely on one row per key."),
    Rule(ANY, NON_EMPTY_WHEN_EVENTS_EXIST, ERROR, "non_empty", check=NON_EMPTY_WHEN_EVENTS_EXIST,
         description="A day whose stored raw lines hold events of this kind has a non-empty partition "
                     "(rows were not lost between the raw lines and the dataset). Blocking."),
    Rule(ANY, TIMESTAMPS_INSIDE_PARTITION_DAY, ERROR, "inside_day", ("ts",), check=TIMESTAMPS_INSIDE_PARTITION_DAY,
         description="Every row's ts falls inside the UTC day its partition names. Blocking: a partition key "
                     "means exactly the data of that day."),
    Rule(ANY, TRADING_DAY_HAS_DATA, WARN, "trading_day", check=TRADING_DAY_HAS_DATA,
         description="A CME Globex trading day (exchange_calendars CMES; weekends and CME holidays are not) has "
                     "data stored in some dataset: a trading day with nothing stored is the gap `mia "
                     "check-integrity` reports (warning; the same day fails on every dataset)."),
    # -- each dataset's values
    *_rows("trades",
           required=("trade_id", "symbol", "action", "quantity", "price"),
           price=("price", "market_context.bid", "market_context.ask", "execution.fill_price",
                  "risk_management.stop_loss", "risk_management.take_profit"),
           positive_qty=("quantity",), quantity=("market_context.volume",),
           nonnegative=("market_context.spread", "market_context.volatility", "execution.latency_ms",
                        "execution.commission", "risk_management.position_size_pct",
                        "risk_management.risk_reward_ratio", "risk_management.portfolio_heat"),
           unit=("battle_navale.confluence_score",), enum={"action": ACTIONS},
           quote=("market_context.ask", "market_context.bid")),
    *_rows("trade_exits",
           required=("trade_id", "symbol", "quantity", "exit_price", "reason"), price=("exit_price", "entry_price"),
           positive_qty=("quantity",), nonnegative=("commission", "holding_time_s"),
           enum={"action": ACTIONS, "reason": EXIT_REASONS}),
    *_rows("signals",
           required=("signal_id", "symbol", "timeframe"), nonnegative=("decision.execution_delay_ms",),
           unit=("decision.confidence", "battle_navale_analysis.confluence_levels.technical",
                 "battle_navale_analysis.confluence_levels.fundamental",
                 "battle_navale_analysis.confluence_levels.sentiment",
                 "battle_navale_analysis.confluence_levels.overall"),
           enum={"timeframe": TIMEFRAMES, "decision.action": DECISION_ACTIONS},
           vectors=("features_snapshot.raw_features", "features_snapshot.normalized_features",
                    "features_snapshot.feature_importance")),
    *_rows("market_bars",
           required=("symbol", "timeframe", "open", "high", "low", "close", "volume"),
           price=("open", "high", "low", "close", "vwap"), quantity=("volume", "bid_volume", "ask_volume", "trade_count"),
           enum={"timeframe": TIMEFRAMES}, bar=True),
    *_rows("market_ticks",
           required=("symbol", "seq"), any_of=("bid", "ask", "last"), price=("bid", "ask", "last"),
           quantity=("bid_size", "ask_size", "last_size"), nonnegative=("seq",), quote=("ask", "bid")),
    *_rows("market_depth",
           required=("symbol", "seq", "command"), price=("price",), quantity=("quantity", "num_orders"),
           nonnegative=("seq",), enum={"command": DEPTH_COMMANDS}),
    *_rows("performance", required=("metric", "value")),
    *_rows("system_status", required=("component", "status"), enum={"status": STATUSES}),
)

DATASET_OF_KIND = {k: (d or k) for k, d in KIND_TO_DATASET.items()}   # system_status: its own live table
DAY_TESTS = ("unique_key", "non_empty", "inside_day", "trading_day")


def rules_for(dataset: str) -> list[Rule]:
    """The rows that apply to ``dataset`` (the every-dataset rows first)."""
    return [r for r in RULES if r.dataset in (ANY, dataset)]


def ingest_rules(kind: str) -> list[Rule]:
    """The rows checked on each event of ``kind`` at ingestion, in evaluation order."""
    rows = [r for r in rules_for(DATASET_OF_KIND[kind]) if r.reason is not None]
    return sorted(rows, key=lambda r: STAGES.get(r.test, VALUE_STAGE))


def day_checks(dataset: str) -> list[Rule]:
    """One row per per-day partition check that can fail on ``dataset`` (display order): a check built
    from row rules appears only where the dataset has such a row (``ask_above_bid`` needs a quote)."""
    rows = rules_for(dataset)
    names = list(dict.fromkeys(r.check for r in rows if r.check is not None))
    order = [HAS_UNIQUE_KEYS, NON_EMPTY_WHEN_EVENTS_EXIST, PRICES_POSITIVE, ASK_ABOVE_BID,
             TIMESTAMPS_INSIDE_PARTITION_DAY, TRADING_DAY_HAS_DATA]
    return [next(r for r in rows if r.check == n) for n in sorted(names, key=order.index)]


def check_columns(dataset: str, check: str) -> list[Rule]:
    """The row rules of ``dataset`` that a per-day check re-verifies."""
    return [r for r in rules_for(dataset) if r.check == check and r.test not in DAY_TESTS]


ROW_CHECK_TEXT = {
    PRICES_POSITIVE: "Every price column of the day is > 0 (warning: flags damaged or mis-scaled prices).",
    ASK_ABOVE_BID: "Quotes of the day have ask >= bid, never crossed (warning).",
}


def check_description(check: str) -> str:
    row = next(r for r in RULES if r.check == check)
    return row.description or ROW_CHECK_TEXT[check]


def check_severity(check: str) -> str:
    return next(r for r in RULES if r.check == check and (r.test in DAY_TESTS or r.dataset != ANY)).severity
