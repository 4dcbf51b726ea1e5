"""`mia health` (the guide's data_health_check): every item on an empty root, each way an item fails
(dead collector, open CRITICAL alert, low disk, integrity problems, damaged state), the integrity verdict
kept by `mia check-integrity`, and the command's exit codes and JSON."""

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.collection.integrity import last_integrity_result, record_integrity_result
from mia_pipeline.quality.alerts import raise_incident
from mia_pipeline.quality.health import health_report
from mia_pipeline.settings import load_settings
from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.guide_examples import make_event, to_line

ITEMS = ["collector", "landing lag", "today", "open alerts", "last backup", "disk free", "last integrity"]


@pytest.fixture
def store(layout) -> PartitionStore:
    return PartitionStore(layout)


@pytest.fixture
def config(tmp_path):
    """The test machine's disk is not under test: storage floors off unless a test sets them."""
    path = tmp_path / "mia.yaml"
    path.write_text("monitoring:\n  storage_min_free_mb: 0\n  storage_min_free_pct: 0\n")
    return path


@pytest.fixture
def settings(config):
    return load_settings(config, env={})


def report(layout, store, settings) -> dict:
    return health_report(layout, store, settings)


def items(rep: dict) -> dict:
    return {i["name"]: i for i in rep["items"]}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def land(layout, store, data: bytes) -> None:
    (layout.streaming_dir / "a.jsonl").write_bytes(data)
    ingest_once(layout, store)


# -- the report ---------------------------------------------------------------------------------------------

def test_an_empty_root_is_healthy_with_warnings(layout, store, settings):
    rep = report(layout, store, settings)
    assert rep["healthy"] is True
    assert rep["data_dir"] == str(layout.root)
    by_name = items(rep)
    assert [i["name"] for i in rep["items"]] == ITEMS      # no stored day: no "last day stored"
    assert {n: i["status"] for n, i in by_name.items()} == {
        "collector": "warn", "landing lag": "ok", "today": "warn", "open alerts": "ok",
        "last backup": "warn", "disk free": "ok", "last integrity": "warn"}
    assert "never started" in by_name["collector"]["summary"]
    assert "no events stored yet" in by_name["today"]["summary"]
    assert by_name["landing lag"]["details"]["pending_bytes"] == 0
    assert by_name["landing lag"]["details"]["last_event"] is None


def test_a_running_collector_whose_process_is_gone_fails(layout, store, settings):
    layout.collector_control_file.write_text(json.dumps({"state": "running", "pid": dead_pid()}))
    rep = report(layout, store, settings)
    collector = items(rep)["collector"]
    assert collector["status"] == "fail"
    assert collector["summary"].startswith("dead")
    assert rep["healthy"] is False


def test_a_running_collector_that_lives_is_ok(layout, store, settings):
    import os

    layout.collector_control_file.write_text(json.dumps({"state": "running", "pid": os.getpid()}))
    rep = report(layout, store, settings)
    assert items(rep)["collector"]["status"] == "ok"
    assert rep["healthy"] is True


def test_a_damaged_collector_file_fails(layout, store, settings):
    layout.collector_control_file.write_text("{not json")
    rep = report(layout, store, settings)
    assert items(rep)["collector"]["status"] == "fail"
    assert items(rep)["collector"]["summary"].startswith("damaged")
    assert rep["healthy"] is False


def test_an_open_critical_alert_fails(layout, store, settings):
    raise_incident(layout, "collection_stopped", "no events for 5 minutes while CME is open")
    rep = report(layout, store, settings)
    alerts = items(rep)["open alerts"]
    assert alerts["status"] == "fail"
    assert "CRITICAL collection_stopped" in alerts["summary"]
    assert "no events for 5 minutes" in alerts["summary"]
    assert rep["healthy"] is False


def test_an_open_warning_alert_only_warns(layout, store, settings):
    raise_incident(layout, "data_quality_low", "score 0.5")
    rep = report(layout, store, settings)
    assert items(rep)["open alerts"]["status"] == "warn"
    assert rep["healthy"] is True


@pytest.mark.parametrize("monitoring", [{"storage_min_free_pct": 99.9}, {"storage_min_free_mb": 10**12}],
                         ids=["percent", "megabytes"])
def test_a_volume_under_the_free_space_floor_fails(layout, store, monitoring):
    settings = load_settings(None, env={}, monitoring=monitoring)
    rep = report(layout, store, settings)
    disk = items(rep)["disk free"]
    assert disk["status"] == "fail"
    assert disk["details"]["low"] == ["data"]
    assert "LOW on data" in disk["summary"]
    assert rep["healthy"] is False


def test_a_backup_volume_under_the_floor_is_named(layout, store, tmp_path):
    target = tmp_path / "backups-volume"
    settings = load_settings(None, env={}, monitoring={"storage_min_free_pct": 99.9}, backup={"target": str(target)})
    disk = items(report(layout, store, settings))["disk free"]
    assert disk["details"]["low"] == ["data", "backup"]
    assert disk["details"]["volumes"]["backup"]["path"] == str(target)


def test_a_clean_check_integrity_run_is_recorded_and_ok(layout, store, settings, config):
    land(layout, store, to_line(make_event("market_tick", timestamp="2025-06-23T15:00:00.000Z")))
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "--config", str(config), "check-integrity"])
    assert res.exit_code == 0, res.output
    recorded = last_integrity_result(layout)
    assert recorded["problems"] == 0
    assert recorded["by"] == "mia check-integrity"
    integrity = items(report(layout, store, settings))["last integrity"]
    assert integrity["status"] == "ok"
    assert integrity["summary"].startswith("0 problems")


