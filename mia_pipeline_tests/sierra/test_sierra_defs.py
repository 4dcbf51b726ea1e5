"""Sierra in Dagster: sierra_market_data lands one UTC day and records that day (and each dataset
partition it wrote, with checks) with its own figures; sierra_chart_sensor over two ticks (tick 1
requests and sets the per-file record-count cursor, tick 2 requests nothing), then growth -> a request."""

from datetime import UTC, datetime

import dagster as dg
from sierra_writer import es_session, sierra_writes, unix_us

from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.defs.sierra import sierra_chart_sensor, sierra_market_data


def res(layout, config):
    return {"mia": MiaResource(data_dir=str(layout.root), config_path=str(config))}


def test_one_day_is_landed_and_recorded_with_its_own_figures(layout, store, config):
    result = dg.materialize([sierra_market_data], partition_key="2025-06-23", resources=res(layout, config))
    assert result.success
    mats = {(m.asset_key.to_user_string(), m.materialization.partition): m.materialization.metadata
            for m in result.get_asset_materialization_events()}
    assert set(mats) == {("sierra_market_data", "2025-06-23"), ("market_ticks", "2025-06-23"),
                         ("market_bars", "2025-06-23"), ("market_depth", "2025-06-23")}
    day = mats[("sierra_market_data", "2025-06-23")]
    assert day["trades"].value == 600 and day["depth_updates"].value == 26 and day["day"].value == "2025-06-23"
    es = day["symbols"].value["ES"]
    assert es["trades"] == 600 and es["poc"] > 0 and es["value_area_low"] <= es["poc"] <= es["value_area_high"]
    assert mats[("market_ticks", "2025-06-23")]["dagster/row_count"].value == 600
    checks = result.get_asset_check_evaluations()
    assert {c.asset_key.to_user_string() for c in checks} == {"market_ticks", "market_bars", "market_depth"}
    assert all(c.passed for c in checks)
    # a day without records: materialized, nothing written, its own zero figures
    empty = dg.materialize([sierra_market_data], partition_key="2025-06-20", resources=res(layout, config))
    meta = empty.get_asset_materialization_events()[0].materialization.metadata
    assert empty.success and meta["trades"].value == 0 and meta["day"].value == "2025-06-20"
    assert not (layout.daily_dir / "2025-06-20").exists()


def test_sensor_two_ticks_then_growth(layout, config, sierra_dir):
    first = sierra_chart_sensor(dg.build_sensor_context(resources=res(layout, config)))
    assert [r.partition_key for r in first] == ["2025-06-23"]
    ctx = dg.build_sensor_context(resources=res(layout, config))
    sierra_chart_sensor(ctx)
    cursor = ctx.cursor
    assert cursor and all(v in (600, 26) for v in __import__("json").loads(cursor).values())
    second = sierra_chart_sensor(dg.build_sensor_context(cursor=cursor, resources=res(layout, config)))
    assert isinstance(second, dg.SkipReason)
    t = unix_us(datetime(2025, 6, 24, 14, 0, tzinfo=UTC))
    sierra_writes(sierra_dir / "ESU25_FUT_CME.scid", es_session(t, 5))
    ctx3 = dg.build_sensor_context(cursor=cursor, resources=res(layout, config))
    third = sierra_chart_sensor(ctx3)
    assert [r.partition_key for r in third] == ["2025-06-24"] and third[0].run_key != first[0].run_key
    fourth = sierra_chart_sensor(dg.build_sensor_context(cursor=ctx3.cursor, resources=res(layout, config)))
    assert isinstance(fourth, dg.SkipReason)
