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


def test_partitions_offer_trading_days_only():
    from mia_pipeline.defs.synthetic import synthetic_days

    keys = set(synthetic_days.get_partition_keys())
    assert {"2025-08-21", "2025-08-22", "2026-07-03"} <= keys  # Thursday, Friday, early close
    assert not {"2025-08-23", "2025-08-24", "2026-04-03", "2026-12-25", "2025-01-01"} & keys


def test_closed_start_fails_with_the_next_open(layout):
    key = dg.MultiPartitionKey({"date": "2025-08-21", "scenario": "normal"})
    result = dg.materialize(
        [synthetic_session], partition_key=key, resources={"mia": MiaResource(data_dir=str(layout.root))},
        run_config={"ops": {"synthetic_session": {"config": {"minutes": 5, "start_time_et": "17:15"}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "daily halt" in str(failure.event_specific_data.error) and "next open 2025-08-21T18:00" in str(
        failure.event_specific_data.error)
