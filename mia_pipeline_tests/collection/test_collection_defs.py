"""The collection assets in Dagster: landing_zone records exactly the (dataset, day) partitions it wrote,
backfills rebuild exactly the requested days with each day's own figures, per-day checks fire on
damaged data, the sensor over two ticks, and the views' automation."""

import json

import dagster as dg
import pyarrow as pa
import pytest
from conftest import append, tick

from mia_pipeline.defs.collection import daily_datasets, landing_zone, live_session
from mia_pipeline.defs.recording import GX_COMPLETENESS, blocking_failures, check_evaluations
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.defs.sensors import landing_zone_sensor
from mia_pipeline.defs.sources import paper_trading_events
from mia_pipeline.layout import DATASETS
from mia_pipeline.quality.checks import BLOCKING, checks_for, run_checks, run_day_checks
from mia_pipeline_tests.guide_examples import TRADE_EXAMPLE, to_line

RANGE = {"dagster/asset_partition_range_start": "2025-06-21", "dagster/asset_partition_range_end": "2025-06-23"}


def res(layout):
    return {"mia": MiaResource(data_dir=str(layout.root))}


def mats_by_partition(result) -> dict[tuple[str, str | None], dict]:
    return {(m.asset_key.to_user_string(), m.materialization.partition): m.materialization.metadata
            for m in result.get_asset_materialization_events()}


def test_landing_zone_records_exactly_the_days_it_wrote(layout, store):
    append(layout, "a.jsonl", tick(1, ts="2025-06-21T10:00:00.000Z") + tick(2) + tick(3) + to_line(TRADE_EXAMPLE))
    result = dg.materialize([landing_zone], resources=res(layout))
    assert result.success
    mats = mats_by_partition(result)
    assert set(mats) == {("landing_zone", None), ("market_ticks", "2025-06-21"), ("market_ticks", "2025-06-23"),
                         ("trades", "2025-06-23"), ("live_session", None)}
    observed = {(o.asset_key.to_user_string(), o.partition): o.tags["dagster/data_version"]
                for o in (e.event_specific_data.asset_observation for e in result.all_events
                          if e.event_type_value == "ASSET_OBSERVATION")}
    assert observed == {("raw_events", d): store.entry(d, "raw_events").sha256 for d in ("2025-06-21", "2025-06-23")}
    day = mats[("market_ticks", "2025-06-23")]
    assert day["dagster/row_count"].value == 2 and mats[("market_ticks", "2025-06-21")]["dagster/row_count"].value == 1
    assert day["path"].value == str(layout.dataset_file("2025-06-23", "market_ticks"))
    assert day["sha256"].value == store.entry("2025-06-23", "market_ticks").sha256
    assert day["manifest"].value == str(layout.manifest_file("2025-06-23"))
    assert "ts" in [c.name for c in day["dagster/column_schema"].schema.columns]
    assert "| ts |" in day["preview"].value or "ts" in day["preview"].value.splitlines()[0]
    checks = {(c.asset_key.to_user_string(), c.partition, c.check_name): c for c in result.get_asset_check_evaluations()}
    assert {(a, p) for a, p, _ in checks} == {("market_ticks", "2025-06-21"), ("market_ticks", "2025-06-23"),
                                              ("trades", "2025-06-23")}
    assert all(c.passed for c in checks.values())
    # each evaluation points at the materialization of its own day
    assert all(c.target_materialization_data is not None for c in checks.values())


def test_backfill_of_three_days_one_without_data_gives_three_honest_partitions(layout, store):
    append(layout, "a.jsonl", tick(1, ts="2025-06-21T10:00:00.000Z") + tick(2) + tick(3))
    dg.materialize([landing_zone], resources=res(layout))
    append(layout, "a.jsonl", tick(4, ts="2025-06-24T10:00:00.000Z"))  # pending: a backfill must not land it
    result = dg.materialize([daily_datasets], resources=res(layout), tags=RANGE)
    assert result.success
    mats = mats_by_partition(result)
    assert {(a, p) for a, p in mats} == {(ds, d) for ds in DATASETS for d in ("2025-06-21", "2025-06-22", "2025-06-23")}
    rows = {d: mats[("market_ticks", d)]["dagster/row_count"].value for d in ("2025-06-21", "2025-06-22", "2025-06-23")}
    assert rows == {"2025-06-21": 1, "2025-06-22": 0, "2025-06-23": 2}
    assert "path" not in mats[("market_ticks", "2025-06-22")]  # nothing stored that day: no file to point at
    assert mats[("market_ticks", "2025-06-21")]["path"].value.endswith("2025-06-21/market_ticks.parquet")
    assert mats[("trades", "2025-06-23")]["dagster/row_count"].value == 0
    assert store.days("market_ticks") == ["2025-06-21", "2025-06-23"]  # 06-24 still pending, untouched
    evals = result.get_asset_check_evaluations()
    assert {(e.asset_key.to_user_string(), e.partition) for e in evals} == set(mats)
    assert len(evals) == sum(len(checks_for(ds)) + 1 for ds in DATASETS) * 3  # + the Great Expectations suite
    gx = {(e.asset_key.to_user_string(), e.partition): e for e in evals if e.check_name == GX_COMPLETENESS}
    assert len(gx) == len(DATASETS) * 3 and all(e.passed for e in gx.values())
    assert gx[("market_ticks", "2025-06-22")].metadata["detail"].value.endswith("no rows")


