"""Runs on Celery workers (dagster-celery, a Redis broker): the daily datasets rebuilt day by day on
however many worker processes listen on the broker.

``daily_datasets_on_workers``: the same seven daily datasets and their checks (no Great Expectations
suite) as ``daily_datasets``, one run per day (a job backfill from the UI makes one run per partition;
the queue runs up to four at once), each run's step executed by a Celery worker. The broker and the
result backend are read from ``MIA_CELERY_BROKER`` / ``MIA_CELERY_BACKEND`` when a run starts (e.g.
``redis://127.0.0.1:6379/0``), so loading the code location needs neither. Workers: ``dagster-celery
worker start -A dagster_celery.app -y <config>`` with the data root's ``DAGSTER_HOME``, ``MIA_DATA_DIR``
and the instance's credentials (docs/deploy.md). Two runs of the same day never write it at once: the
storage layer's per-day lock serializes them.
"""

import dagster as dg
from dagster_celery import celery_executor

from mia_pipeline.defs.collection import daily_datasets
from mia_pipeline.defs.partitions import daily_partitions
from mia_pipeline.defs.recording import GX_COMPLETENESS
from mia_pipeline.layout import DATASETS

# A step's task is acknowledged when it ends, not when it starts, and a worker process killed mid-step
# hands its task back to the queue: another worker runs the step again (a day is committed atomically,
# so the killed attempt left the previous state). Workers must be started with the same settings
# (docs/deploy.md).
WORKER_SETTINGS = {"task_acks_late": True, "task_reject_on_worker_lost": True}
CELERY = celery_executor.configured(
    {"broker": {"env": "MIA_CELERY_BROKER"}, "backend": {"env": "MIA_CELERY_BACKEND"},
     "config_source": WORKER_SETTINGS},
    name="celery_from_env",
)

daily_datasets_on_workers = dg.define_asset_job(
    "daily_datasets_on_workers",
    selection=(dg.AssetSelection.assets(daily_datasets) | dg.AssetSelection.checks_for_assets(daily_datasets))
    - dg.AssetSelection.checks(*(dg.AssetCheckKey(dg.AssetKey(ds), GX_COMPLETENESS) for ds in DATASETS)),
    partitions_def=daily_partitions,
    executor_def=CELERY,
    description="The daily datasets and their checks rebuilt from raw lines, one run per day, each executed by a "
                "Celery worker (broker: MIA_CELERY_BROKER). A job backfill of N days spreads over the workers.",
)
