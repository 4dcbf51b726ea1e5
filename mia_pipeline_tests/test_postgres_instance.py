"""The PostgreSQL profile (deploy/dagster.postgres.yaml) with a real PostgreSQL and `dagster dev` on it.

A data root chosen with `mia init --instance deploy/dagster.postgres.yaml` (credentials from MIA_PG_*)
records everything in PostgreSQL: the landing sensor's tick and its run (launched by the daemon through
the queued run coordinator), a UI backfill of four days, a CLI write (runless records and its checks
run), a schedule evaluated as the UI's "Test schedule" does and its run launched; then the UI's GraphQL
shows, for every (dataset, day), the row count `mia status` shows, and no SQLite file was made.
Skipped, naming why, where PostgreSQL cannot be installed (`scripts/ensure_postgres.sh`).
"""

import json
import time

import pytest
import yaml
from click.testing import CliRunner
from dagster_ui import backfill, free_port, graphql, launch_backfill, poll, start_dagster_dev, stop, up

from mia_pipeline.cli.dagster_bridge import open_instance, set_sensor
from mia_pipeline.cli.main import cli
from mia_pipeline.dagster_home import instance_profile
from mia_pipeline.layout import DATASETS
from mia_pipeline_tests.guide_examples import TRADE_EXAMPLE, make_event, to_line
from mia_pipeline_tests.pg_server import REPO as REPO_ROOT

DAYS = ["2025-06-22", "2025-06-23", "2025-06-24", "2025-06-25"]
REPO_SELECTOR = {"repositoryLocationName": "mia_pipeline", "repositoryName": "__repository__"}


def tick(i: int, ts: str) -> bytes:
    return to_line(make_event("market_tick", seq=i, event_id=f"tick-{i}", timestamp=ts))


def mia(layout, *args) -> str:
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args])
    assert result.exit_code == 0, result.output
    assert "not recorded in Dagster" not in result.output
    return result.output


def runs(layout) -> list:
    with open_instance(layout) as instance:
        return list(instance.get_runs())


def rows_shown_by_the_ui(base: str) -> dict[str, dict[str, int]]:
    """Per dataset, {day: dagster/row_count of the day's newest materialization}, asked as the UI asks."""
    out = {}
    for ds in DATASETS:
        data = graphql(base, """query($key: [String!]!) { assetOrError(assetKey: {path: $key}) { __typename
            ... on Asset { assetMaterializations(limit: 200) { partition timestamp
                metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }""", {"key": [ds]})
        rows: dict[str, int] = {}
        for m in data["assetOrError"].get("assetMaterializations") or []:  # newest first
            count = next((e["intValue"] for e in m["metadataEntries"] if e["label"] == "dagster/row_count"), None)
            rows.setdefault(m["partition"], count)
        out[ds] = {day: n for day, n in rows.items() if n}
    return out


def dry_run_then_launch(base: str, schedule: str) -> str:
    """The UI's "Test schedule" (a dry-run evaluation), then the run it asks for launched; its run id."""
    tick_ = graphql(base, """mutation($s: ScheduleSelector!, $t: Float) { scheduleDryRun(selectorData: $s,
        timestamp: $t) { __typename ... on DryRunInstigationTick { evaluationResult { skipReason
        error { message } runRequests { runConfigYaml jobName tags { key value } } } } ... on PythonError { message } } }""",
                    {"s": {**REPO_SELECTOR, "scheduleName": schedule}, "t": time.time()})["scheduleDryRun"]
    assert tick_["__typename"] == "DryRunInstigationTick", tick_
    result = tick_["evaluationResult"]
    assert not result["error"] and not result["skipReason"], result
    (request,) = result["runRequests"]
    job = request["jobName"] or graphql(base, """query($s: ScheduleSelector!) { scheduleOrError(scheduleSelector: $s) {
        ... on Schedule { pipelineName } } }""", {"s": {**REPO_SELECTOR, "scheduleName": schedule}})[
        "scheduleOrError"]["pipelineName"]  # a request of the schedule's own job names none
    launched = graphql(base, """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
        ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""", {"p": {
        "selector": {**REPO_SELECTOR, "jobName": job},
        "runConfigData": yaml.safe_load(request["runConfigYaml"]) or {},
        "executionMetadata": {"tags": request["tags"]}}})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


