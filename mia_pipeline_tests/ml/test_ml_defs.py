"""The weekly ML dataset in Dagster: a week's partition is the dataset of that week's decisions.

Protects: the three assets write one bundle under processed/ml_ready/<week>/ with per-file metadata
(row count, path, sha256, column schema, window, lineage count); re-running the week rewrites
byte-identical files; a week without decisions fails with the reason and writes nothing; the lineage
maps each week onto its seven daily partitions; the Sunday 02:00 schedule asks for the week that just
ended, in the configured time zone; the Great Expectations suites run as the week's asset checks
(all pass on simulated days, a leak fails its blocking check and the run).
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest

from mia_pipeline.defs.ml import ml_dataset
from mia_pipeline.defs.partitions import weekly_partitions
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.defs.schedules import (
    SCHEDULE_TIMEZONE,
    last_complete_week,
    weekly_ml_dataset_job,
    weekly_ml_dataset_schedule,
)
from mia_pipeline.ml.bundle import FEATURES_FILE, LABELS_FILE, SPLITS_FILE
from mia_pipeline.ml.validation import CHECKS

WEEK = "2025-06-22"  # Sunday; the simulated days 2025-06-23..25 fall in it


def _run(sim_store, key):
    return dg.materialize([ml_dataset], partition_key=key, raise_on_error=False,
                          resources={"mia": MiaResource(data_dir=str(sim_store.layout.root))},
                          instance=dg.DagsterInstance.ephemeral())


def test_a_week_is_built_recorded_and_byte_stable(sim_store):
    res = _run(sim_store, WEEK)
    assert res.success
    meta = {m.asset_key.path[0]: m.materialization.metadata for m in res.get_asset_materialization_events()}
    folder = sim_store.layout.ml_ready_dir / "2025-06-22_2025-06-28"
    assert set(meta) == {"features_dataset", "labels_dataset", "dataset_splits"}
    assert meta["features_dataset"]["path"].value == str(folder / FEATURES_FILE)
    assert meta["features_dataset"]["dagster/row_count"].value == meta["labels_dataset"]["dagster/row_count"].value > 0
    assert meta["labels_dataset"]["window"].value == "2025-06-22..2025-06-28"
    cols = {c.name for c in meta["labels_dataset"]["dagster/column_schema"].schema.columns}
    assert {"t0", "t1", "signal_id"} <= cols
    checks = {c.check_name: c for c in res.get_asset_check_evaluations()}
    failed = {n: c.metadata["detail"].value for n, c in checks.items() if not c.passed}
    assert set(checks) == set(CHECKS) and set(failed) <= {"feature_correlation"}, failed
    assert checks["feature_correlation"].severity == dg.AssetCheckSeverity.WARN  # reported, never blocking
    assert checks["splits_purged"].asset_key == dg.AssetKey("dataset_splits")
    assert (sim_store.layout.reports_dir / "gx" / "index.html").is_file()
    first = {f: (folder / f).read_bytes() for f in (FEATURES_FILE, LABELS_FILE, SPLITS_FILE)}
    assert _run(sim_store, WEEK).success
    assert {f: (folder / f).read_bytes() for f in first} == first


def test_each_week_keeps_its_own_check_evaluations(two_weeks_store):
    """Regression: the checks had no partition, so backfilling several weeks kept only the latest
    result ("—" in the UI). Now every check is partitioned by week and each run's evaluations carry
    that week, in one instance; a failure in one week does not pass for the other."""
    assert {spec.partitions_def for spec in ml_dataset.check_specs} == {weekly_partitions}
    resources = {"mia": MiaResource(data_dir=str(two_weeks_store.layout.root))}
    weeks = ("2025-06-22", "2025-06-29")
    with dg.instance_for_test() as instance:
        evaluations = {}
        for week in weeks:
            res = dg.materialize([ml_dataset], partition_key=week, raise_on_error=False, instance=instance,
                                 resources=resources)
            assert res.success
            evaluations[week] = res.get_asset_check_evaluations()
        assert {m.partition_key for m in instance.fetch_materializations(dg.AssetKey("features_dataset"),
                                                                         limit=5).records} == set(weeks)
    for week in weeks:
        assert sorted(e.check_name for e in evaluations[week]) == sorted(CHECKS)
        assert {e.partition for e in evaluations[week]} == {week}
    first, second = ({e.check_name: e.metadata["detail"].value for e in evaluations[w]} for w in weeks)
    assert first["label_balance"] != second["label_balance"]  # each week's own figures


def test_a_leak_fails_the_weeks_blocking_check(sim_store, monkeypatch):
    """t1 moved before t0 for one label row: label_times fails, and so does the labels' recomputation from
    the source bars (labels_rederived), both blocking, and the run fails with them; the splits cannot be
    re-derived from such labels (UNVERIFIED, not passed)."""
    import mia_pipeline.defs.ml as ml_defs

    real = ml_defs.build_bundle

    def leaky(*args, **kw):
        bundle = real(*args, **kw)
        bundle.labels.iloc[3, bundle.labels.columns.get_loc("t1")] = bundle.labels["t0"].iloc[3] - pd.Timedelta("1min")
        return bundle

    monkeypatch.setattr(ml_defs, "build_bundle", leaky)
    res = _run(sim_store, WEEK)
    failed = {c.check_name for c in res.get_asset_check_evaluations() if not c.passed}
    evaluations = {c.check_name: c for c in res.get_asset_check_evaluations()}
    assert failed - {"feature_correlation"} == {"label_times", "labels_rederived", "splits_rederived"}
    assert not res.success
    # folds cannot be re-derived from a t1 before its t0: not passed, and said to be unverified
    assert evaluations["splits_rederived"].metadata["status"].value == "UNVERIFIED"


def test_an_empty_week_fails_with_its_reason_and_writes_nothing(sim_store):
    res = _run(sim_store, "2025-07-06")
    assert not res.success
    failure = [e for e in res.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "no signals between 2025-07-06 and 2025-07-12" in str(failure.event_specific_data.error)
    assert not (sim_store.layout.ml_ready_dir / "2025-07-06_2025-07-12").exists()


def test_each_week_depends_on_its_seven_days():
    from mia_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    spec = graph.get(dg.AssetKey("features_dataset"))
    assert {dg.AssetKey(k) for k in ("signals", "trades", "trade_exits", "market_bars")} <= set(spec.parent_keys)
    mapping = dg.TimeWindowPartitionMapping()
    daily = graph.get(dg.AssetKey("signals")).partitions_def
    up = mapping.get_upstream_mapped_partitions_result_for_partitions(
        spec.partitions_def.subset_with_partition_keys([WEEK]), spec.partitions_def, daily).partitions_subset
    assert sorted(up.get_partition_keys()) == [f"2025-06-{d}" for d in range(22, 29)]


@pytest.mark.parametrize(("now", "week"), [
    ("2025-06-29T02:00", "2025-06-22"),  # the Sunday run: the week that just ended
    ("2025-06-28T23:00", "2025-06-15"),  # Saturday evening: that week is not over yet
    ("2025-07-01T12:00", "2025-06-22"),
])
def test_last_complete_week(now, week):
    assert last_complete_week(datetime.fromisoformat(now).replace(tzinfo=ZoneInfo(SCHEDULE_TIMEZONE))) == week


def test_weekly_schedule_is_the_guides_crontab_line():
    assert weekly_ml_dataset_schedule.cron_schedule == "0 2 * * 0"
    assert weekly_ml_dataset_schedule.execution_timezone == SCHEDULE_TIMEZONE == "America/New_York"
    assert weekly_ml_dataset_schedule.job_name == weekly_ml_dataset_job.name == "weekly_ml_dataset"
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2025, 6, 29, 2, tzinfo=ZoneInfo(SCHEDULE_TIMEZONE)))
    req = weekly_ml_dataset_schedule(ctx)
    assert req.partition_key == "2025-06-22" and req.run_key == "ml-2025-06-22"


def test_an_unverified_check_is_not_reported_as_passed(sim_store, tmp_path):
    """Source days absent from the data root: the recomputations cannot run, and Dagster shows them
    as not passed with status UNVERIFIED and the reason (never green)."""
    from mia_pipeline.defs.ml import validation_results
    from mia_pipeline.layout import Layout, init_tree
    from mia_pipeline.ml.bundle import build_bundle
    from mia_pipeline.storage.partitions import PartitionStore

    bundle = build_bundle(sim_store, "2025-06-23", "2025-06-25")
    empty = Layout(tmp_path / "data")
    init_tree(empty)
    results = {r.check_name: r for r in validation_results(bundle, PartitionStore(empty), None)}
    for name in ("sources_unchanged", "columns_accounted", "point_in_time", "labels_rederived"):
        assert not results[name].passed
        assert results[name].metadata["status"].value == "UNVERIFIED"
        assert "the data root lacks" in results[name].metadata["detail"].value
    assert results["label_times"].passed
