"""The rule table drives ingestion, the per-day checks and the GX suites: one row, every interpreter."""

from pathlib import Path

import pytest

from mia_pipeline.quality import rules as R
from mia_pipeline.quality.checks import BID_ASK, BLOCKING, CHECK_DESCRIPTIONS, PRICE_COLUMNS, checks_for
from mia_pipeline.quality.gx import daily_expectations, expectations_of
from mia_pipeline.schemas import parse_lines
from mia_pipeline_tests.guide_examples import make_event, to_line

NOW = 1_800_000_000_000


def _reasons(event: dict) -> list[str]:
    return [r.reason for r in parse_lines(to_line(event) + b"\n", now_ms=NOW).rejects]


def test_every_row_has_a_form_in_each_interpreter_it_names():
    for rule in R.RULES:
        assert rule.test in R.TESTS and rule.severity in (R.ERROR, R.WARN)
        if rule.gx is not None and rule.test not in R.DAY_TESTS:
            have = {"ts" if c == "timestamp" else c for c in rule.columns}
            assert expectations_of(rule, have), rule.rule
    for ds in PRICE_COLUMNS:
        assert "prices_positive" in checks_for(ds)


def test_checks_and_their_severity_come_from_the_table():
    assert BLOCKING == {"has_unique_keys", "non_empty_when_events_exist", "timestamps_inside_partition_day"}
    assert PRICE_COLUMNS["trades"] == tuple(r.columns[0] for r in R.rules_for("trades") if r.check == "prices_positive")
    assert BID_ASK == {"trades": ("market_context.bid", "market_context.ask"), "market_ticks": ("bid", "ask")}
    assert "ask_above_bid" not in checks_for("market_bars") and "ask_above_bid" in checks_for("market_ticks")
    assert set(CHECK_DESCRIPTIONS) == {r.check for r in R.RULES if r.check}


@pytest.mark.parametrize(("kind", "path", "value", "reason"), [
    ("trade", ("price",), -1.0, "invalid_price"),
    ("trade", ("action",), "HOLD", "invalid_enum"),
    ("trade", ("battle_navale", "confluence_score"), 1.5, "out_of_range"),
    ("market_bar", ("low",), 10_000.0, "inconsistent_bar"),
    ("trade_exit", ("reason",), "bored", "invalid_enum"),
])
def test_each_value_row_rejects_at_ingestion_and_has_its_gx_expectation(kind, path, value, reason):
    event = make_event(kind)
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert _reasons(event) == [reason]
    dataset = R.DATASET_OF_KIND[kind]
    column = ".".join(path)
    assert any(column in (getattr(e, "column", None), getattr(e, "column_A", None), getattr(e, "column_B", None))
               for _, e in daily_expectations(dataset))


def test_a_row_added_to_the_table_acts_at_ingestion_and_in_the_gx_suite(monkeypatch):
    event = make_event("trade")
    event["quantity"] = 5000
    assert _reasons(event) == []
    cap = R.Rule("trades", "quantity_cap", R.WARN, "between", ("quantity",), (1, 1000), reason="invalid_quantity",
                 gx=R.DOMAIN)
    monkeypatch.setattr(R, "RULES", (*R.RULES, cap))
    assert _reasons(event) == ["invalid_quantity"]
    caps = [e for c, e in daily_expectations("trades") if type(e).__name__ == "ExpectColumnValuesToBeBetween"
            and e.column == "quantity" and e.max_value == 1000]
    assert len(caps) == 1


def _holders(*needles: str) -> set[str]:
    package = Path(R.__file__).parents[1]
    return {str(p.relative_to(package)) for p in package.rglob("*.py")
            if any(n in p.read_text(encoding="utf-8") for n in needles)}


def test_no_rule_is_written_outside_the_table():
    """Reject reasons of value rules are named by the table (and explained by the contract) only; GX
    expectations are built in quality/gx.py only (the one Great Expectations import)."""
    reasons = ('"invalid_price"', '"crossed_quote"', '"inconsistent_bar"', '"invalid_enum"', '"bad_feature_vector"')
    assert _holders(*reasons) == {"quality/rules.py", "schemas/contract.py"}
    assert _holders("import great_expectations", "gxe.Expect") == {"quality/gx.py"}
