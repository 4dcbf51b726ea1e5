"""Schedules replacing the guide's crontab (§4.2), at the same times, in one configurable time zone.

The time zone is the settings' ``timezone`` (``MIA_TIMEZONE`` or ``timezone:`` in mia.yaml; default
America/New_York, the exchange's clock), read when the code location loads.
"""

from datetime import datetime, timedelta

import dagster as dg

from mia_pipeline.defs.ml import ml_dataset
from mia_pipeline.defs.partitions import weekly_partitions
from mia_pipeline.ml.bundle import week_of
from mia_pipeline.settings import load_settings

SCHEDULE_TIMEZONE = load_settings().timezone

weekly_ml_dataset_job = dg.define_asset_job(
    "weekly_ml_dataset",
    selection=dg.AssetSelection.assets(ml_dataset),
    executor_def=dg.in_process_executor,  # one step: a subprocess would only add its start-up
    description="The week's ML dataset (features, labels, splits): the guide's `generate_ml_dataset.py --weekly`.",
)


def last_complete_week(now: datetime) -> str:
    """Key of the newest weekly partition (Sunday..Saturday, UTC) that ended before ``now``."""
    return week_of(now.date() - timedelta(days=7))[0]


@dg.schedule(cron_schedule="0 2 * * 0", job=weekly_ml_dataset_job, execution_timezone=SCHEDULE_TIMEZONE,
             description="Sunday 02:00 (guide crontab `0 2 * * 0`): the ML dataset of the week that just ended.")
def weekly_ml_dataset_schedule(context: dg.ScheduleEvaluationContext):
    key = last_complete_week(context.scheduled_execution_time)
    if key not in weekly_partitions.get_partition_keys(current_time=context.scheduled_execution_time):
        return dg.SkipReason(f"week {key} is before the first weekly partition")
    return dg.RunRequest(run_key=f"ml-{key}", partition_key=key)
