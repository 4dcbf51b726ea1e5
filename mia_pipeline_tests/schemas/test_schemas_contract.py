"""The public contract: names, keys, schemas, and schema evolution of stored partitions."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from mia_pipeline.layout import DATASETS
from mia_pipeline.schemas import (
    CURRENT_SCHEMA_VERSION,
    DATASET_KEYS,
    DATASET_SCHEMAS,
    EVENT_KINDS,
    KIND_TO_DATASET,
    TABLE_SCHEMAS,
    dataset_table_to_events,
    record_hash,
)
from mia_pipeline_tests.guide_examples import SIGNAL_EXAMPLE, TRADE_EXAMPLE, make_event, to_line


def _keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= _keys(v, f"{prefix}{k}.")
    return out


def _fields(t: pa.DataType | pa.Schema, prefix: str = "") -> set[str]:
    out = set()
    for f in t:
        out.add(prefix + f.name)
        if pa.types.is_struct(f.type):
            out |= _fields(f.type, f"{prefix}{f.name}.")
    return out


def test_names_and_keys_match_the_layout():
    assert len(EVENT_KINDS) == 8 and CURRENT_SCHEMA_VERSION == 1
    assert {d for d in KIND_TO_DATASET.values() if d} == set(DATASETS) == set(DATASET_SCHEMAS) == set(DATASET_KEYS)
    assert KIND_TO_DATASET["system_status"] is None and "system_status" in TABLE_SCHEMAS
    for dataset, keys in DATASET_KEYS.items():  # a key is a column or a struct field (``tags.symbol``)
        assert set(keys) <= _fields(DATASET_SCHEMAS[dataset]), dataset


def test_stored_schemas_carry_the_envelope_and_are_all_nullable():
    for name, schema in TABLE_SCHEMAS.items():
        assert schema.names[:4] == ["ts", "event_id", "source", "schema_version"], name
        assert schema.names[-2:] == ["extra", "content_hash"], name
        assert schema.field("ts").type == pa.timestamp("ms", tz="UTC")
        assert all(f.nullable for f in schema), name


def test_every_guide_field_has_a_column():
    envelope = {"kind", "timestamp"}
    for example, dataset in ((TRADE_EXAMPLE, "trades"), (SIGNAL_EXAMPLE, "signals")):
        assert _keys(example) - envelope <= _fields(DATASET_SCHEMAS[dataset])


def test_old_partition_without_a_later_column_reads_with_permissive_promotion(parse, tmp_path):
    new = parse(to_line(make_event("market_tick", event_id="new"))).tables["market_ticks"].drop_columns(["_line"])
    v2_col = pa.field("exchange_ts", pa.timestamp("ms", tz="UTC"))
    new = new.append_column(v2_col, pa.array([1750689015120], pa.int64()).cast(v2_col.type))
    old = parse(to_line(make_event("market_tick", event_id="old"))).tables["market_ticks"].drop_columns(["_line"])
    pq.write_table(old, tmp_path / "old.parquet")
    both = pa.concat_tables([pq.read_table(tmp_path / "old.parquet"), new], promote_options="permissive")
    assert both.column("exchange_ts").to_pylist()[0] is None
    assert both.column("event_id").to_pylist() == ["old", "new"]
    # a null later-added column does not change the content hash of old rows
    old_rows = both.slice(0, 1)
    assert record_hash(old_rows).to_pylist() == old.column("content_hash").to_pylist()
    # older export code keeps a column it does not know as a top-level field
    [_, newer_event] = dataset_table_to_events("market_ticks", both)
    assert newer_event["exchange_ts"] == "2025-06-23T14:30:15.120Z"


def test_a_newer_schema_version_is_accepted_with_its_new_fields_in_extra(parse):
    event = make_event("market_bar", schema_version=2, close_auction=True)
    result = parse(to_line(event))
    assert result.rejects == []
    table = result.tables["market_bars"]
    assert table.column("schema_version").to_pylist() == [2]
    assert json.loads(table.column("extra")[0].as_py()) == {"close_auction": True}
    assert dataset_table_to_events("market_bars", table) == [event]
