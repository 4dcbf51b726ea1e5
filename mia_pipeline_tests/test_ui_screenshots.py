"""The "Done when" walk of issue 19 through a real Dagster webserver + daemon (`dagster dev`, as `make ui`
starts them), its GraphQL API and headless Chromium screenshots (paths printed, kept under tmp_path).

The walk: ticks landed on Saturday 2025-06-21 (1) and Monday 2025-06-23 (3) by a `landing_zone` run;
then, with the UI and daemon up, a UI backfill of the daily datasets over 06-21..06-24 (one run:
Sunday 06-22 and Tuesday 06-24 hold nothing) and 2 ticks on 06-25 landed by `mia collect start --once`.
It shows:

- the empty trading day: 06-24 is materialized with 0 rows and its `trading_day_has_data` check fails
  (the weekend passes); `mia status --by-day` (gaps) and `mia check-integrity` name the same day;
- the views refresh with no manual step: the automation sensor runs by default and refreshes
  `warehouse_views` and `live_session` after the backfill, and `warehouse_views` after the CLI write;
- no `mia_cli` fake runs: the CLI write (ticks only) is runless, its checks a `market_data_checks` run;
- staleness by day (GraphQL `staleStatusByPartition`): after the writes every day is Synced; when the raw
  lines of 06-23 change (a new `raw_events` partition recorded, its datasets not), 06-23 and only
  06-23 is Unsynced (also on its UI page); `mia rebuild --date 2025-06-23` makes it Synced again.

The daemon starts before the writes on purpose: Dagster's automation conditions see no update on a
sensor's first evaluation, so writes made before the daemon's first tick are never acted on.
"""

import json
import re
import time

import dagster as dg
import pytest
from click.testing import CliRunner
from dagster_ui import backfill, free_port, graphql, launch_backfill, poll, start_dagster_dev, stop, up
from ui_browser import ensure_chromium, shoot, shoot_tab, text_of, value

from mia_pipeline.cli.dagster_bridge import open_instance
from mia_pipeline.cli.main import cli
from mia_pipeline.defs.collection import landing_zone
from mia_pipeline.defs.foundation import data_tree
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.layout import DATASETS
from mia_pipeline_tests.guide_examples import make_event, to_line

LANDED = {"2025-06-21": 1, "2025-06-23": 3}  # ticks landed by the landing_zone run (Saturday, Monday)
ROWS = {"2025-06-21": 1, "2025-06-22": 0, "2025-06-23": 3, "2025-06-24": 0}  # market_ticks after the backfill
EMPTY_TRADING_DAY = "2025-06-24"  # a Tuesday without data: 0 rows and a failing check
DAY = "2025-06-23"  # the day whose raw lines change
CLI_DAY = "2025-06-25"  # 2 ticks written by `mia collect start --once`
DAYS = [*ROWS, CLI_DAY]
SENSOR = "views_automation_sensor"
VIEWS = ("warehouse_views", "live_session")
GAP_CHECK = "trading_day_has_data"
SCHEDULES = {"hourly_backup_schedule", "daily_backup_schedule", "daily_maintenance_schedule",
             "daily_integrity_schedule", "weekly_archive_schedule", "weekly_backup_schedule", "weekly_ml_dataset_schedule"}


def tick(i: int, ts: str) -> bytes:
    return to_line(make_event("market_tick", seq=i, event_id=f"tick-{i}", timestamp=ts))


def mia(layout, *args: str, code: int = 0):
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args])
    assert result.exit_code == code, result.output
    return result














def sensor_state(base: str) -> dict:
    data = graphql(base, """query($name: String!) { sensorOrError(sensorSelector: {repositoryLocationName:
        "mia_pipeline", repositoryName: "__repository__", sensorName: $name}) { __typename ... on Sensor {
        sensorType sensorState { status ticks(limit: 1) { status timestamp } } } } }""", {"name": SENSOR})
    assert data["sensorOrError"]["__typename"] == "Sensor", data
    return data["sensorOrError"]






def stale_status(base: str, asset: str, days) -> dict[str, str]:
    node = graphql(base, """query($key: [String!]!, $days: [String!]!) { assetNodeOrError(assetKey: {path: $key}) {
        __typename ... on AssetNode { staleStatusByPartition(partitions: $days) } } }""",
                   {"key": [asset], "days": list(days)})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    return dict(zip(days, node["staleStatusByPartition"], strict=True))


