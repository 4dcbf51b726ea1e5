"""The alert sensors in Dagster: alert_sensor over two ticks (the second finds nothing new), and
job_failure_alert_sensor raising job_failed for a failed run, resolved once the job succeeds."""

import json
from datetime import UTC, datetime

import dagster as dg

from mia_pipeline.defs.alerts import alert_sensor, job_failure_alert_sensor
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.quality.alerts import open_alerts, read_alerts


def resource(layout, tmp_path) -> MiaResource:
    config = tmp_path / "mia.yaml"  # the test machine's disk is not under test: storage floors off
    config.write_text("monitoring:\n  storage_min_free_mb: 0\n  storage_min_free_pct: 0\n")
    return MiaResource(data_dir=str(layout.root), config_path=str(config))


def test_alert_sensor_two_ticks(layout, tmp_path):
    path = layout.metrics_file(datetime.now(UTC).date())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"day": str(datetime.now(UTC).date()), "data_quality_score": 0.5}))
    mia = resource(layout, tmp_path)
    with dg.instance_for_test() as instance:
        first = alert_sensor(dg.build_sensor_context(instance=instance, resources={"mia": mia}))
        assert isinstance(first, dg.SkipReason)
        assert "1 fired" in first.skip_message and "data_quality_low" in first.skip_message
        second = alert_sensor(dg.build_sensor_context(instance=instance, resources={"mia": mia}))
        assert "0 fired, 0 resolved, 1 open (data_quality_low)" in second.skip_message
    assert [a["name"] for a in read_alerts(layout)] == ["data_quality_low"]


@dg.op(config_schema={"fail": bool})
def maybe_fail(context):
    if context.op_config["fail"]:
        raise RuntimeError("the feed is gone")


@dg.job
def flaky_job():
    maybe_fail()


def run_flaky(instance, fail: bool):
    return flaky_job.execute_in_process(run_config={"ops": {"maybe_fail": {"config": {"fail": fail}}}},
                                        instance=instance, raise_on_error=False)


def test_a_failed_run_raises_job_failed_and_a_success_resolves_it(layout, tmp_path):
    mia = resource(layout, tmp_path)
    with dg.instance_for_test() as instance:
        failed = run_flaky(instance, fail=True)
        assert not failed.success
        context = dg.build_run_status_sensor_context(
            sensor_name="job_failure_alert_sensor", dagster_event=failed.get_run_failure_event(),
            dagster_instance=instance, dagster_run=failed.dagster_run, resources={"mia": mia},
        ).for_run_failure()
        job_failure_alert_sensor(context)
        job_failure_alert_sensor(context)  # the same run seen twice: still one alert
        (alert,) = [a for a in read_alerts(layout) if a.get("name") == "job_failed"]
        assert alert["level"] == "ERROR" and alert["state"] == "firing"
        assert "flaky_job" in alert["message"] and failed.run_id in alert["message"]
        assert alert["context"] == {"job": "flaky_job", "run_id": failed.run_id}

        assert run_flaky(instance, fail=False).success
        tick = alert_sensor(dg.build_sensor_context(instance=instance, resources={"mia": mia}))
        assert "1 resolved, 0 open" in tick.skip_message, tick.skip_message
        assert open_alerts(layout) == []
        assert [a["state"] for a in read_alerts(layout) if a.get("name") == "job_failed"] == ["firing", "resolved"]


def test_the_sensors_are_in_the_code_location():
    from mia_pipeline.definitions import defs

    for name in ("alert_sensor", "job_failure_alert_sensor"):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
