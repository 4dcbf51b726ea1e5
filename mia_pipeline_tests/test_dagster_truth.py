"""Say only what is true (issue 19): what Dagster records and what the CLI prints match what was written.

- the package reaches Dagster through its public API only;
- CLI writes are runless materializations tagged with the command, their checks a real `daily_checks` run
  (`market_data_checks` when only market data was written);
- a CME trading day without data is a failing check, a gap in `mia status --by-day` and in check-integrity;
- range runs report every check with its own day and the materialization it checked, and log no
  "did not yield expected outputs";
- the automation sensor runs by default and requests the views after a CLI write;
- `mia materialize` runs Dagster's execution into the data root's instance (and refuses bad input, exit 2);
- `mia collect status` counts `--once` passes and lists every dataset.
"""

import json
import re
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

import mia_pipeline
from mia_pipeline.cli.dagster_bridge import open_instance
from mia_pipeline.cli.main import cli
from mia_pipeline.defs.collection import daily_datasets
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.layout import DATASETS, MARKET_DATASETS
from mia_pipeline.quality.checks import checks_for
from mia_pipeline_tests.guide_examples import make_event, to_line

PRIVATE = re.compile(r"\bdagster\w*\._")


def tick(i: int, ts: str) -> bytes:
    return to_line(make_event("market_tick", seq=i, event_id=f"tick-{i}", timestamp=ts))


def mia(layout, *args, code: int = 0):
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args])
    assert result.exit_code == code, result.output
    return result


def test_the_package_uses_dagsters_public_api_only():
    root = Path(mia_pipeline.__file__).parent
    hits = [f"{p.relative_to(root)}:{n}: {line.strip()}" for p in sorted(root.rglob("*.py"))
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if PRIVATE.search(line)]
    assert hits == []


def test_the_check_target_type_resolves_from_the_public_signature():
    from mia_pipeline.defs.recording import _target_type

    target = _target_type()(storage_id=1, run_id="r", timestamp=1.0)
    assert dg.AssetCheckEvaluation(asset_key=dg.AssetKey("trades"), check_name="c", passed=True,
                                   target_materialization_data=target).target_materialization_data.storage_id == 1


def test_cli_writes_are_runless_and_their_checks_a_checks_run(layout):
    (layout.streaming_dir / "a.jsonl").write_bytes(tick(1, "2025-06-23T10:00:00.000Z"))
    mia(layout, "collect", "start", "--once")
    with open_instance(layout) as instance:
        for asset in ("market_ticks", "raw_events", "landing_zone"):
            fetch = instance.fetch_observations if asset == "raw_events" else instance.fetch_materializations
            (record,) = fetch(dg.AssetKey(asset), limit=5).records
            assert record.run_id == "", f"{asset} was recorded inside a run"
            assert record.event_log_entry.tags["mia/command"] == "mia_collect_start_--once"
            event = record.event_log_entry.asset_observation or record.event_log_entry.asset_materialization
            written_by = event.metadata["written_by"].value
            assert written_by == f"mia --data-dir {layout.root} collect start --once"
        ticks = instance.fetch_materializations(dg.AssetKey("market_ticks"), limit=1).records[0]
        assert ticks.event_log_entry.tags["dagster/data_version"] == ticks.asset_materialization.metadata["sha256"].value
        runs = instance.get_runs()
        assert [r.job_name for r in runs] == ["market_data_checks"]  # the checks' run (ticks only); nothing made up
        assert runs[0].tags["mia/command"] == "mia_collect_start_--once" and runs[0].is_success
        evaluations = [e.dagster_event.event_specific_data for e in instance.all_logs(runs[0].run_id)
                       if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"]
    ticks_checks = {e.check_name: e for e in evaluations if e.asset_key == dg.AssetKey("market_ticks")}
    assert {"has_unique_keys", "trading_day_has_data"} <= set(ticks_checks)
    assert all(e.partition == "2025-06-23" for e in evaluations)
    assert ticks_checks["has_unique_keys"].target_materialization_data.storage_id == ticks.storage_id
    # what a write of ticks can change: the market datasets' checks and every dataset's trading_day_has_data
    others = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations
              if e.asset_key.to_user_string() not in MARKET_DATASETS}
    assert others == {(ds, "trading_day_has_data") for ds in DATASETS if ds not in MARKET_DATASETS}
    assert {e.asset_key.to_user_string() for e in evaluations} == set(DATASETS)


