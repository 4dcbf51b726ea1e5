"""GX completeness suites of the six daily datasets: simulated days pass; a null required field, a
duplicated key and an out-of-domain value each fail on exactly the day they were planted in, with
the other days of the same (single) GX batch still passing."""

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.layout import Layout, init_tree
from mia_pipeline.quality.gx import (
    DAILY_DATASETS,
    DOMAIN,
    KEYS,
    REQUIRED,
    daily_expectations,
    validate_daily,
    validate_days,
)
from mia_pipeline.sources.paper_trading import simulate
from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.guide_examples import make_event, to_line

DAYS = ["2025-06-23", "2025-06-24"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> PartitionStore:
    lay = Layout(tmp_path_factory.mktemp("gxd") / "data")
    init_tree(lay)
    simulate(lay.streaming_dir, start=date(2025, 6, 23), days=2, seed=3)
    ticks = [make_event("market_tick", seq=i, event_id=f"tick-{i}", timestamp=f"2025-06-23T14:30:{i:02d}.000Z")
             for i in range(20)]
    with open(lay.streaming_dir / "ticks.jsonl", "wb") as fh:
        fh.write(b"\n".join(to_line(e) for e in ticks) + b"\n")
    s = PartitionStore(lay)
    ingest_once(lay, s, None)
    return s


def tampered(store, tmp_path, dataset, change) -> PartitionStore:
    """A copy of the store's days where ``change(table)`` replaced ``dataset`` of DAYS[1]."""
    lay = Layout(tmp_path / "data")
    init_tree(lay)
    out = PartitionStore(lay)
    for d in DAYS:
        t = store.read(d, dataset)
        out.write(d, dataset, change(t) if d == DAYS[1] else t)
    return out


def test_simulated_days_pass_every_suite(store):
    out = validate_days(store, [*DAYS, "2025-06-30"])
    assert set(out) == set(DAILY_DATASETS)
    for ds, per_day in out.items():
        for d, o in per_day.items():
            assert o.passed, (ds, d, o.detail)
            assert [p.name for p in o.per_expectation] == [REQUIRED, KEYS, DOMAIN]
    assert out["market_ticks"]["2025-06-23"].detail == "all expectations met"
    assert out["trades"]["2025-06-30"].detail.endswith("no rows")


def test_suites_cover_required_keys_and_domains():
    names = {(c, type(e).__name__, getattr(e, "column", None)) for c, e in daily_expectations("trades")}
    assert (REQUIRED, "ExpectColumnValuesToNotBeNull", "trade_id") in names
    assert (DOMAIN, "ExpectColumnValuesToBeInSet", "action") in names
    assert (DOMAIN, "ExpectColumnValuesToBeBetween", "battle_navale.confluence_score") in names
    assert (KEYS, "ExpectCompoundColumnsToBeUnique", None) in names
    bars = {type(e).__name__ for c, e in daily_expectations("market_bars") if c == DOMAIN}
    assert "ExpectColumnPairValuesAToBeGreaterThanB" in bars      # high >= low


def _null(table, column):
    i = table.schema.get_field_index(column)
    return table.set_column(i, column, pa.nulls(table.num_rows, table.schema.field(i).type))


def test_null_required_field_fails_its_day_only(store, tmp_path):
    s = tampered(store, tmp_path, "signals", lambda t: _null(t, "symbol"))
    out = validate_days(s, DAYS, ["signals"])["signals"]
    assert out[DAYS[0]].passed
    bad = out[DAYS[1]]
    assert not bad.passed and bad.failing_rows == store.read(DAYS[1], "signals").num_rows
    assert [p.name for p in bad.per_expectation if not p.passed] == [REQUIRED]
    assert "column=symbol" in bad.detail


def test_duplicated_key_fails(store, tmp_path):
    s = tampered(store, tmp_path, "trades", lambda t: pa.concat_tables([t, t.slice(0, 1)]))
    bad = validate_daily(s, DAYS[1], "trades")
    assert not bad.passed and [p.name for p in bad.per_expectation if not p.passed] == [KEYS]
    assert bad.failing_rows == 2                       # the row and its copy
    assert validate_daily(s, DAYS[0], "trades").passed


@pytest.mark.parametrize("dataset, column, value", [
    ("trades", "action", "HOLD"),                      # a trade is BUY or SELL
    ("market_bars", "close", -1.0),                    # prices > 0
    ("trade_exits", "reason", "bored"),
])
def test_out_of_domain_value_fails(store, tmp_path, dataset, column, value):
    def change(t):
        i = t.schema.get_field_index(column)
        col = pc.if_else(pa.array([k == 0 for k in range(t.num_rows)]), pa.scalar(value, t.schema.field(i).type),
                         t.column(i))
        return t.set_column(i, column, col)

    s = tampered(store, tmp_path, dataset, change)
    bad = validate_daily(s, DAYS[1], dataset)
    assert not bad.passed and [p.name for p in bad.per_expectation if not p.passed] == [DOMAIN]
    assert bad.failing_rows >= 1 and f"column={column}" in bad.detail


def test_unknown_dataset_is_refused(store):
    with pytest.raises(ValueError, match="unknown dataset 'bars'"):
        validate_days(store, DAYS, ["bars"])
