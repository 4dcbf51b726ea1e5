"""Alert sensors: the monitoring rules every minute, and one alert per failed run.

Thin wrappers over ``mia_pipeline.quality.alerts`` (the same engine ``mia health`` reads): alerts go to
data/reports/alerts.jsonl and the optional webhook; open incidents live in data/reports/alert_state.json.
"""

import dagster as dg

from mia_pipeline.defs.resources import MiaResource

JOB_FAILED = "job_failed"


def _resolve_recovered_jobs(context: dg.SensorEvaluationContext, layout) -> list[dict]:
    """Close each open job_failed incident whose job has succeeded since it failed."""
    from datetime import datetime

    from mia_pipeline.quality.alerts import open_alerts, resolve_incident

    resolved = []
    for incident in open_alerts(layout):
        job = (incident.get("context") or {}).get("job")
        if incident.get("name") != JOB_FAILED or not job:
            continue
        records = context.instance.get_run_records(
            filters=dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1)
        opened = datetime.fromisoformat(incident["opened_at"]).timestamp()
        if records and (records[0].end_time or 0) > opened:
            run_id = records[0].dagster_run.run_id
            event = resolve_incident(layout, JOB_FAILED, f"job {job} succeeded (run {run_id})",
                                     key=incident.get("key"), job=job, run_id=run_id)
            if event:
                resolved.append(event)
    return resolved


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def alert_sensor(context: dg.SensorEvaluationContext, mia: MiaResource):
    """Evaluate the alert rules once a minute: collection_stopped (no events landed for
    monitoring.collection_stopped_minutes while the CME market is open), data_quality_low (today's
    collection_metrics score below monitoring.quality_min), storage_full (data or backup volume below the
    free-space floor), backup_failed (closed by a later clean backup) and job_failed (closed when the job
    next succeeds). One alert per incident, one ``resolved`` when it clears; delivered to
    data/reports/alerts.jsonl and the optional webhook. Requests no run: the tick says what it found."""
    from mia_pipeline.quality.alerts import evaluate_alerts

    layout, settings = mia.layout(), mia.settings()
    evaluation = evaluate_alerts(layout, settings)
    if recovered := _resolve_recovered_jobs(context, layout):
        from mia_pipeline.quality.alerts import deliver_outbox, open_alerts

        evaluation.resolved += recovered
        evaluation.open = open_alerts(layout)
        deliver_outbox(layout, settings, evaluation.notes)
    for event in evaluation.fired:
        context.log.warning(f"alert {event['name']} ({event['level']}): {event['message']}")
    for event in evaluation.resolved:
        context.log.info(f"resolved {event['name']}: {event['message']}")
    return dg.SkipReason(evaluation.summary())


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30)
def job_failure_alert_sensor(context: dg.RunFailureSensorContext, mia: MiaResource):
    """Raise a job_failed ERROR alert for every failed run (incident keyed by run id, naming the job,
    the run and the first failure message); alert_sensor resolves it once the same job succeeds."""
    from mia_pipeline.quality.alerts import raise_incident

    run = context.dagster_run
    why = context.failure_event.message if context.failure_event else "the run failed"
    settings = mia.settings()
    raise_incident(mia.layout(), JOB_FAILED, f"job {run.job_name} failed (run {run.run_id}): {why}",
                   key=run.run_id, source="dagster", settings=settings, job=run.job_name, run_id=run.run_id)