def test_a_write_of_other_data_runs_every_daily_check(layout):
    trade = to_line(make_event("trade", timestamp="2025-06-23T10:00:00.000Z"))
    (layout.streaming_dir / "a.jsonl").write_bytes(tick(1, "2025-06-23T10:00:00.000Z") + trade)
    mia(layout, "collect", "start", "--once")
    with open_instance(layout) as instance:
        (run,) = instance.get_runs()
        evaluations = [e.dagster_event.event_specific_data for e in instance.all_logs(run.run_id)
                       if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert run.job_name == "daily_checks" and run.is_success
    assert {(e.asset_key.to_user_string(), e.check_name) for e in evaluations} == {
        (ds, name) for ds in DATASETS for name in checks_for(ds)}


def test_a_trading_day_without_data_is_a_failing_check_and_a_gap_everywhere(layout):
    (layout.streaming_dir / "a.jsonl").write_bytes(tick(1, "2025-06-23T10:00:00.000Z") + tick(2, "2025-06-25T10:00:00.000Z"))
    mia(layout, "collect", "start", "--once")
    resources = {"mia": MiaResource(data_dir=str(layout.root))}
    with open_instance(layout) as instance:  # a UI backfill of Sunday..Wednesday in one run
        result = dg.materialize([daily_datasets], instance=instance, resources=resources, tags={
            "dagster/asset_partition_range_start": "2025-06-22", "dagster/asset_partition_range_end": "2025-06-25"})
        assert result.success  # the empty trading day is a warning, not a failed run
        rows = {(m.materialization.asset_key.to_user_string(), m.materialization.partition):
                m.materialization.metadata["dagster/row_count"].value for m in result.get_asset_materialization_events()}
        logs = "\n".join(e.message or "" for e in instance.all_logs(result.run_id))
    assert rows[("market_ticks", "2025-06-24")] == 0 and rows[("trades", "2025-06-24")] == 0
    verdicts = {(e.asset_key.to_user_string(), e.partition): e for e in result.get_asset_check_evaluations()
                if e.check_name == "trading_day_has_data"}
    assert len(verdicts) == len(DATASETS) * 4
    failed = sorted({day for (_, day), e in verdicts.items() if not e.passed})
    assert failed == ["2025-06-24"]  # Sunday 06-22 holds nothing too, and is no trading day
    bad = verdicts[("market_ticks", "2025-06-24")]
    assert bad.severity == dg.AssetCheckSeverity.WARN and "CMES" in bad.metadata["detail"].value
    assert all(e.target_materialization_data is not None for e in result.get_asset_check_evaluations())
    assert "did not yield" not in logs
    by_day = json.loads(mia(layout, "status", "--by-day", "--json").output)
    assert by_day["gaps"] == ["2025-06-24"]
    table = mia(layout, "status", "--by-day").output
    assert [line.split()[-1] for line in table.splitlines() if line.startswith("2025-06-24")] == ["gap"]
    assert "trading day(s) without data: 2025-06-24" in table
    integrity = mia(layout, "check-integrity", code=1).output
    assert "PROBLEM 2025-06-24: a CME Globex (exchange_calendars CMES) trading day" in integrity


def test_views_refresh_by_default_after_a_cli_write(layout):
    from mia_pipeline.definitions import defs

    sensor = defs.resolve_sensor_def("views_automation_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    with open_instance(layout) as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        (layout.streaming_dir / "a.jsonl").write_bytes(tick(1, "2025-06-23T10:00:00.000Z"))
        mia(layout, "collect", "start", "--once")
        second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert second.get_num_requested(dg.AssetKey("warehouse_views")) == 1
    assert second.get_num_requested(dg.AssetKey("live_session")) == 1
    third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    assert third.total_requested == 0  # once per update, not every tick


def test_an_update_in_the_same_tick_as_the_views_own_refresh_is_not_lost(layout):
    """eager() treats the view's own update as 'handled' and drops a dataset update of the same tick."""
    from mia_pipeline.definitions import defs

    with open_instance(layout) as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="warehouse_views"))  # another run
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="trades", partition="2025-06-23"))
        second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert second.get_num_requested(dg.AssetKey("warehouse_views")) == 1


