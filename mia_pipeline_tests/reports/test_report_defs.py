"""The report assets through Dagster (one paper-trading week materialized into tmp), their metadata and
verdict checks, the index they keep, and `mia report` from the command line: periods, exit codes, bad
arguments (exit 2, no traceback) and an empty data root (pages that say "no data", exit 1)."""

import json

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.definitions import defs
from mia_pipeline.defs.collection import landing_zone
from mia_pipeline.defs.ml import ml_dataset
from mia_pipeline.defs.reports import (
    VERDICT,
    battle_navale_performance,
    data_quality_report,
    feature_importance,
)
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.defs.sources import paper_trading_events

DAYS = ("2025-06-23", "2025-06-24", "2025-06-25")  # Monday..Wednesday of the week 2025-06-22..28
WEEK = "2025-06-22"
REPORTS = ("data_quality_report", "battle_navale_performance", "feature_importance")


def res(layout):
    return {"mia": MiaResource(data_dir=str(layout.root))}


def invoke(layout, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    """A data root holding three paper-trading days and their week's ML dataset, built through Dagster."""
    from mia_pipeline.layout import Layout, init_tree

    layout = Layout(tmp_path_factory.mktemp("reports") / "data")
    init_tree(layout)
    instance = dg.DagsterInstance.ephemeral()
    for day in DAYS:
        assert dg.materialize([paper_trading_events], partition_key=day, resources=res(layout), instance=instance).success
    assert dg.materialize([landing_zone], resources=res(layout), instance=instance).success
    assert dg.materialize([ml_dataset], partition_key=WEEK, resources=res(layout), instance=instance).success
    return layout, instance


def test_report_assets_are_in_the_reports_group_and_refresh_by_automation():
    graph = defs.resolve_asset_graph()
    for name in REPORTS:
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == "reports"
        assert node.automation_condition is not None
    assert "battle_navale_performance" in {
        k.to_user_string() for k in defs.resolve_job_def("weekly_ml_dataset").asset_layer.selected_asset_keys}
    assert "data_quality_report" in {
        k.to_user_string() for k in defs.resolve_job_def("demo_trading_day").asset_layer.selected_asset_keys}


def test_daily_quality_report_materializes_with_its_summary(week):
    layout, instance = week
    result = dg.materialize([data_quality_report], partition_key=DAYS[0], resources=res(layout), instance=instance)
    assert result.success
    (mat,) = result.get_asset_materialization_events()
    meta = mat.materialization.metadata
    page = layout.report_file("quality", DAYS[0], DAYS[0])
    assert meta["path"].value == str(page) and page.is_file()
    assert meta["summary"].value.strip()
    figures = json.loads(page.with_suffix(".json").read_text())
    assert meta["status"].value == figures["status"]
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == VERDICT and check.passed == (figures["status"] == "ok")
    assert layout.report_index_file.is_file()
    assert page.relative_to(layout.reports_dir).as_posix() in layout.report_index_file.read_text()


def test_weekly_performance_report_counts_the_weeks_trades(week):
    layout, instance = week
    result = dg.materialize([battle_navale_performance], partition_key=WEEK, resources=res(layout), instance=instance)
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    files = f"{layout.daily_dir}/*/trades.parquet"
    trades = duckdb.sql(f"SELECT count(*) FROM read_parquet('{files}')").fetchall()[0][0]
    assert trades > 0 and meta["trades"].value == trades
    assert layout.report_file("performance", WEEK, "2025-06-28").is_file()


def test_weekly_feature_importance_reads_the_weeks_ml_dataset(week):
    layout, instance = week
    result = dg.materialize([feature_importance], partition_key=WEEK, resources=res(layout), instance=instance)
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    page = layout.report_file("features", WEEK, "2025-06-28")
    assert page.is_file() and meta["path"].value == str(page)
    decisions = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{layout.ml_ready_dir}/*/features_dataset.parquet')").fetchall()[0][0]
    assert meta["rows"].value == decisions


def test_cli_report_all_writes_three_pages_and_the_index(week):
    layout, _ = week
    out = invoke(layout, "report", "all", "--start", DAYS[0], "--end", DAYS[-1], "--timeframe", "monthly")
    assert out.exit_code in (0, 1), out.output
    for kind in ("quality", "performance", "features"):
        page = layout.report_file(kind, DAYS[0], DAYS[-1])
        assert page.is_file(), kind
        assert str(page) in out.output
    assert f"index: {layout.report_index_file}" in out.output
    again = invoke(layout, "report", "all", "--start", DAYS[0], "--end", DAYS[-1], "--timeframe", "monthly")
    assert again.exit_code == out.exit_code, "re-running the same period gives the same verdict"


@pytest.mark.parametrize("args, message", [
    (["report", "quality", "--start", "2025-06-25", "--end", "2025-06-23"], "--start 2025-06-25 is after --end"),
    (["report", "performance", "--timeframe", "yearly"], "'yearly' is not one of"),
    (["report", "features", "--start", "2025-13-01"], "2025-13-01"),
    (["report", "all", "--end", "1900-01-01"], "1900-01-01"),
])
def test_bad_report_arguments_exit_2_and_say_how(layout, args, message):
    out = invoke(layout, *args)
    assert out.exit_code == 2, out.output
    assert message in out.output
    assert "Traceback" not in out.output


def test_empty_data_root_gives_pages_that_say_no_data(layout):
    out = invoke(layout, "report", "all", "--start", "2025-06-23", "--end", "2025-06-27")
    assert out.exit_code == 1, out.output
    assert "Traceback" not in out.output
    for kind in ("quality", "performance", "features"):
        doc = json.loads(layout.report_file(kind, "2025-06-23", "2025-06-27", ".json").read_text())
        assert doc["status"] == "no data", (kind, doc["status"])
        html = layout.report_file(kind, "2025-06-23", "2025-06-27").read_text()
        assert "<img" not in html, f"{kind}: no empty plot"


def test_reports_are_requested_by_automation_after_their_inputs_change():
    """Two ticks of declarative automation: nothing at first; after today's trades (and the current week's
    ML dataset) change, the day's quality report and the week's two reports are requested, once."""
    from datetime import UTC, datetime

    from mia_pipeline.ml.bundle import week_of

    today = datetime.now(UTC).date().isoformat()
    week = week_of(today)[0]
    instance = dg.DagsterInstance.ephemeral()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert all(first.get_num_requested(dg.AssetKey(a)) == 0 for a in REPORTS)
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="trades", partition=today))
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="features_dataset", partition=week))
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    for name in REPORTS:
        assert second.get_num_requested(dg.AssetKey(name)) == 1, name
    third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    assert all(third.get_num_requested(dg.AssetKey(a)) == 0 for a in REPORTS)