def test_materializing_one_dataset_rewrites_only_that_dataset(layout, store):
    append(layout, "a.jsonl", tick(1) + to_line(TRADE_EXAMPLE))
    dg.materialize([landing_zone], resources=res(layout))
    before = store.manifest("2025-06-23")["datasets"]
    result = dg.materialize([daily_datasets], partition_key="2025-06-23", resources=res(layout),
                            selection=["trades"])
    assert result.success
    after = store.manifest("2025-06-23")["datasets"]
    assert after["trades"]["written_at"] != before["trades"]["written_at"]
    assert after["market_ticks"] == before["market_ticks"] and after["raw_events"] == before["raw_events"]
    assert {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()} == {"trades"}
    assert {e.asset_key.to_user_string() for e in result.get_asset_check_evaluations()} == {"trades"}


def test_rebuild_refuses_damaged_raw_lines(layout, store):
    append(layout, "a.jsonl", tick(1))
    dg.materialize([landing_zone], resources=res(layout))
    raw = layout.dataset_file("2025-06-23", "raw_events")
    raw.write_bytes(raw.read_bytes()[:-10] + b"0123456789")  # damage from outside
    result = dg.materialize([daily_datasets], partition_key="2025-06-23", resources=res(layout), raise_on_error=False)
    assert not result.success
    assert store.read("2025-06-23", "market_ticks").num_rows == 1  # the good partition was kept


def test_paper_trading_then_landing_zone(layout, store):
    result = dg.materialize([paper_trading_events], partition_key="2025-06-23", resources=res(layout))
    assert result.success
    result = dg.materialize([landing_zone, live_session], resources=res(layout), selection=["landing_zone"])
    assert result.success
    mats = mats_by_partition(result)
    assert mats[("signals", "2025-06-23")]["dagster/row_count"].value == store.entry("2025-06-23", "signals").rows > 100
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_each_check_fires_on_a_damaged_day(layout, store):
    import pyarrow.compute as pc

    append(layout, "a.jsonl", tick(1) + tick(2) + tick(3, ts="2025-06-24T10:00:00.000Z"))
    dg.materialize([landing_zone], resources=res(layout))
    t = store.read("2025-06-23", "market_ticks")
    bid = t.column("bid").to_pylist()
    bid[0] = -1.0       # a negative price
    bid[1] = 7000.0     # above the ask: a crossed quote
    t = t.set_column(t.schema.get_field_index("bid"), "bid", pa.array(bid))
    t = t.set_column(t.schema.get_field_index("ts"), "ts", pc.add(t.column("ts"), pa.scalar(86_400_000, pa.duration("ms"))))
    store.write("2025-06-23", "market_ticks", pa.concat_tables([t, t.slice(0, 1)]))  # + a duplicate key
    store.delete("2025-06-24", "market_ticks")     # events exist in raw lines, partition gone
    out = run_day_checks(store, ["2025-06-23", "2025-06-24"], ["market_ticks"])["market_ticks"]
    day = {o.name: o for o in out["2025-06-23"]}
    assert day["prices_positive"].failing == 2
    assert day["ask_above_bid"].failing == 1
    assert day["timestamps_inside_partition_day"].failing == 3
    assert day["has_unique_keys"].failing == 2
    assert day["non_empty_when_events_exist"].passed
    nxt = {o.name: o for o in out["2025-06-24"]}
    assert not nxt["non_empty_when_events_exist"].passed and nxt["non_empty_when_events_exist"].examples == ["2025-06-24"]
    assert all(o.passed for n, o in nxt.items() if n != "non_empty_when_events_exist")
    # the Dagster side: failing blocking checks are named, warnings are not blocking
    evals = check_evaluations(store, {"market_ticks": ["2025-06-23"]})
    assert {e.check_name for e in evals if not e.passed} == set(checks_for("market_ticks")) - {
        "non_empty_when_events_exist", "trading_day_has_data"}
    assert {e.check_name for e in evals if e.blocking} == {"has_unique_keys", "non_empty_when_events_exist",
                                                           "timestamps_inside_partition_day"}
    assert len(blocking_failures(evals)) == 2


