import json

import dagster as dg
import pyarrow as pa
from conftest import append, tick

from mia_pipeline.collection.checks import run_checks
from mia_pipeline.defs.collection import daily_datasets, live_session
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.defs.sensors import landing_zone_sensor
from mia_pipeline.defs.sources import paper_trading_events
from mia_pipeline.schemas.guide_examples import TRADE_EXAMPLE, to_line


def res(layout):
    return {"mia": MiaResource(data_dir=str(layout.root))}


def test_paper_trading_then_ingest_one_partition(layout, store):
    result = dg.materialize([paper_trading_events], partition_key="2025-06-23", resources=res(layout))
    assert result.success
    assert (layout.streaming_dir / "paper_trading_2025-06-23.jsonl").stat().st_size > 0
    result = dg.materialize([daily_datasets, live_session], partition_key="2025-06-23", resources=res(layout),
                            selection=[*daily_datasets.keys])
    assert result.success
    mats = {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert mats["signals"]["row_count"].value > 100 and mats["trades"]["row_count"].value > 0
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    assert {c.check_name for c in checks} >= {"has_unique_keys", "ask_above_bid", "timestamps_inside_partition_day"}


def test_range_backfill_in_one_run(layout, store):
    append(layout, "a.jsonl", tick(1, ts="2025-06-21T10:00:00.000Z") + tick(2, ts="2025-06-23T10:00:00.000Z"))
    result = dg.materialize([daily_datasets], resources=res(layout), tags={
        "dagster/asset_partition_range_start": "2025-06-21", "dagster/asset_partition_range_end": "2025-06-23"})
    assert result.success
    assert store.days("market_ticks") == ["2025-06-21", "2025-06-23"]
    assert len(result.get_asset_check_evaluations()) == 6 * 5


def test_checks_catch_a_duplicate_key(layout, store):
    append(layout, "a.jsonl", to_line(TRADE_EXAMPLE))
    dg.materialize([daily_datasets], partition_key="2025-06-23", resources=res(layout))
    t = store.read("2025-06-23", "trades")
    store.write("2025-06-23", "trades", pa.concat_tables([t, t]))  # damage from outside
    outcome = {o.name: o for o in run_checks(store, "trades", "2025-06-23", "2025-06-23")}
    assert not outcome["has_unique_keys"].passed and outcome["has_unique_keys"].failing == 2


def test_sensor_two_ticks_then_new_data(layout, store):
    append(layout, "a.jsonl", tick(1, ts="2025-06-21T10:00:00.000Z") + tick(2, ts="2025-06-23T10:00:00.000Z"))
    ctx = dg.build_sensor_context(resources=res(layout))
    first = landing_zone_sensor(ctx)
    assert isinstance(first, dg.RunRequest)
    assert first.tags["dagster/asset_partition_range_start"] == "2025-06-21"
    assert first.tags["dagster/asset_partition_range_end"] == "2025-06-23"
    until = json.loads(first.run_config["ops"]["daily_datasets"]["config"]["until"])
    assert until == {"a.jsonl": (layout.streaming_dir / "a.jsonl").stat().st_size}
    cursor = ctx.cursor
    assert cursor

    second = landing_zone_sensor(dg.build_sensor_context(cursor=cursor, resources=res(layout)))
    assert isinstance(second, dg.SkipReason)  # nothing new since the request

    # the requested run lands the data; its offsets are committed
    dg.materialize([daily_datasets], resources=res(layout), run_config=first.run_config, tags=first.tags)
    third = landing_zone_sensor(dg.build_sensor_context(cursor=cursor, resources=res(layout)))
    assert isinstance(third, dg.SkipReason)

    append(layout, "a.jsonl", tick(3, ts="2025-06-24T09:00:00.000Z") + b'{"kind": "market_')  # + a torn line
    fourth = landing_zone_sensor(dg.build_sensor_context(cursor=cursor, resources=res(layout)))
    assert isinstance(fourth, dg.RunRequest) and fourth.tags["dagster/partition"] == "2025-06-24"
    assert fourth.run_key != first.run_key


def test_sensor_re_requests_a_stale_uncommitted_range(layout):
    append(layout, "a.jsonl", tick(1))
    ctx = dg.build_sensor_context(resources=res(layout))
    first = landing_zone_sensor(ctx)
    stale = json.loads(ctx.cursor)
    stale["requested_at"] -= 3600  # the run never committed (it failed)
    again = landing_zone_sensor(dg.build_sensor_context(cursor=json.dumps(stale), resources=res(layout)))
    assert isinstance(again, dg.RunRequest) and again.run_key != first.run_key


def test_each_check_fires_on_damaged_partitions(layout, store):
    import pyarrow.compute as pc

    append(layout, "a.jsonl", tick(1) + tick(2) + tick(3, ts="2025-06-24T10:00:00.000Z"))
    dg.materialize([daily_datasets], resources=res(layout), tags={
        "dagster/asset_partition_range_start": "2025-06-23", "dagster/asset_partition_range_end": "2025-06-24"})
    t = store.read("2025-06-23", "market_ticks")
    bid = t.column("bid").to_pylist()
    bid[0] = -1.0       # a negative price
    bid[1] = 7000.0     # above the ask: a crossed quote
    t = t.set_column(t.schema.get_field_index("bid"), "bid", pa.array(bid))
    t = t.set_column(t.schema.get_field_index("ts"), "ts", pc.add(t.column("ts"), pa.scalar(86_400_000, pa.duration("ms"))))
    store.write("2025-06-23", "market_ticks", t)   # rows now dated the next day
    store.delete("2025-06-24", "market_ticks")     # events exist in raw lines, partition gone
    outcome = {o.name: o for o in run_checks(store, "market_ticks", "2025-06-23", "2025-06-24")}
    assert outcome["prices_positive"].failing == 1
    assert outcome["ask_above_bid"].failing == 1
    assert outcome["timestamps_inside_partition_day"].failing == 2
    assert outcome["non_empty_when_events_exist"].examples == ["2025-06-24"]
    assert outcome["has_unique_keys"].passed
