"""Foundation assets: the data tree and the DuckDB warehouse views."""


import dagster as dg

from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.layout import DATASETS, init_tree
from mia_pipeline.storage import refresh_views


@dg.asset(group_name="lifecycle", kinds={"filesystem"})
def data_tree(context: dg.AssetExecutionContext, mia: MiaResource) -> dg.MaterializeResult:
    """The data folder tree of the guide (§2.1) plus backtest/, quarantine/, reports/, .dagster/.

    Grain: one directory per layout entry. Source: settings (``MIA_DATA_DIR``). Partition: none.
    Path: ``<data>/`` (live/, snapshots/daily|archive|quarantine, backtest/, processed/ml_ready,
    backups/hourly|daily|weekly, reports/, .dagster/). Idempotent, like ``mia init``.
    """
    layout = mia.layout()
    created = init_tree(layout)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(layout.root)),
            "created_dirs": len(created),
            "dirs": dg.MetadataValue.md("\n".join(f"- `{p.relative_to(layout.root.parent)}`" for p in layout.tree())),
        }
    )


# Derived views: refreshed whenever any upstream partition is updated (by a run or a runless event) since
# the view was last *requested* — not since it was last updated, as eager() has it: eager() drops a dataset
# update that lands in the same tick as the view's own refresh by another run (the landing run, a CLI
# write), and would wait for every day since the first partition to exist (its "no dep missing" clause).
REFRESH_ON_UPDATE = (
    dg.AutomationCondition.in_latest_time_window()
    & dg.AutomationCondition.any_deps_updated().since(dg.AutomationCondition.newly_requested())
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("refresh when any dependency was updated since the last request")


@dg.asset(group_name="collection", kinds={"duckdb"}, deps=[data_tree, "landing_zone", *DATASETS], pool="duckdb",
          automation_condition=REFRESH_ON_UPDATE)
def warehouse_views(mia: MiaResource) -> dg.MaterializeResult:
    """DuckDB views (one per dataset) over every daily Parquet partition.

    Grain: one view per dataset, one row per stored record. Source: ``snapshots/daily/*/<dataset>.parquet``.
    Partition: none (views read all days live; the row counts shown are refreshed in the ingestion
    run and by automation whenever a dataset partition changes). Path: ``<data>/warehouse.duckdb``.
    Runs in the ``duckdb`` pool (limit 1): DuckDB allows a single writer.
    """
    layout = mia.layout()
    counts = refresh_views(layout)
    table = "\n".join(f"| {k} | {v} |" for k, v in counts.items()) or "| (no datasets yet) | 0 |"
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(layout.warehouse_file)),
            "views": len(counts),
            "dagster/row_count": sum(counts.values()),
            "preview": dg.MetadataValue.md("| view | rows |\n|---|---|\n" + table),
        }
    )


views_automation_sensor = dg.AutomationConditionSensorDefinition(
    "views_automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Declarative automation of what is derived: warehouse_views and live_session are refreshed "
                "after any dataset partition changes (a backfill, a landing run, a `mia` command's write), and the "
                "newest partitions of collection_metrics and the reports after their inputs change. Runs "
                "by default while `make ui` (or dagster-daemon) runs; stop it in the UI (Automation) or with "
                "`dagster sensor stop views_automation_sensor -w <data>/.dagster/workspace.yaml`.",
)
