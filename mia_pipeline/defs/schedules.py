"""Schedules replacing the guide's crontab (§4.2), at the same times, in one configurable time zone.

    0 * * * *   hourly incremental backup            hourly_backup
    0 2 * * *   daily full backup                    daily_backup
    0 3 * * *   cleanup + optimise                   daily_maintenance
    0 4 * * *   integrity                            daily_integrity
    0 1 * * 0   weekly archive + archive backup      archive_months (one run per month due), weekly_backup
    0 2 * * 0   weekly ML dataset                    weekly_ml_dataset

The time zone is the settings' ``timezone`` (``MIA_TIMEZONE`` or ``timezone:`` in mia.yaml; default
America/New_York, the exchange's clock), read when the code location loads. All start stopped: turn
them on in the UI (Automation) or with ``dagster schedule start``.
"""

from datetime import datetime, timedelta

import dagster as dg

from mia_pipeline.defs.lifecycle import (
    archive_months,
    daily_backup,
    daily_integrity,
    daily_maintenance,
    hourly_backup,
    weekly_backup,
)
from mia_pipeline.defs.ml import ml_dataset
from mia_pipeline.defs.partitions import weekly_partitions
from mia_pipeline.defs.reports import battle_navale_performance, feature_importance
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.ml.bundle import week_of
from mia_pipeline.settings import defaults_if_broken

SCHEDULE_TIMEZONE = defaults_if_broken().timezone  # a broken mia.yaml: commands report it; the UI still loads

weekly_ml_dataset_job = dg.define_asset_job(
    "weekly_ml_dataset",
    selection=dg.AssetSelection.assets(ml_dataset, battle_navale_performance, feature_importance),
    executor_def=dg.in_process_executor,  # a few steps: a subprocess each would only add its start-up
    description="The week's ML dataset (features, labels, splits): the guide's `generate_ml_dataset.py --weekly`; "
                "then the week's Battle Navale performance and feature importance reports.",
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


def _every(cron: str, job, guide: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(name=f"{job.name}_schedule", cron_schedule=cron, job=job,
                                 execution_timezone=SCHEDULE_TIMEZONE, description=f"{guide} (guide crontab `{cron}`)")


hourly_backup_schedule = _every("0 * * * *", hourly_backup, "Every hour: incremental backup")
daily_backup_schedule = _every("0 2 * * *", daily_backup, "Every day 02:00: full backup")
daily_maintenance_schedule = _every("0 3 * * *", daily_maintenance, "Every day 03:00: retention, then optimise")
daily_integrity_schedule = _every("0 4 * * *", daily_integrity, "Every day 04:00: integrity check")


weekly_backup_schedule = _every("0 1 * * 0", weekly_backup, "Sunday 01:00: weekly archive backup")


@dg.schedule(cron_schedule="0 1 * * 0", job=archive_months, execution_timezone=SCHEDULE_TIMEZONE,
             description="Sunday 01:00 (guide crontab `0 1 * * 0`, archive_old_data.py): one archive run per month "
                         "holding days past archive_after_days.")
def weekly_archive_schedule(context: dg.ScheduleEvaluationContext, mia: MiaResource):
    from mia_pipeline.lifecycle.archive import archive_cutoff, archive_plan

    day = context.scheduled_execution_time.date()
    cutoff = archive_cutoff(mia.settings().archive_after_days, today=day)
    months = sorted(archive_plan(mia.layout(), cutoff))
    if not months:
        return dg.SkipReason(f"no day before {cutoff} is still in a daily folder")
    return [dg.RunRequest(run_key=f"archive-{m}-{day.isoformat()}", partition_key=f"{m}-01") for m in months]
