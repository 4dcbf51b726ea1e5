"""Reports (guide §5) as assets: each partition's page is written by the same library code `mia report` uses,
its Markdown summary and headline figures are the materialization's metadata, and ``report_verdict`` says
whether the report found a blocking problem (or had no data / could not run its analysis).

Declarative automation refreshes each report after its inputs change (the newest partition only).
"""

from datetime import timedelta

import dagster as dg

from mia_pipeline.defs.foundation import REFRESH_ON_UPDATE
from mia_pipeline.defs.partitions import daily_partitions, weekly_partitions
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.layout import DATASETS

VERDICT = "report_verdict"
REPORT_PATH = "<data>/reports/<end day>/"


def _verdict_spec(asset: str, what: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(VERDICT, asset=asset, blocking=False,
                             description=f"The {what} report found nothing blocking, and had data to report on "
                                         "(fails with the page's reason otherwise; the page is written either way).")


def _period(context: dg.AssetExecutionContext):
    from mia_pipeline.reports.base import Period

    window = context.partition_time_window
    return Period(window.start.date().isoformat(), (window.end - timedelta(days=1)).date().isoformat())


def _publish(context: dg.AssetExecutionContext, mia: MiaResource, kind: str, **options):
    from mia_pipeline.reports.run import make_report, write

    store = mia.store()
    report = make_report(kind, store, _period(context), **options)
    path = write(store, report)
    numbers = {k: v for k, v in report.figures.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")}
    context.log.info(f"{report.headline()} -> {path}")
    yield dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)),
        "index": dg.MetadataValue.path(str(mia.layout().report_index_file)),
        "status": report.status,
        "summary": dg.MetadataValue.md(report.summary or report.headline()),
        **numbers,
    })
    yield dg.AssetCheckResult(
        check_name=VERDICT, passed=report.status == "ok",
        severity=dg.AssetCheckSeverity.ERROR if report.status == "problem" else dg.AssetCheckSeverity.WARN,
        description=report.headline(),
        metadata={"status": report.status, "problems": dg.MetadataValue.json(report.problems[:50])})


@dg.asset(group_name="reports", partitions_def=daily_partitions, kinds={"html"},
          deps=[*DATASETS, "collection_metrics"], automation_condition=REFRESH_ON_UPDATE,
          check_specs=[_verdict_spec("data_quality_report", "data quality")])
def data_quality_report(context: dg.AssetExecutionContext, mia: MiaResource):
    """Data quality report of one UTC day (guide §5.1): completeness per dataset against the CME calendar,
    anomalies (price spikes, time gaps, stale quotes, outliers) each with its rule, consistency (trades <->
    exits <-> signals, ask >= bid, the day checks), quarantine by reason, recommendations derived from them.

    Grain: one HTML page (+ JSON figures) per day. Source: the day's stored partitions, its quarantine and
    its collection metrics. Partition: UTC day (daily_partitions).
    Path: ``<data>/reports/YYYY-MM-DD/quality_YYYY-MM-DD.html``; index ``<data>/reports/index.html``.
    """
    yield from _publish(context, mia, "quality")


@dg.asset(group_name="reports", partitions_def=weekly_partitions, kinds={"html"},
          deps=["trades", "trade_exits"], automation_condition=REFRESH_ON_UPDATE,
          check_specs=[_verdict_spec("battle_navale_performance", "performance")])
def battle_navale_performance(context: dg.AssetExecutionContext, mia: MiaResource):
    """Battle Navale performance of one week (guide §5.2): success rate (Wilson interval), pnl, profit
    factor, expectancy (interval), max drawdown — overall, by pattern, by confluence-score bucket, by market
    regime and week by week; equity curve and drawdown plot.

    Grain: one HTML page (+ JSON figures) per week. Source: the week's trades and trade_exits partitions.
    Partition: UTC week Sunday..Saturday (weekly_partitions).
    Path: ``<data>/reports/<Saturday>/performance_<Sunday>_<Saturday>.html``.
    """
    yield from _publish(context, mia, "performance")


@dg.asset(group_name="reports", partitions_def=weekly_partitions, kinds={"html", "scikitlearn"},
          deps=["features_dataset", "labels_dataset", "dataset_splits"], automation_condition=REFRESH_ON_UPDATE,
          check_specs=[_verdict_spec("feature_importance", "feature importance")])
def feature_importance(context: dg.AssetExecutionContext, mia: MiaResource):
    """Feature importance of one week's ML dataset (guide §5.3): permutation importance of a gradient-boosting
    model fitted on each purged fold's training rows and measured on its test rows only (mean and spread
    across folds), Spearman correlation of each feature with the outcome, suggestions (features never
    useful, NaN-only, redundant pairs).

    Grain: one HTML page (+ JSON figures) per week. Source: the week's features_dataset, labels_dataset and
    dataset_splits. Partition: UTC week Sunday..Saturday (weekly_partitions).
    Path: ``<data>/reports/<Saturday>/features_<Sunday>_<Saturday>.html``.
    """
    yield from _publish(context, mia, "features")