@pytest.mark.slow
def test_a_postgres_instance_holds_every_writers_truth_and_the_ui_shows_it(pg_layout, tmp_path):
    layout = pg_layout
    assert instance_profile(layout).endswith("deploy/dagster.postgres.yaml")
    (layout.streaming_dir / "live.jsonl").write_bytes(tick(1, "2025-06-23T10:00:00.000Z")
                                                      + tick(2, "2025-06-24T10:00:00.000Z"))
    port, log = free_port(), tmp_path / "dagster_dev.log"
    proc = start_dagster_dev(layout, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        poll("the webserver", lambda: up(base), 180, log, proc)
        # 1. a sensor tick: the daemon evaluates landing_zone_sensor, queues its run and launches it
        set_sensor(layout, "landing_zone_sensor", True)
        landed = poll("the landing sensor's run", lambda: [r for r in runs(layout) if r.job_name == "landing_zone_ingest"
                                                          and r.is_finished], 240, log, proc)
        assert landed[0].is_success and "dagster/sensor_name" in landed[0].tags
        set_sensor(layout, "landing_zone_sensor", False)
        # 2. a CLI write: a trade on 06-25 and one more tick on 06-24
        batch = tmp_path / "batch.jsonl"
        batch.write_bytes(to_line(make_event("trade", **{**TRADE_EXAMPLE, "timestamp": "2025-06-25T09:00:00.000Z",
                                                         "event_id": "t-25"})) + tick(3, "2025-06-24T11:00:00.000Z"))
        mia(layout, "import", str(batch))
        # 3. a UI backfill of four days (06-22 holds nothing)
        backfill_id = launch_backfill(base, DATASETS, DAYS)
        done = poll("the backfill", lambda: (b := backfill(base, backfill_id))["status"] in ("COMPLETED", "FAILED",
                    "CANCELED", "COMPLETED_SUCCESS", "COMPLETED_FAILED") and b, 300, log, proc)
        assert done["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), done
        # 4. a schedule evaluated as the UI's "Test schedule" does, its run launched through the queue
        run_id = dry_run_then_launch(base, "daily_integrity_schedule")
        poll("the schedule's run", lambda: next((r for r in runs(layout) if r.run_id == run_id and r.is_finished), None),
             240, log, proc)
        shown = rows_shown_by_the_ui(base)
    finally:
        stop(proc)
    by_day = json.loads(mia(layout, "status", "--by-day", "--json"))["rows_by_day"]
    for ds in DATASETS:
        assert shown[ds] == {d: n for d, n in by_day[ds].items() if n}, ds
    assert by_day["market_ticks"] == {"2025-06-23": 1, "2025-06-24": 2}
    assert by_day["trades"] == {"2025-06-25": 1}
    all_runs = runs(layout)
    jobs = {r.job_name for r in all_runs}
    assert {"landing_zone_ingest", "daily_checks", "daily_integrity"} <= jobs, jobs
    assert all(r.is_success for r in all_runs if r.job_name == "daily_integrity")
    assert not list(layout.dagster_dir.rglob("*.db")), "something was recorded in SQLite"


def test_the_chosen_profile_sticks_and_bad_ones_are_refused_keeping_the_previous(pg_layout, tmp_path, monkeypatch):
    """Not slow: a PostgreSQL root stays one whatever later commands' environment; bad profiles exit 2,
    an unreachable database exits 1, and the root keeps its instance either way."""
    layout = pg_layout
    home = layout.dagster_dir
    config = (home / "dagster.yaml").read_bytes()
    assert b"postgres_db" in config
    shown = mia(layout, "status")  # a later command without --instance keeps the root's profile
    assert "deploy/dagster.postgres.yaml profile)" in shown
    assert json.loads(mia(layout, "status", "--json"))["dagster_instance"].endswith("deploy/dagster.postgres.yaml")
    assert (home / "dagster.yaml").read_bytes() == config

    def init(*args):
        return CliRunner().invoke(cli, ["--data-dir", str(layout.root), "init", *args])

    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    for bad, says in [("missing.yaml", "cannot read the instance profile"), (str(tmp_path / "list.yaml"),
                      "is not a Dagster instance config"), (str(tmp_path / "bin.yaml"), "is not a YAML file")]:
        result = init("--instance", bad)
        assert result.exit_code == 2 and says in result.output, result.output
        assert "Traceback" not in result.output and (home / "dagster.yaml").read_bytes() == config
    monkeypatch.setenv("MIA_PG_PORT", "1")  # nothing listens there
    result = init("--instance", str(REPO_ROOT / "deploy" / "dagster.postgres.yaml"))
    assert result.exit_code == 1 and "Connection refused" in result.output, result.output
    assert "keeps its previous instance" in result.output and (home / "dagster.yaml").read_bytes() == config
    monkeypatch.delenv("MIA_PG_PASSWORD")
    result = init("--instance", str(REPO_ROOT / "deploy" / "dagster.postgres.yaml"))
    assert result.exit_code == 1 and '"MIA_PG_PASSWORD" which is not set' in result.output, result.output
    result = init("--instance", "default")  # back to SQLite
    assert result.exit_code == 0 and "(default profile)" in result.output, result.output
    assert b"postgres" not in (home / "dagster.yaml").read_bytes() and instance_profile(layout) == "default"