def check_results(base: str, asset: str, check: str) -> dict[str, bool]:
    """``{partition: passed}``: the latest evaluation of ``check`` on each partition of ``asset``."""
    executions = graphql(base, """query($key: [String!]!, $check: String!) { assetCheckExecutions(
        assetKey: {path: $key}, checkName: $check, limit: 200) { partition evaluation { success } } }""",
                         {"key": [asset], "check": check})["assetCheckExecutions"]
    latest: dict[str, bool] = {}
    for e in executions:  # newest first
        if e["evaluation"] is not None:
            latest.setdefault(e["partition"], e["evaluation"]["success"])
    return latest


def newest(instance, asset: str):
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records
    return records[0] if records else None


def last_dataset_write(instance) -> float:
    return max(r.timestamp for ds in DATASETS if (r := newest(instance, ds)) is not None)


def refreshed_after(instance, since: float, views=VIEWS) -> dict | None:
    """``{view: record}`` once each of ``views`` has a materialization newer than ``since``."""
    records = {v: newest(instance, v) for v in views}
    return records if all(r is not None and r.timestamp > since for r in records.values()) else None


def launched_by(instance, record) -> str | None:
    run = instance.get_run_by_id(record.run_id) if record.run_id else None
    return run.tags.get("dagster/sensor_name") if run else None


def land_first_days(layout, instance) -> None:
    lines = [tick(i, f"{DAY}T1{i}:00:00.000Z") for i in range(1, 4)] + [tick(4, "2025-06-21T12:00:00.000Z")]
    (layout.streaming_dir / "a.jsonl").write_bytes(b"".join(lines))
    resources = {"mia": MiaResource(data_dir=str(layout.root))}  # as `make demo`'s main job: the tree, then a landing
    assert dg.materialize([data_tree, landing_zone], instance=instance, resources=resources).success


def market_ticks_rows(instance) -> dict[str, int]:
    records = instance.fetch_materializations(dg.AssetKey("market_ticks"), limit=100).records[::-1]
    return {r.partition_key: r.asset_materialization.metadata["dagster/row_count"].value for r in records}


def change_raw_lines_without_rebuilding(instance, day: str) -> None:
    """What a writer that changes a day's raw lines but rebuilds nothing records: a new observation of the
    ``raw_events`` partition (an external asset: observed, as ``recording.record_events`` does) with
    another data version."""
    instance.report_runless_asset_event(dg.AssetObservation(
        asset_key="raw_events", partition=day, tags={"dagster/data_version": "changed-by-test"}))


