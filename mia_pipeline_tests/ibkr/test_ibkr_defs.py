"""The ibkr_history multi-asset in Dagster: a partition written is materialized with that day's
figures; a day IB keeps answering empty fails the run and is not materialized."""

import dagster as dg
import pytest

from mia_pipeline.defs.ibkr import SERIES, ibkr_history
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.storage import PartitionStore

KEY = dg.AssetKey(["ibkr", "EURUSD_15min_BID_ASK"])


def test_series_assets_follow_the_settings():
    names = {k.path[1] for k in SERIES}
    assert "EURUSD_5min_BID_ASK" in names and "ES_1min_TRADES" in names
    assert not any(n.startswith("EURUSD") and n.endswith("_TRADES") for n in names)  # IB has no FX trades


@pytest.mark.slow  # an in-process Dagster run
def test_materialize_one_series_day_and_a_failing_day(layout, ibkr_env, tmp_path, monkeypatch):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text("ibkr: {retry_wait_s: 1, request_timeout_s: 1}\n")
    resources = {"mia": MiaResource(data_dir=str(layout.root), config_path=str(cfg))}
    with dg.instance_for_test() as instance:
        result = dg.materialize([ibkr_history], selection=[KEY], partition_key="2025-06-23", instance=instance,
                                resources=resources)
        assert result.success
        [m] = instance.fetch_materializations(KEY, limit=5).records
        assert m.partition_key == "2025-06-23" and m.asset_materialization.metadata["dagster/row_count"].value == 96
        assert PartitionStore(layout).read("2025-06-23", "market_bars").num_rows == 96
        ibkr_env.fail_next("EURUSD", "BID_ASK", "empty", "empty", "empty")
        result = dg.materialize([ibkr_history], selection=[KEY], partition_key="2025-06-24", instance=instance,
                                resources=resources, raise_on_error=False)
        assert not result.success
        assert {r.partition_key for r in instance.fetch_materializations(KEY, limit=5).records} == {"2025-06-23"}
    assert PartitionStore(layout).read("2025-06-24", "market_bars") is None
