"""landing_zone_sensor: per-file byte offsets → runs of the landing_zone_ingest job."""

import json
import time

import dagster as dg

from mia_pipeline.collection.sensing import plan_landing_zone_request
from mia_pipeline.defs.collection import landing_zone_ingest_job
from mia_pipeline.defs.resources import MiaResource

RETRY_AFTER_S = 300


@dg.sensor(job=landing_zone_ingest_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.STOPPED)
def landing_zone_sensor(context: dg.SensorEvaluationContext, mia: MiaResource):
    """Watch data/live/streaming/*.jsonl. Committed offsets belong to the ingestion (they move only
    past data that is durable); the cursor remembers what was requested, so a tick without new
    bytes requests nothing, and a request not committed after RETRY_AFTER_S is made again. Each run
    records exactly the (dataset, day) partitions it wrote."""
    if why := mia.settings().off_reason():  # data_collection.enabled: false
        return dg.SkipReason(why)
    cursor = json.loads(context.cursor) if context.cursor else {}
    plan = plan_landing_zone_request(mia.layout(), cursor, now=time.time(), retry_after_s=RETRY_AFTER_S)
    if plan is None:
        return dg.SkipReason("no new complete lines in the landing zone")
    context.update_cursor(json.dumps(plan.cursor))
    return dg.RunRequest(
        run_key=plan.run_key,
        run_config={"ops": {"landing_zone": {"config": {"until": json.dumps(plan.until)}}}},
    )
