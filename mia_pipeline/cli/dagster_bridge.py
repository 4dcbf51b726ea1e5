"""The `mia` command's way into Dagster: the data root's instance, runless records of what a command
wrote, runs of the code location's named jobs, and the sensor switch.

Everything here uses ``<data>/.dagster`` as the instance (whatever ``DAGSTER_HOME`` or the working
directory say), so `mia`, `make ui` and the disk agree. Dagster is imported lazily: `mia --help`
stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextlib import contextmanager

import click

from mia_pipeline.dagster_home import ensure_dagster_home
from mia_pipeline.layout import Layout

LOCATION_NAME = "mia_pipeline"  # as in pyproject's [tool.dg.project] and workspace.yaml
CLI_JOB = "mia_cli"  # the job name of the runs that record what a `mia` command wrote
DEFS_MODULE = "mia_pipeline.definitions"


def point_code_location_at(layout: Layout, config: str | None = None) -> None:
    """The code location's resources read MIA_DATA_DIR / MIA_CONFIG at run time: point them here."""
    os.environ["MIA_DATA_DIR"] = str(layout.root)
    if config:
        os.environ["MIA_CONFIG"] = str(config)


def open_instance(layout: Layout):
    import dagster as dg

    return dg.DagsterInstance.from_config(str(ensure_dagster_home(layout)))


class Recorder:
    """Records what a command wrote in the data root's instance, as events of one run per command.

    The run (job ``mia_cli``, tagged with the command) is a record, not an execution: it is created
    on first use and holds every materialization and check evaluation the command reports, so the
    UI links each of them to "what wrote this". One run per process, not per write: Dagster keeps
    one check execution per (check, partition, run), so a collector that writes today's partition
    every pass updates that day's evaluation in place. A failure to record never loses data (it is
    already durable): it is reported on stderr in one line.
    """

    def __init__(self, layout: Layout, command: str | None = None):
        self.layout = layout
        self.command = command or _command_line()
        self._instance = None
        self._run_id: str | None = None

    def warm(self) -> None:
        """Import Dagster and open the instance now, so a long-running writer's first record does
        not delay its first pass (a collector calls this before it starts)."""
        import mia_pipeline.defs.collection  # noqa: F401  (what recording imports, once)

        if self._instance is None:
            self._instance = open_instance(self.layout)

    def _emitter(self):
        import dagster as dg
        from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
        from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, make_new_run_id

        if self._instance is None:
            self._instance = open_instance(self.layout)
        instance = self._instance

        def emit(event) -> None:
            if self._run_id is None:  # the command's run exists once it has something to record
                self._run_id = make_new_run_id()
                instance.add_run(DagsterRun(job_name=CLI_JOB, run_id=self._run_id,
                                            status=DagsterRunStatus.NOT_STARTED,
                                            tags={"mia/command": self.command, "mia/writer": "cli"}))
                self._job_event(DagsterEventType.RUN_START, f"{self.command}: recording what it writes")
            if isinstance(event, dg.AssetMaterialization):
                kind, data = DagsterEventType.ASSET_MATERIALIZATION, StepMaterializationData(event)
            elif isinstance(event, dg.AssetCheckEvaluation):
                kind, data = DagsterEventType.ASSET_CHECK_EVALUATION, event
            else:
                raise TypeError(f"cannot record {type(event).__name__}")
            instance.report_dagster_event(
                DagsterEvent(event_type_value=kind.value, event_specific_data=data, job_name=CLI_JOB),
                run_id=self._run_id)

        return instance, emit

    def _emit_all(self, record) -> None:
        try:
            instance, emit = self._emitter()
            evaluations = record(instance, emit)
        except Exception as exc:  # the data is stored; only Dagster's view of it is late
            click.echo(f"warning: stored, but not recorded in Dagster ({type(exc).__name__}: {exc}); "
                       "the next write of the same days records them again", err=True)
            return
        from mia_pipeline.defs.recording import failed_checks

        for line in failed_checks(evaluations or []):
            click.echo(f"check failed: {line}", err=True)

    def ingestion(self, store, report) -> None:
        """After an ingestion pass that read lines: landing_zone, each (dataset, day) written, live_session."""
        if not report.lines:
            return
        from mia_pipeline.defs.collection import record_ingestion

        self._emit_all(lambda inst, emit: record_ingestion(emit, inst, self.layout, store, report, landing_event=True))

    def written(self, store, written: Mapping[str, Iterable[str]]) -> None:
        """After a direct write of (dataset, day) partitions (e.g. a rebuild)."""
        from mia_pipeline.defs.recording import record_written

        self._emit_all(lambda inst, emit: record_written(emit, inst, store, written))

    def catch_up(self, store) -> None:
        """Record the (dataset, day) partitions on disk that Dagster has not heard of (a writer died
        between committing them and recording them); nothing is recorded when all agree."""
        from mia_pipeline.defs.recording import record_written, unrecorded

        def record(instance, emit):
            missing = unrecorded(instance, store)
            if missing:
                click.echo("recording in Dagster what an earlier writer stored but did not record: "
                           + "; ".join(f"{ds} {', '.join(days[:5])}{' ...' if len(days) > 5 else ''}"
                                       for ds, days in missing.items()), err=True)
                return record_written(emit, instance, store, missing)
            return []

        self._emit_all(record)

    def paper_trading(self, summary) -> None:
        """After `mia simulate` wrote days into the landing zone: one paper_trading_events partition per day."""
        from mia_pipeline.defs.sources import paper_trading_events_recorded

        events = paper_trading_events_recorded(self.layout.streaming_dir, summary)

        def record(instance, emit) -> None:
            for event in events:
                emit(event)

        self._emit_all(record)

    def _job_event(self, kind, message: str) -> None:
        from dagster._core.events import DagsterEvent

        self._instance.report_dagster_event(DagsterEvent(event_type_value=kind.value, job_name=CLI_JOB,
                                                         message=message), run_id=self._run_id)

    def close(self) -> None:
        """End the command's run (success: its data is stored) and release the instance."""
        if self._instance is None:
            return
        try:
            if self._run_id is not None:
                from dagster._core.events import DagsterEventType

                self._job_event(DagsterEventType.RUN_SUCCESS, f"{self.command}: done")
        except Exception as exc:
            click.echo(f"warning: could not close the Dagster record of this command ({exc})", err=True)
        finally:
            self._instance.dispose()
            self._instance = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _command_line() -> str:
    import sys

    return "mia " + " ".join(sys.argv[1:])[:200]


