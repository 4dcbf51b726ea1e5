"""One truth: whoever writes a day (a UI backfill, the sensor's run, `mia import`, `mia collect`, `mia
rebuild`), Dagster's latest materialization of every (dataset, day) and `mia status` agree on rows."""

import json

import dagster as dg
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.dagster_bridge import open_instance
from mia_pipeline.cli.main import cli
from mia_pipeline.defs.collection import daily_datasets, landing_zone
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.defs.sensors import landing_zone_sensor
from mia_pipeline.layout import DATASETS
from mia_pipeline.storage import PartitionStore
from mia_pipeline.storage.describe import rows_per_day
from mia_pipeline_tests.guide_examples import TRADE_EXAMPLE, make_event, to_line

DAYS = ("2025-06-22", "2025-06-23", "2025-06-24", "2025-06-25")


def tick(i: int, ts: str) -> bytes:
    return to_line(make_event("market_tick", seq=i, event_id=f"tick-{i}", timestamp=ts))


def latest_rows(instance) -> dict[tuple[str, str], int]:
    out = {}
    for ds in DATASETS:
        for r in instance.fetch_materializations(dg.AssetKey(ds), limit=1000).records:  # newest first
            out.setdefault((ds, r.partition_key), r.asset_materialization.metadata["dagster/row_count"].value)
    return out


def mia(layout, *args) -> str:
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "not recorded in Dagster" not in result.output
    return result.output


