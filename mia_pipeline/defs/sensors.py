"""landing_zone_sensor: per-file byte offsets → runs of daily_datasets for the affected days."""

import json
import time

import dagster as dg

from mia_pipeline.collection.sensing import plan_landing_zone_request
from mia_pipeline.defs.collection import landing_zone_ingest_job
from mia_pipeline.defs.partitions import daily_partitions
from mia_pipeline.defs.resources import MiaResource

RETRY_AFTER_S = 300


@dg.sensor(job=landing_zone_ingest_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.STOPPED)
def landing_zone_sensor(context: dg.SensorEvaluationContext, mia: MiaResource):
    """Watch data/live/streaming/*.jsonl. Committed offsets belong to the ingestion (they move only
    past data that is durable); the cursor remembers what was requested, so a tick without new
    bytes requests nothing, and a request not committed after RETRY_AFTER_S is made again."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    plan = plan_landing_zone_request(
        mia.layout(), cursor, now=time.time(), retry_after_s=RETRY_AFTER_S,
        first_day=daily_partitions.get_first_partition_key(),
        last_day=daily_partitions.get_last_partition_key(),
    )
    if plan is None:
        return dg.SkipReason("no new complete lines in the landing zone")
    start, end = plan.day_range
    tags = (
        {"dagster/partition": start} if start == end
        else {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    )
    context.update_cursor(json.dumps(plan.cursor))
    return dg.RunRequest(
        run_key=plan.run_key,
        run_config={"ops": {"daily_datasets": {"config": {"until": json.dumps(plan.until)}}}},
        tags=tags,
    )