def test_a_trading_day_without_data_fails_its_check_and_a_weekend_does_not(layout, store):
    # 2025-06-23 (Monday) holds data; 2025-06-24 (Tuesday) nothing; 2025-06-21/22 a weekend; 2025-04-18 Good Friday.
    from mia_pipeline.collection.collector import ingest_once

    append(layout, "a.jsonl", tick(1, "2025-06-23T14:30:15.125Z"))
    ingest_once(layout, store)
    days = ["2025-06-21", "2025-06-22", "2025-06-23", "2025-06-24", "2025-04-18"]
    for ds in ("trades", "market_ticks"):
        out = {d: {o.name: o for o in per} for d, per in run_day_checks(store, days, [ds])[ds].items()}
        verdict = {d: out[d]["trading_day_has_data"].passed for d in days}
        assert verdict == {"2025-06-21": True, "2025-06-22": True, "2025-06-23": True, "2025-06-24": False,
                           "2025-04-18": True}
        assert "CMES" in out["2025-06-24"]["trading_day_has_data"].detail
        assert "weekend or holiday" in out["2025-04-18"]["trading_day_has_data"].detail
    # the same rule as `mia check-integrity`'s gaps
    from mia_pipeline.collection.audit import gaps

    assert [g[:10] for g in gaps(["2025-06-23", "2025-06-25"])] == ["2025-06-24"]
    assert "trading_day_has_data" not in BLOCKING


def test_checks_exist_only_where_they_can_fail():
    assert "ask_above_bid" not in checks_for("signals") and "ask_above_bid" not in checks_for("market_bars")
    assert "prices_positive" not in checks_for("performance") and "prices_positive" not in checks_for("signals")
    specs = {(k.asset_key.to_user_string(), k.name) for k in daily_datasets.check_keys}
    assert ("performance", "ask_above_bid") not in specs and ("market_ticks", "ask_above_bid") in specs
    assert all(s.description for s in daily_datasets.check_specs)


def test_damaged_day_found_by_run_checks(layout, store):
    append(layout, "a.jsonl", to_line(TRADE_EXAMPLE))
    dg.materialize([landing_zone], resources=res(layout))
    t = store.read("2025-06-23", "trades")
    store.write("2025-06-23", "trades", pa.concat_tables([t, t]))  # damage from outside
    outcome = {o.name: o for o in run_checks(store, "trades", "2025-06-23")}
    assert not outcome["has_unique_keys"].passed and outcome["has_unique_keys"].failing == 2


def test_sensor_two_ticks_then_new_data(layout, store):
    append(layout, "a.jsonl", tick(1, ts="2025-06-21T10:00:00.000Z") + tick(2, ts="2025-06-23T10:00:00.000Z"))
    ctx = dg.build_sensor_context(resources=res(layout))
    first = landing_zone_sensor(ctx)
    assert isinstance(first, dg.RunRequest)
    until = json.loads(first.run_config["ops"]["landing_zone"]["config"]["until"])
    assert until == {"a.jsonl": (layout.streaming_dir / "a.jsonl").stat().st_size}
    cursor = ctx.cursor
    assert cursor

    second = landing_zone_sensor(dg.build_sensor_context(cursor=cursor, resources=res(layout)))
    assert isinstance(second, dg.SkipReason)  # nothing new since the request

    # the requested run lands the data; its offsets are committed
    result = dg.materialize([landing_zone], resources=res(layout), run_config=first.run_config)
    assert {(m.asset_key.to_user_string(), m.materialization.partition) for m in result.get_asset_materialization_events()
            if m.asset_key.to_user_string() == "market_ticks"} == {("market_ticks", "2025-06-21"),
                                                                   ("market_ticks", "2025-06-23")}
    third = landing_zone_sensor(dg.build_sensor_context(cursor=cursor, resources=res(layout)))
    assert isinstance(third, dg.SkipReason)

    append(layout, "a.jsonl", tick(3, ts="2025-06-24T09:00:00.000Z") + b'{"kind": "market_')  # + a torn line
    fourth = landing_zone_sensor(dg.build_sensor_context(cursor=cursor, resources=res(layout)))
    assert isinstance(fourth, dg.RunRequest) and fourth.run_key != first.run_key
    torn_start = (layout.streaming_dir / "a.jsonl").stat().st_size - len(b'{"kind": "market_')
    assert json.loads(fourth.run_config["ops"]["landing_zone"]["config"]["until"]) == {"a.jsonl": torn_start}


def test_sensor_re_requests_a_stale_uncommitted_range(layout):
    append(layout, "a.jsonl", tick(1))
    ctx = dg.build_sensor_context(resources=res(layout))
    first = landing_zone_sensor(ctx)
    stale = json.loads(ctx.cursor)
    stale["requested_at"] -= 3600  # the run never committed (it failed)
    again = landing_zone_sensor(dg.build_sensor_context(cursor=json.dumps(stale), resources=res(layout)))
    assert isinstance(again, dg.RunRequest) and again.run_key != first.run_key


@pytest.mark.parametrize("asset", ["live_session", "warehouse_views"])
def test_views_refresh_automatically_after_any_dataset_partition_changes(asset):
    from mia_pipeline.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="trades", partition="2025-06-23"))
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert second.get_num_requested(dg.AssetKey(asset)) == 1
    third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    assert third.get_num_requested(dg.AssetKey(asset)) == 0  # requested once per update, not every tick
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="market_ticks", partition="2025-06-24"))
    fourth = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=third.cursor)
    assert fourth.get_num_requested(dg.AssetKey(asset)) == 1