@pytest.mark.parametrize("instance_profile", ["default", "postgres"])
def test_mixed_writers_leave_dagster_status_and_disk_in_agreement(instance_profile, request, tmp_path):
    """The same on the default instance (SQLite) and on deploy/dagster.postgres.yaml (a real PostgreSQL)."""
    layout = request.getfixturevalue("layout" if instance_profile == "default" else "pg_layout")
    store = PartitionStore(layout)
    resources = {"mia": MiaResource(data_dir=str(layout.root))}
    with open_instance(layout) as instance:
        # 1. the sensor's run
        (layout.streaming_dir / "live.jsonl").write_bytes(
            tick(1, "2025-06-23T10:00:00.000Z") + tick(2, "2025-06-24T10:00:00.000Z"))
        request = landing_zone_sensor(dg.build_sensor_context(resources=resources, instance=instance))
        assert dg.materialize([landing_zone], instance=instance, resources=resources,
                              run_config=request.run_config).success
        # 2. mia import (a trade on 06-25, more ticks on 06-24)
        imported = tmp_path / "batch.jsonl"
        imported.write_bytes(to_line(make_event("trade", **{**TRADE_EXAMPLE, "timestamp": "2025-06-25T09:00:00.000Z",
                                                            "event_id": "t-25"}))
                             + tick(3, "2025-06-24T11:00:00.000Z"))
        mia(layout, "import", str(imported))
        # 3. a UI-style backfill of four days (06-22 has no data at all)
        assert dg.materialize([daily_datasets], instance=instance, resources=resources, tags={
            "dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]}).success
        # 4. the collector, one pass
        with open(layout.streaming_dir / "live.jsonl", "ab") as fh:
            fh.write(tick(4, "2025-06-25T12:00:00.000Z"))
        mia(layout, "collect", "start", "--once")
        # 5. mia rebuild
        mia(layout, "rebuild", "--date", "2025-06-24")

        dagster_rows = latest_rows(instance)
        assert type(instance.event_log_storage).__module__.split(".")[0] == (
            "dagster" if instance_profile == "default" else "dagster_postgres")
    disk = rows_per_day(store)
    shown = json.loads(mia(layout, "status", "--by-day", "--json"))
    status = shown["datasets"]
    assert shown["rows_by_day"] == disk
    for ds in DATASETS:
        for day in DAYS:
            on_disk = disk[ds].get(day, 0)
            assert dagster_rows.get((ds, day), 0) == on_disk, (ds, day)
            if on_disk:
                assert (ds, day) in dagster_rows, f"{ds} {day} is on disk but Dagster never heard of it"
        assert status[ds]["rows"] == sum(disk[ds].values())
    assert disk["market_ticks"] == {"2025-06-23": 1, "2025-06-24": 2, "2025-06-25": 1}
    assert disk["trades"] == {"2025-06-25": 1}
    assert dagster_rows[("market_ticks", "2025-06-22")] == 0  # backfilled, honest: nothing that day


def test_cli_writers_record_checks_for_their_days(layout, tmp_path):
    (layout.streaming_dir / "a.jsonl").write_bytes(tick(1, "2025-06-23T10:00:00.000Z"))
    mia(layout, "collect", "start", "--once")
    with open_instance(layout) as instance:
        key = dg.AssetCheckKey(dg.AssetKey("market_ticks"), "has_unique_keys")
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=10)
        assert [(h.partition, h.evaluation.passed) for h in history] == [("2025-06-23", True)]
        assert history[0].evaluation.target_materialization_data is not None
        landing = instance.fetch_materializations(dg.AssetKey("landing_zone"), limit=5).records
        assert len(landing) == 1 and landing[0].asset_materialization.metadata["lines"].value == 1
    mia(layout, "collect", "start", "--once")  # nothing new: nothing recorded
    with open_instance(layout) as instance:
        assert len(instance.fetch_materializations(dg.AssetKey("landing_zone"), limit=5).records) == 1


def test_simulate_records_the_landing_files_it_wrote(layout):
    mia(layout, "simulate", "--start", "2025-06-20", "--days", "2")  # a Friday and a Saturday
    with open_instance(layout) as instance:
        records = instance.fetch_materializations(dg.AssetKey("paper_trading_events"), limit=10).records
    assert [r.partition_key for r in records] == ["2025-06-20"]  # the weekend wrote nothing
    lines = (layout.streaming_dir / "paper_trading_2025-06-20.jsonl").read_bytes().count(b"\n")
    assert records[0].asset_materialization.metadata["dagster/row_count"].value == lines > 100


def test_cli_reports_failed_checks_and_refuses_damaged_raw_lines(layout):
    import pyarrow as pa

    (layout.streaming_dir / "a.jsonl").write_bytes(tick(1, "2025-06-23T10:00:00.000Z"))
    mia(layout, "collect", "start", "--once")
    store = PartitionStore(layout)
    t = store.read("2025-06-23", "market_ticks")
    t = t.set_column(t.schema.get_field_index("bid"), "bid", pa.array([-1.0]))  # damage: a negative price
    store.write("2025-06-23", "market_ticks", t)
    with open(layout.streaming_dir / "a.jsonl", "ab") as fh:
        fh.write(tick(2, "2025-06-23T11:00:00.000Z"))
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "collect", "start", "--once"])
    assert result.exit_code == 0  # the new line is stored; the damage is reported, not hidden
    assert "check failed: market_ticks[2025-06-23].prices_positive: bid: 1 rows <= 0 (warning)" in result.output

    raw = layout.dataset_file("2025-06-23", "raw_events")
    raw.write_bytes(raw.read_bytes()[:-4] + b"\0\0\0\0")
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "rebuild", "--date", "2025-06-23"])
    assert result.exit_code == 1 and "do not match their manifest" in result.output
    assert store.read("2025-06-23", "market_ticks").num_rows == 2  # nothing was rebuilt from damage


def test_days_stored_but_never_recorded_are_caught_up_by_the_next_writer(layout):
    """A writer that dies between committing a day and recording it (SIGKILL) leaves Dagster behind;
    the next `mia collect` records what the disk holds, so the two agree again."""
    from mia_pipeline.collection.collector import ingest_once

    store = PartitionStore(layout)
    (layout.streaming_dir / "a.jsonl").write_bytes(tick(1, "2025-06-23T10:00:00.000Z")
                                                   + tick(2, "2025-06-24T10:00:00.000Z"))
    ingest_once(layout, store)  # stored, offsets committed, never recorded (the "killed" writer)
    out = mia(layout, "collect", "start", "--once")  # nothing new to land...
    with open_instance(layout) as instance:
        rows = latest_rows(instance)
    assert rows[("market_ticks", "2025-06-23")] == 1 and rows[("market_ticks", "2025-06-24")] == 1
    assert "nothing new" in out
    mia(layout, "collect", "start", "--once")  # all agree now: nothing recorded twice
    with open_instance(layout) as instance:
        records = instance.fetch_materializations(dg.AssetKey("market_ticks"), limit=10).records
    assert len(records) == 2