def test_check_integrity_finding_a_damaged_partition_makes_health_fail(layout, store, settings, config):
    land(layout, store, to_line(make_event("market_tick", timestamp="2025-06-23T15:00:00.000Z")))
    with open(layout.day_dir("2025-06-23") / "market_ticks.parquet", "ab") as fh:
        fh.write(b"bit rot")
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "--config", str(config), "check-integrity"])
    assert res.exit_code == 1
    integrity = items(report(layout, store, settings))["last integrity"]
    assert integrity["status"] == "fail"
    assert integrity["details"]["problems"] == 1
    assert "2025-06-23/market_ticks: sha256" in integrity["summary"]
    # a clean run afterwards (the one day checked alone, once repaired) replaces the verdict: the newest counts
    record_integrity_result(layout, [], "day 2025-06-23", "mia check-integrity")
    assert items(report(layout, store, settings))["last integrity"]["status"] == "ok"


def test_a_recorded_integrity_run_with_problems_fails(layout, store, settings):
    problems = [f"day 2025-06-2{i}: trades sha256 differs from the manifest" for i in range(7)]
    result = record_integrity_result(layout, problems, "every stored day", "daily_integrity job")
    assert (result["problems"], result["first"]) == (7, problems[:5])      # the count, and the first five
    assert last_integrity_result(layout) == result
    rep = report(layout, store, settings)
    integrity = items(rep)["last integrity"]
    assert integrity["status"] == "fail"
    assert "7 problem(s)" in integrity["summary"]
    assert problems[0] in integrity["summary"] and problems[5] not in integrity["summary"]
    assert rep["healthy"] is False


@pytest.mark.parametrize("content", ["", "{broken", "[]", '{"checked_at": "x"}'],
                         ids=["empty", "not-json", "not-an-object", "no-problems-field"])
def test_a_damaged_integrity_verdict_is_reported_as_damaged(layout, store, settings, content):
    record_integrity_result(layout, [], "all", "test")
    path = next(layout.reports_dir.glob("integrity*.json"))
    path.write_text(content)
    assert last_integrity_result(layout) is None
    item = items(report(layout, store, settings))["last integrity"]
    assert item["status"] == "warn" and "damaged" in item["summary"] and "never run" not in item["summary"]


def test_a_stored_past_day_is_reported_as_landed_after_the_fact(layout, store, settings):
    lines = b"".join(to_line(make_event("market_tick", seq=m, event_id=f"t{m}",
                                        timestamp=f"2025-06-23T15:{m:02d}:00.000Z")) for m in range(0, 60, 2))
    land(layout, store, lines)
    rep = report(layout, store, settings)
    by_name = items(rep)
    assert [i["name"] for i in rep["items"]] == [*ITEMS[:3], "last day stored", *ITEMS[3:]]
    last = by_name["last day stored"]
    assert last["details"]["day"] == "2025-06-23"
    assert last["details"]["events"] == 30
    assert "landed after the fact" in last["summary"]
    # every other minute: missing rate 0.49 (29 of 59 open minutes empty), outside its target
    assert last["status"] == "warn"
    assert "missing_data_rate" in last["summary"]
    assert by_name["landing lag"]["details"]["last_event"].startswith("2025-06-23T15:58:00")
    assert rep["healthy"] is True                           # a metric outside target warns, never fails


def test_today_is_the_day_of_now(layout, store, settings):
    rep = health_report(layout, store, settings, now=datetime(2025, 6, 23, 16, tzinfo=UTC))
    assert rep["checked_at"] == "2025-06-23T16:00:00+00:00"
    assert items(rep)["today"]["details"]["day"] == "2025-06-23"


# -- the command --------------------------------------------------------------------------------------------

def mia(layout, config, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(layout.root), "--config", str(config), "health", *args])


def test_mia_health_on_a_healthy_root_exits_0_and_lists_every_item(layout, config):
    res = mia(layout, config)
    assert res.exit_code == 0, res.output
    for name in ITEMS:
        assert name in res.output
    assert "healthy" in res.output and "UNHEALTHY" not in res.output


def test_mia_health_json_is_machine_readable(layout, config):
    res = mia(layout, config, "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["healthy"] is True
    assert [i["name"] for i in rep["items"]] == ITEMS
    assert all(i["status"] in ("ok", "warn", "fail") for i in rep["items"])


def test_mia_health_exits_1_when_an_item_fails(layout, config):
    raise_incident(layout, "collection_stopped", "no events for 5 minutes while CME is open")
    res = mia(layout, config)
    assert res.exit_code == 1
    assert "UNHEALTHY" in res.output and "open alerts" in res.output
    assert "Traceback" not in res.output
    as_json = mia(layout, config, "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.output)["healthy"] is False


def test_mia_health_as_a_process_exits_1_without_a_traceback(layout, config):
    layout.collector_control_file.write_text(json.dumps({"state": "running", "pid": dead_pid()}))
    proc = subprocess.run([sys.executable, "-m", "mia_pipeline.cli.main", "--data-dir", str(layout.root),
                           "--config", str(config), "health", "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["healthy"] is False
    assert [i["status"] for i in rep["items"] if i["name"] == "collector"] == ["fail"]


def test_a_damaged_alert_state_is_said_and_open_alerts_still_come_from_the_log(layout, store, settings):
    raise_incident(layout, "collection_stopped", "nothing landed for 5 minutes")
    layout.alerts_state_file.write_text("{garbage")
    item = items(report(layout, store, settings))["open alerts"]
    assert item["status"] == "fail" and "collection_stopped" in item["summary"] and "damaged" in item["summary"]
