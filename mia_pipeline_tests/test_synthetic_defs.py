"""The synthetic_session asset: a date x scenario partition writes its seven tables and passes its checks."""

import dagster as dg

from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.defs.synthetic import partition_seed, synthetic_session
from mia_pipeline.synthetic import CHECK_NAMES


def test_synthetic_session_partition_writes_tables_and_passes_checks(layout):
    key = dg.MultiPartitionKey({"date": "2025-08-21", "scenario": "orderflow_accumulation"})
    result = dg.materialize(
        [synthetic_session], partition_key=key, resources={"mia": MiaResource(data_dir=str(layout.root))},
        run_config={"ops": {"synthetic_session": {"config": {"minutes": 20}}}},
    )
    assert result.success
    out = layout.backtest_session_dir("2025-08-21", "orderflow_accumulation")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["meta.json", *(f"{t}.parquet" for t in ("l1", "l2", "bars", "footprint", "context",
                                                  "leadership_features", "ground_truth"))])
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert set(checks) == set(CHECK_NAMES) and all(checks.values())
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["seed"].value == partition_seed("2025-08-21", "orderflow_accumulation")
