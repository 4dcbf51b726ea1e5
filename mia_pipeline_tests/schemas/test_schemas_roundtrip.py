"""parse → typed table → Parquet → export gives back every value (guide examples, every kind, extras)."""

import copy
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mia_pipeline.schemas import (
    DATASET_SCHEMAS,
    EVENT_KINDS,
    KIND_TO_DATASET,
    dataset_table_to_events,
    events_to_json,
    record_hash,
)
from mia_pipeline_tests.guide_examples import SIGNAL_EXAMPLE, TRADE_EXAMPLE, make_event, to_line


def strict_equal(a, b) -> bool:
    """Deep equality that also requires equal types (1 != 1.0, True != 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def through_parquet(table: pa.Table, tmp_path, name: str) -> pa.Table:
    path = tmp_path / f"{name}.parquet"
    pq.write_table(table.drop_columns(["_line"]), path, compression="zstd")
    return pq.read_table(path)


@pytest.mark.parametrize("example", [TRADE_EXAMPLE, SIGNAL_EXAMPLE], ids=["trade", "signal"])
def test_guide_example_round_trips_through_parquet(example, parse, tmp_path):
    result = parse(to_line(example))
    assert result.rejects == []
    dataset = KIND_TO_DATASET[example["kind"]]
    table = result.tables[dataset]
    assert table.num_rows == 1
    stored = through_parquet(table, tmp_path, dataset)
    assert stored.schema.equals(DATASET_SCHEMAS[dataset], check_metadata=False)
    [event] = dataset_table_to_events(dataset, stored)
    assert event == example
    assert strict_equal(event, example)
    assert json.loads(events_to_json(dataset, stored)) == example


def test_guide_nesting_is_kept_as_structs_and_lists(parse):
    trades = parse(to_line(TRADE_EXAMPLE)).tables["trades"]
    features = trades.schema.field("battle_navale").type.field("features").type
    assert [f.name for f in features] == [f"feature_{i}" for i in range(1, 9)]
    assert trades.column("market_context").to_pylist()[0]["ask"] == 1.0892
    signals = parse(to_line(SIGNAL_EXAMPLE)).tables["signals"]
    snap = signals.schema.field("features_snapshot").type
    assert snap.field("calculation_timestamp").type == pa.timestamp("ms", tz="UTC")
    assert pa.types.is_list(snap.field("raw_features").type)
    bna = signals.column("battle_navale_analysis").to_pylist()[0]
    assert bna["secondary_patterns"] == ["support_pattern_a"]
    assert bna["vikings_defenseurs"]["strength"] == 8.5


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_kind_round_trips(kind, parse, tmp_path):
    event = make_event(kind)
    result = parse(to_line(event))
    assert result.rejects == []
    name = KIND_TO_DATASET[kind] or kind
    table = result.tables[name]
    if KIND_TO_DATASET[kind] is not None:
        table = through_parquet(table, tmp_path, name)
    [back] = dataset_table_to_events(name, table)
    assert back == event


def test_unknown_fields_are_kept_in_extra_and_restored(parse, tmp_path):
    event = make_event("trade", strategy_version="v2.3", tags=["a", {"b": 1}])
    event["execution"]["venue"] = "CME"  # unknown nested key
    event["battle_navale"]["features"]["feature_9"] = 0.5
    event["timeframe"] = "5min"  # a field of another kind: unknown for a trade
    result = parse(to_line(event))
    assert result.rejects == []
    table = result.tables["trades"]
    extra = json.loads(table.column("extra")[0].as_py())
    assert extra == {"strategy_version": "v2.3", "tags": ["a", {"b": 1}], "execution": {"venue": "CME"},
                     "battle_navale": {"features": {"feature_9": 0.5}}, "timeframe": "5min"}
    [back] = dataset_table_to_events("trades", through_parquet(table, tmp_path, "trades"))
    assert back == event


def test_unknown_fields_in_a_big_block_only_flag_their_rows(parse):
    lines = [make_event("market_tick", event_id=f"t{i}", seq=i) for i in range(3000)]
    lines[1234]["venue"] = "XCME"
    lines[2000]["note"] = None  # an unknown key with null is kept too (issue 10: the writer sent it)
    result = parse(b"".join(to_line(e) for e in lines))
    extra = result.tables["market_ticks"].column("extra").to_pylist()
    assert [i for i, x in enumerate(extra) if x] == [1234, 2000]
    assert json.loads(extra[1234]) == {"venue": "XCME"}
    assert json.loads(extra[2000]) == {"note": None}


@pytest.mark.parametrize("spelling, ms", [
    ("2025-06-23T16:30:15.123+02:00", 1750689015123),
    ("2025-06-23T14:30:15Z", 1750689015000),
    ("2025-06-23T14:30:15.123456Z", 1750689015123),
    ("2025-06-23 14:30:15.123Z", 1750689015123),
])
def test_non_canonical_timestamps_are_converted_and_their_spelling_kept(spelling, ms, parse):
    event = make_event("market_tick", timestamp=spelling)
    table = parse(to_line(event)).tables["market_ticks"]
    assert table.column("ts").cast(pa.int64())[0].as_py() == ms
    assert json.loads(table.column("extra")[0].as_py()) == {"timestamp": spelling}
    assert dataset_table_to_events("market_ticks", table) == [event]


def test_nested_timestamp_spelling_is_kept(parse):
    event = copy.deepcopy(SIGNAL_EXAMPLE)
    event["features_snapshot"]["calculation_timestamp"] = "2025-06-23T16:29:45.1+02:00"
    table = parse(to_line(event)).tables["signals"]
    snap = table.column("features_snapshot")[0].as_py()
    assert snap["calculation_timestamp"].isoformat() == "2025-06-23T14:29:45.100000+00:00"
    assert dataset_table_to_events("signals", table) == [event]


def test_content_hash_ignores_formatting_and_detects_changes(parse):
    event = make_event("signal")
    compact = to_line(event)
    pretty_reordered = json.dumps(dict(reversed(list(event.items()))), indent=None).encode() + b"\n"
    changed = to_line({**event, "symbol": "GBPUSD"})
    other_id = to_line({**event, "event_id": "another-id"})
    hashes = parse(compact + pretty_reordered + changed + other_id).tables["signals"].column("content_hash")
    h = hashes.to_pylist()
    assert h[0] == h[1] == h[3] and h[2] != h[0]
    assert all(len(x) == 16 for x in h)


def test_content_hash_is_recomputable_from_a_stored_partition(parse, tmp_path):
    data = b"".join(to_line(make_event(k)) for k in EVENT_KINDS)
    for name, table in parse(data).tables.items():
        if name in DATASET_SCHEMAS:
            stored = through_parquet(table, tmp_path, name)
            assert record_hash(stored).to_pylist() == stored.column("content_hash").to_pylist()


def test_export_output_parses_back_to_the_same_rows(parse):
    data = b"".join(to_line(make_event(k, event_id=f"e-{k}")) for k in EVENT_KINDS)
    first = parse(data)
    for name, table in first.tables.items():
        again = parse(events_to_json(name, table)).tables[name]
        assert again.drop_columns(["_line"]).equals(table.drop_columns(["_line"]))
