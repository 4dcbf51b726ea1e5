"""The ibkr_history asset in Dagster: one asset partitioned by day × series. A (day, series) written is
materialized with its own figures; a day IB keeps answering empty fails the run and is not
materialized; a series IB does not serve is logged, not materialized; a rectangle of days × series
(a single-run backfill's range) is one run."""

import json
from datetime import date

import dagster as dg
import pytest

from mia_pipeline.defs.ibkr import SERIES, ibkr_history, ibkr_partitions, requested
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.sources.ibkr.service import unavailable_file
from mia_pipeline.storage import PartitionStore

KEY = dg.AssetKey("ibkr_history")
BID_ASK_15 = "EURUSD_15min_BID_ASK"


def key(day: str, series: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"day": day, "series": series})


def test_one_ibkr_asset_whose_series_follow_the_settings():
    from mia_pipeline.definitions import defs

    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert [k for k in keys if "ibkr" in k.to_user_string()] == [KEY]  # not one asset per series
    assert ibkr_partitions.partition_dimension_names == ["day", "series"]
    names = set(SERIES)
    assert "EURUSD_5min_BID_ASK" in names and "ES_1min_TRADES" in names
    assert not any(n.startswith("EURUSD") and n.endswith("_TRADES") for n in names)  # IB has no FX trades


def test_a_runs_partitions_are_asked_as_rectangles_of_series_and_days():
    d23, d24 = date(2025, 6, 23), date(2025, 6, 24)
    keys = [key("2025-06-23", BID_ASK_15), key("2025-06-24", BID_ASK_15), key("2025-06-23", "ES_1min_TRADES"),
            key("2025-06-24", "ES_1min_TRADES"), key("2025-06-24", "NQ_5min_TRADES"), key("2025-06-24", "XX_1min_NOPE")]
    groups = {tuple(s.name for s in series): days for series, days in requested(keys)}
    assert groups == {(BID_ASK_15, "ES_1min_TRADES"): [d23, d24], ("NQ_5min_TRADES",): [d24]}  # unknown dropped


@pytest.fixture
def resources(layout, tmp_path):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text("ibkr: {retry_wait_s: 1, request_timeout_s: 1}\n")
    return {"mia": MiaResource(data_dir=str(layout.root), config_path=str(cfg))}


def _materialized(instance) -> dict[str, int]:
    return {r.partition_key: r.asset_materialization.metadata["dagster/row_count"].value
            for r in instance.fetch_materializations(KEY, limit=20).records}


@pytest.mark.slow  # an in-process Dagster run
def test_materialize_one_day_of_one_series_and_a_failing_day(layout, ibkr_env, resources):
    with dg.instance_for_test() as instance:
        result = dg.materialize([ibkr_history], partition_key=key("2025-06-23", BID_ASK_15), instance=instance,
                                resources=resources)
        assert result.success
        [m] = instance.fetch_materializations(KEY, limit=5).records
        meta = m.asset_materialization.metadata
        assert m.partition_key == "2025-06-23|EURUSD_15min_BID_ASK"
        assert (meta["dagster/row_count"].value, meta["symbol"].value, meta["timeframe"].value,
                meta["what_to_show"].value, meta["attempts"].value) == (96, "EURUSD", "15min", "BID_ASK", 1)
        assert PartitionStore(layout).read("2025-06-23", "market_bars").num_rows == 96
        ibkr_env.fail_next("EURUSD", "BID_ASK", "empty", "empty", "empty")
        result = dg.materialize([ibkr_history], partition_key=key("2025-06-24", BID_ASK_15), instance=instance,
                                resources=resources, raise_on_error=False)
        assert not result.success
        assert set(_materialized(instance)) == {"2025-06-23|EURUSD_15min_BID_ASK"}
    assert PartitionStore(layout).read("2025-06-24", "market_bars") is None


@pytest.mark.slow  # an in-process Dagster run
def test_a_range_of_days_by_series_is_one_run_and_an_unserved_series_is_not_materialized(layout, ibkr_env, resources):
    """The range a single-run backfill hands over: days 23..24 × the adjacent series EURUSD 15-min
    BID_ASK and EURUSD 1-min HISTORICAL_VOLATILITY (which IB does not serve for a pair)."""
    hv = "EURUSD_1min_HISTORICAL_VOLATILITY"
    assert list(SERIES).index(hv) == list(SERIES).index(BID_ASK_15) + 1
    with dg.instance_for_test() as instance:
        result = dg.materialize([ibkr_history], instance=instance, resources=resources, tags={
            "dagster/asset_partition_range_start": key("2025-06-23", BID_ASK_15),
            "dagster/asset_partition_range_end": key("2025-06-24", hv)})
        assert result.success
        assert _materialized(instance) == {"2025-06-23|EURUSD_15min_BID_ASK": 96, "2025-06-24|EURUSD_15min_BID_ASK": 96}
    assert set(json.loads(unavailable_file(layout).read_text())) == {hv}  # noted once, not asked again
