"""Quality: per-day collection metrics (guide §4.1) and freshness checks of what collection keeps live.

``collection_metrics[D]`` is computed from day D's stored data by :mod:`mia_pipeline.quality.metrics`;
its materialization carries D's own figures as metadata, so the UI's asset plots show them day by day.
Declarative automation refreshes the newest day whenever one of its datasets changes.
"""

from datetime import timedelta

import dagster as dg

from mia_pipeline.defs.foundation import REFRESH_ON_UPDATE
from mia_pipeline.defs.partitions import daily_partitions
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.layout import DATASETS, RAW_EVENTS
from mia_pipeline.quality.metrics import TARGETS, target_text, within, write_day_metrics

FIGURES = ("events", "quarantined", "snapshots_per_hour", "data_quality_score", "completeness", "missing_data_rate",
           "validity", "timeliness", "session_coverage", "ingestion_lag_p50_s", "ingestion_lag_p99_s", "storage_mb")


def metrics_metadata(figures: dict, path) -> dict:
    """One day's figures as Dagster metadata (numbers plot over partitions; None is left out)."""
    meta: dict = {"path": dg.MetadataValue.path(str(path)), "day": figures["day"]}
    for name in FIGURES:
        if figures.get(name) is not None:
            meta[name] = float(figures[name])
    meta["live"] = bool(figures.get("live"))
    missed = [f"{n} {figures[n]} (target {target_text(n)})"
              for n in TARGETS if within(n, figures.get(n)) is False]
    meta["targets"] = dg.MetadataValue.md(
        "All figures within the guide's targets." if not missed else "Outside target: " + "; ".join(missed))
    return meta


def metrics_materialization(layout, store, day: str) -> dg.AssetMaterialization:
    """Compute and store one day's figures; the runless record of ``collection_metrics[day]`` that a
    writer outside a run (a collector, an import, a restore) reports for a day it wrote."""
    figures = write_day_metrics(layout, store, day)
    return dg.AssetMaterialization(asset_key="collection_metrics", partition=day,
                                   metadata=metrics_metadata(figures, layout.metrics_file(day)))


@dg.asset(group_name="quality", partitions_def=daily_partitions, kinds={"duckdb"},
          deps=["landing_zone", RAW_EVENTS, *DATASETS], automation_condition=REFRESH_ON_UPDATE)
def collection_metrics(context: dg.AssetExecutionContext, mia: MiaResource) -> dg.MaterializeResult:
    """Collection metrics of one UTC day: snapshots per hour (target 50-200), data quality score
    (completeness x validity x timeliness, target > 0.95), missing-data rate (< 0.01), storage (MB/day),
    ingestion lag p50/p99.

    Grain: one JSON object of figures per day. Source: the day's stored raw lines (ts, received_at), its
    trades/signals partitions, its quarantine and folder size (never a writer's own report).
    Partition: UTC day (daily_partitions); each materialization's metadata holds that day's figures.
    Path: ``<data>/reports/metrics/YYYY-MM-DD.json``.
    """
    layout, store = mia.layout(), mia.store()
    figures = write_day_metrics(layout, store, context.partition_key)
    return dg.MaterializeResult(metadata=metrics_metadata(figures, layout.metrics_file(context.partition_key)))


collection_freshness_checks = dg.build_last_update_freshness_checks(
    assets=["landing_zone", "live_session"], lower_bound_delta=timedelta(hours=2),
    deadline_cron="0 22 * * 1-5", timezone="UTC", severity=dg.AssetCheckSeverity.WARN)

collection_freshness_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=collection_freshness_checks, name="collection_freshness_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=300)