@pytest.mark.slow
def test_dagster_ui_walk_after_a_backfill_and_a_cli_write(layout, tmp_path):
    started = time.monotonic()
    laps: dict[str, float] = {}

    def lap(name: str) -> None:
        laps[name] = time.monotonic() - started

    chromium = ensure_chromium()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "dagster_dev.log"
    shots, profile = tmp_path / "shots", tmp_path / "chromium-profile"
    shots.mkdir()
    with open_instance(layout) as instance:
        land_first_days(layout, instance)
        assert market_ticks_rows(instance) == LANDED
        server = start_dagster_dev(layout, port, log)
        try:
            poll("dagster dev answering /server_info", lambda: up(base), 180, log, server, every=0.5)
            lap("dagster dev up")
            # The sensor runs by default; its first evaluation must be over before the writes it acts on.
            first = poll(f"a first tick of {SENSOR}", lambda: (s := sensor_state(base))["sensorState"]["ticks"]
                         and s["sensorState"]["ticks"][0]["status"] != "STARTED" and s, 180, log, server)
            lap("first automation tick")

            backfill_id = launch_backfill(base, DATASETS, ROWS)
            done = poll(f"backfill {backfill_id}", lambda: (b := backfill(base, backfill_id))["status"] not in (
                "REQUESTED", "CANCELING") and b, 420, log, server)
            lap("backfill done")
            assert market_ticks_rows(instance) == {**LANDED, **ROWS}
            after_backfill = last_dataset_write(instance)
            views_backfill = poll("views refreshed after the backfill", lambda: refreshed_after(
                instance, after_backfill), 240, log, server)
            by_backfill = {v: launched_by(instance, r) for v, r in views_backfill.items()}
            lap("views refreshed after the backfill")
            # REFRESH_ON_UPDATE drops a dataset update that lands between the views' own refresh and the
            # sensor's next tick (that tick sees both; the refresh resets the condition): a known gap, so
            # the CLI write comes after that tick.
            refreshed = max(r.timestamp for r in views_backfill.values())
            poll(f"a tick of {SENSOR} after the views' refresh", lambda: any(
                t["status"] != "STARTED" and t["timestamp"] > refreshed for t in sensor_state(base)["sensorState"]["ticks"]),
                 180, log, server)

            with open(layout.streaming_dir / "a.jsonl", "ab") as fh:
                fh.write(tick(5, f"{CLI_DAY}T10:00:00.000Z") + tick(6, f"{CLI_DAY}T11:00:00.000Z"))
            collected = mia(layout, "collect", "start", "--once").output
            assert "not recorded" not in collected, collected
            after_cli = last_dataset_write(instance)
            cli_record = newest(instance, "market_ticks")
            gaps = json.loads(mia(layout, "status", "--by-day", "--json").output)["gaps"]
            integrity = mia(layout, "check-integrity", code=1).output
            views_cli = poll("views refreshed after the CLI write", lambda: refreshed_after(
                instance, after_cli), 240, log, server)
            by_cli = {v: launched_by(instance, r) for v, r in views_cli.items()}
            lap("views refreshed after the CLI write")

            synced = stale_status(base, "market_ticks", DAYS)
            failing = check_results(base, "market_ticks", GAP_CHECK)

            graph_png = shots / "asset_graph_collection.png"
            graph = shoot(chromium, f"{base}/locations/mia_pipeline/asset-groups/collection", graph_png, profile,
                          ready=lambda p: {"raw_events", *DATASETS, *VIEWS} <= set(p.texts),
                          window="1600,4400")  # tall enough for the whole collection group (and the reports and ML
                          # assets downstream of it, drawn beside it) at the default zoom
            partition_png = shots / f"market_ticks_partition_{DAY}.png"
            partition = shoot(chromium, f"{base}/assets/market_ticks?view=partitions&partition={DAY}", partition_png,
                              profile, ready=lambda p: value(p, "dagster/row_count") is not None)
            empty_png = shots / f"market_ticks_partition_{EMPTY_TRADING_DAY}_empty_trading_day.png"
            empty = shoot(chromium, f"{base}/assets/market_ticks?view=partitions&partition={EMPTY_TRADING_DAY}",
                          empty_png, profile, ready=lambda p: value(p, "dagster/row_count") is not None)
            check_png = shots / f"market_ticks_check_{GAP_CHECK}_history.png"
            check = shoot_tab(chromium, f"{base}/assets/market_ticks?view=checks&checkDetail={GAP_CHECK}",
                              "Execution history", check_png, profile,
                              ready=lambda p: any(EMPTY_TRADING_DAY in row for row in p.rows), size=(1600, 1200))
            cli_png = shots / f"market_ticks_partition_{CLI_DAY}_by_the_cli.png"
            cli_day = shoot(chromium, f"{base}/assets/market_ticks?view=partitions&partition={CLI_DAY}", cli_png,
                            profile, ready=lambda p: value(p, "dagster/row_count") is not None, window="1600,1500")
            runs_png = shots / "runs.png"
            runs = shoot(chromium, f"{base}/runs", runs_png, profile, ready=lambda p: "market_data_checks" in p.texts)
            automation_png = shots / "automation.png"
            automation = shoot(chromium, f"{base}/automation", automation_png, profile,
                               ready=lambda p: SCHEDULES | {SENSOR} <= set(p.texts), window="1600,1400")
            lap("screenshots")

            change_raw_lines_without_rebuilding(instance, DAY)
            changed = stale_status(base, "market_ticks", DAYS)
            unsynced_png = shots / f"market_ticks_partition_{DAY}_raw_lines_changed.png"
            unsynced = shoot(chromium, f"{base}/assets/market_ticks?view=partitions&partition={DAY}", unsynced_png,
                             profile, ready=lambda p: value(p, "dagster/row_count") is not None)
            assert "rebuilt" in mia(layout, "rebuild", "--date", DAY).output
            rebuilt = stale_status(base, "market_ticks", DAYS)
            lap("staleness walk")
        finally:
            stop(server)

    print(f"\nUI walk ({time.monotonic() - started:.0f}s; " + ", ".join(f"{k} at {v:.0f}s" for k, v in laps.items())
          + f"); dagster dev log: {log}")
    for png in (graph_png, partition_png, empty_png, check_png, cli_png, runs_png, automation_png, unsynced_png):
        print(f"  {png}  ({png.stat().st_size} bytes)")

    # The sensor runs by default; the backfill was one run (single-run policy) that succeeded.
    assert (first["sensorType"], first["sensorState"]["status"]) == ("AUTO_MATERIALIZE", "RUNNING"), first
    assert done["status"] == "COMPLETED_SUCCESS", done
    assert [r["status"] for r in done["runs"]] == ["SUCCESS"], done["runs"]
    assert {t["key"]: t["value"] for t in done["runs"][0]["tags"]}.get("dagster/asset_partition_range_end") == "2025-06-24"

    # Views refreshed with no manual step: by the sensor's runs after the backfill; after the CLI write,
    # warehouse_views by the sensor (live_session the collector refreshes in the same pass).
    assert by_backfill == {"warehouse_views": SENSOR, "live_session": SENSOR}, by_backfill
    assert by_cli["warehouse_views"] == SENSOR, by_cli

    # The empty trading day is a problem everywhere, the weekend nowhere.
    assert gaps == [EMPTY_TRADING_DAY], gaps
    assert re.search(rf"^PROBLEM {EMPTY_TRADING_DAY}: a CME Globex \(exchange_calendars CMES\) trading day", integrity,
                     re.M), integrity
    assert [d for d, passed in sorted(failing.items()) if not passed] == [EMPTY_TRADING_DAY], failing
    assert all(failing[d] for d in ("2025-06-21", "2025-06-22", DAY, CLI_DAY)), failing
    assert value(empty, "dagster/row_count") == "0", empty.rows
    assert "Materialized" in empty.texts, empty.texts  # materialized with 0 rows ...
    row = next((r for r in check.rows if EMPTY_TRADING_DAY in r), None)  # ... and its check failed, on the page
    assert row is not None and row[0] == "Failed", check.rows
    assert "CME Globex" in " ".join(row), row
    weekend = next((r for r in check.rows if "2025-06-22" in r), None)
    assert weekend is not None and weekend[0] == "Passed", check.rows

    # Pages: the collection graph with raw_events; a partition's own row count; the CLI write is runless.
    assert {"landing_zone", "raw_events", *DATASETS, *VIEWS} <= set(graph.texts), graph.texts
    assert not [t for t in graph.texts if t.startswith("Unsynced")], graph.texts  # landing 06-25 left the rest Synced
    assert value(partition, "day") == DAY, partition.rows
    assert value(partition, "dagster/row_count") == str(ROWS[DAY]), partition.rows
    assert re.search(rf"^{DAY}\nMaterialized\n", text_of(partition), re.M), "the selected partition's header is not shown"
    assert "Unsynced" not in text_of(partition)
    assert value(cli_day, "dagster/row_count") == "2", cli_day.rows
    assert "collect start --once" in (value(cli_day, "written_by") or ""), cli_day.rows
    assert cli_record.run_id == "" and cli_record.asset_materialization.tags.get("mia/command"), cli_record
    assert "market_data_checks" in runs.texts and "mia_cli" not in text_of(runs) + text_of(cli_day), runs.texts
    assert SCHEDULES <= set(automation.texts), automation.texts  # the guide's crontab, as Dagster schedules
    assert SENSOR in automation.texts and "Automation condition sensor" in automation.texts, automation.texts

    # Staleness by day: every day Synced after the writes; a change of 06-23's raw lines makes 06-23
    # (only) Unsynced, in the API and on its page; `mia rebuild` makes it Synced again.
    assert synced == dict.fromkeys(DAYS, "FRESH"), synced
    assert changed == {**dict.fromkeys(DAYS, "FRESH"), DAY: "STALE"}, changed
    assert re.search(rf"^{DAY}\nMaterialized\nUnsynced", text_of(unsynced), re.M), unsynced.texts[-80:]
    assert rebuilt == dict.fromkeys(DAYS, "FRESH"), rebuilt