@contextmanager
def code_location(instance):
    """The code location loaded in this process, named as `make ui` names it (so runs can be re-executed there)."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name=DEFS_MODULE, working_directory=os.getcwd()), location_name=LOCATION_NAME)
    with origin.create_location(instance) as location:
        yield location, next(iter(location.get_repositories().values()))


def run_job(instance, location, repo, job_name: str, *, partition_key: str | None = None,
            tags: Mapping[str, str] | None = None, run_config: Mapping | None = None) -> tuple[str, bool]:
    """Run a named job of the code location to completion in this process; (run id, success).

    The run carries the code location's origin, so the UI lists it under the job and can re-execute it.
    """
    from dagster._core.execution.api import execute_run
    from dagster._utils.hosted_user_process import recon_job_from_origin

    remote_job = repo.get_full_job(job_name)
    recon = recon_job_from_origin(remote_job.get_python_origin())
    all_tags = dict(tags or {})
    if partition_key is not None:
        job_def = recon.get_definition()
        all_tags |= job_def.get_tags_for_partition_key(partition_key, selected_asset_keys=None)
    plan = location.get_execution_plan(remote_job, dict(run_config or {}), step_keys_to_execute=None,
                                       known_state=None, instance=instance)
    run = instance.create_run(
        job_name=job_name, run_id=None, run_config=dict(run_config or {}), resolved_op_selection=None,
        step_keys_to_execute=None, op_selection=None, status=None, root_run_id=None, parent_run_id=None,
        tags=all_tags, job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot, parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(), job_code_origin=remote_job.get_python_origin(),
        asset_selection=None, asset_check_selection=None, asset_graph=repo.asset_graph,
    )
    result = execute_run(recon, run, instance)
    return run.run_id, result.success


def set_sensor(layout: Layout, name: str, running: bool) -> str:
    """Turn a sensor of the code location on or off in the data root's instance; returns what happened."""
    with open_instance(layout) as instance, code_location(instance) as (_, repo):
        sensor = repo.get_sensor(name)
        if running:
            instance.start_sensor(sensor)
        else:
            instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)
    state = "running" if running else "stopped"
    hint = (" — it ticks while `make ui` (or dagster-daemon) runs with this data root" if running else "")
    return f"{name} {state} in the instance at {layout.dagster_dir}{hint}"