def test_collect_status_counts_once_passes_and_lists_every_dataset(layout):
    assert "never started" in mia(layout, "collect", "status").output
    (layout.streaming_dir / "a.jsonl").write_bytes(tick(1, "2025-06-23T10:00:00.000Z"))
    once = mia(layout, "collect", "start", "--once").output
    assert re.search(r"in \d+\.\d\ds \(ingestion \d+\.\d\ds;", once), once
    mia(layout, "collect", "start", "--once")
    status = mia(layout, "collect", "status").output
    assert "2 `--once` pass(es)" in status and "never started" not in status
    header = next(line for line in status.splitlines() if line.strip().startswith("day"))
    assert header.split() == ["day", *DATASETS]
    assert json.loads(mia(layout, "collect", "status", "--json").output)["collector"]["once_passes"] == 2


def test_mia_materialize_runs_a_simulated_day_through_dagster_into_the_instance(layout):
    day = "2025-06-23"
    mia(layout, "materialize", "--select", "paper_trading_events", "--partition", day)
    mia(layout, "materialize", "--select", "landing_zone")
    out = mia(layout, "materialize", "--select", "daily_datasets", "--partition", day).output
    assert f"materialized trades[{day}]" in out and "SUCCESS" in out and "42/42 check(s) passed" in out
    with open_instance(layout) as instance:
        jobs = [r.job_name for r in instance.get_runs()]
        trades = instance.fetch_materializations(dg.AssetKey("trades"), limit=1).records[0]
    assert jobs.count("__ASSET_JOB") == 3
    assert trades.run_id and trades.partition_key == day
    mia(layout, "check-integrity")
    mia(layout, "validate", "--day", day)


@pytest.mark.parametrize("args, says", [
    (["--select", "nope", "--partition", "2025-06-23"], "nope: not an asset"),
    (["--select", "trades", "--partition", "2025-13-01"], "is not a partition key"),
    (["--select", "trades"], "give --partition"),
    (["--select", "trades", "--partition", "2025-06-23", "--from", "2025-06-23", "--to", "2025-06-24"], "not both"),
    (["--select", "trades", "--from", "2025-06-24", "--to", "2025-06-23"], "is before --from"),
    (["--select", "landing_zone", "--partition", "2025-06-23"], "is not partitioned"),
    (["--select", "trades,features_dataset", "--partition", "2025-06-23"], "different partitions"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_mia_materialize_refuses_bad_input_with_exit_2(layout, args, says):
    result = mia(layout, "materialize", *args, code=2)
    assert says in result.output and "Traceback" not in result.output


def test_days_a_dead_writer_stored_but_never_recorded_are_recorded_by_the_next_one(layout):
    from mia_pipeline.collection.collector import ingest_once
    from mia_pipeline.defs.recording import unrecorded
    from mia_pipeline.storage import PartitionStore

    store = PartitionStore(layout)
    (layout.streaming_dir / "a.jsonl").write_bytes(tick(1, "2025-06-23T10:00:00.000Z"))
    mia(layout, "collect", "start", "--once")
    # a writer lands 06-24 and rewrites 06-23, then dies before telling Dagster
    with open(layout.streaming_dir / "a.jsonl", "ab") as fh:
        fh.write(tick(2, "2025-06-23T11:00:00.000Z") + tick(3, "2025-06-24T10:00:00.000Z"))
    ingest_once(layout, store)
    with open_instance(layout) as instance:
        missing = unrecorded(instance, store)
        assert missing["market_ticks"] == ["2025-06-23", "2025-06-24"] and missing["raw_events"] == missing["market_ticks"]
        assert unrecorded(instance, store, window_s=None) == missing  # the nightly full comparison agrees
    out = mia(layout, "collect", "start", "--once").output  # nothing new to land: it records what it finds
    assert "did not record" in out
    with open_instance(layout) as instance:
        assert unrecorded(instance, store) == {} and unrecorded(instance, store, window_s=None) == {}
        rows = {r.partition_key: r.asset_materialization.metadata["dagster/row_count"].value
                for r in instance.fetch_materializations(dg.AssetKey("market_ticks"), limit=10).records[::-1]}
    assert rows == {"2025-06-23": 2, "2025-06-24": 1}
