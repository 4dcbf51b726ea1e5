"""The `mia` command's way into Dagster, through its public API only: the data root's instance,
runless records of what a command wrote, runs of the code location's jobs, and the sensor switch.

Everything here uses ``<data>/.dagster`` as the instance (whatever ``DAGSTER_HOME`` or the working
directory say), so `mia`, `make ui` and the disk agree. Dagster is imported lazily: `mia --help`
stays fast.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping

import click

from mia_pipeline.cli.common import command_line
from mia_pipeline.dagster_home import ensure_dagster_home
from mia_pipeline.layout import MARKET_DATASETS, Layout

LOCATION_NAME = "mia_pipeline"  # as in pyproject's [tool.dg.project] and workspace.yaml
DEFS_MODULE = "mia_pipeline.definitions"
CHECKS_JOB = "daily_checks"
MARKET_CHECKS_JOB = "market_data_checks"  # when only market data was written: ~1/3 of the checks


def checks_job(datasets: Iterable[str]) -> str:
    """The job that evaluates the checks a write of ``datasets`` can change: ``market_data_checks`` when
    only market data (ticks, bars, depth) was written, else ``daily_checks``."""
    return MARKET_CHECKS_JOB if set(datasets) <= set(MARKET_DATASETS) else CHECKS_JOB
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def point_code_location_at(layout: Layout, config: str | None = None) -> None:
    """The code location's resources read MIA_DATA_DIR / MIA_CONFIG at run time: point them here."""
    os.environ["MIA_DATA_DIR"] = str(layout.root)
    if config:
        os.environ["MIA_CONFIG"] = str(config)


def open_instance(layout: Layout):
    import dagster as dg

    return dg.DagsterInstance.from_config(str(ensure_dagster_home(layout)))


def code_location_defs():
    """The code location's Definitions (what `make ui` loads), loaded in this process."""
    from mia_pipeline.definitions import defs

    return defs


GLOBAL_OPTIONS = re.compile(r"\s--(?:data-dir|config)(?:=|\s+)\S+")


def command_tags(command: str) -> dict[str, str]:
    """Tags naming the command without its global options (asset-event tags allow only ``[A-Za-z0-9_.-]``,
    <= 63 characters): ``mia collect start --once`` -> ``mia_collect_start_--once``."""
    short = GLOBAL_OPTIONS.sub("", command)
    return {"mia/command": re.sub(r"[^A-Za-z0-9_.-]+", "_", short).strip("_")[:63], "mia/writer": "cli"}


def partition_tags(days: list[str]) -> dict[str, str]:
    """Run tags selecting one day or the closed range first..last of ``days`` (a single-run backfill)."""
    days = sorted(days)
    if len(days) == 1:
        return {"dagster/partition": days[0]}
    return {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}


def contiguous_spans(days: Iterable[str]) -> list[list[str]]:
    """Sorted ISO days cut into runs of consecutive days: a range run over ``days`` covers exactly them.

    >>> contiguous_spans(["2025-06-24", "2026-12-04", "2025-06-23"])
    [['2025-06-23', '2025-06-24'], ['2026-12-04']]
    """
    from datetime import date, timedelta

    spans: list[list[str]] = []
    for day in sorted(set(days)):
        if spans and date.fromisoformat(spans[-1][-1]) + timedelta(days=1) == date.fromisoformat(day):
            spans[-1].append(day)
        else:
            spans.append([day])
    return spans


def _with(event, tags: Mapping[str, str], extra: Mapping):
    """A materialization of the command's own (landing_zone, live_session, paper_trading_events), tagged."""
    import dagster as dg

    return dg.AssetMaterialization(asset_key=event.asset_key, partition=event.partition,
                                   metadata={**event.metadata, **extra}, description=event.description,
                                   tags={**(event.tags or {}), **tags})


class Recorder:
    """Records what a command wrote in the data root's instance.

    - Each (asset, day) written is a runless materialization (``report_runless_asset_event``) carrying
      that day's own figures, tagged with the command (``mia/command``).
    - The checks of the days written are evaluated by a run of the code location's ``daily_checks`` job
      (``market_data_checks`` when only market data was written; in this process, tagged with the command): Dagster's storage keeps a single runless evaluation per
      (check, partition) (its unique index on run id and partition), so a second runless evaluation of
      today's checks would fail; a run records each evaluation like any backfill. A collector batches
      them: at most one run every ``checks_every_s`` seconds, and one when it stops.

    A failure to record never loses data (it is already durable): it is reported on stderr in one line,
    and the next write of the same days records them again.
    """

    def __init__(self, layout: Layout, command: str | None = None, *, checks_every_s: float = 0.0):
        self.layout = layout
        self.command = (command or command_line())[:500]
        self.checks_every_s = checks_every_s
        self._instance = None
        self._warming: threading.Thread | None = None
        self._pending: dict[str, set[str]] = {}  # dataset -> days whose checks are not recorded yet
        self._last_checks = time.monotonic()

    def warm(self) -> None:
        """Import Dagster, load the code location and open the instance now, so a long-running writer's
        first record does not delay its first pass (a collector calls this before it starts)."""
        code_location_defs()
        self._open()

    def warm_in_background(self) -> None:
        """:meth:`warm` on a thread while the command does its work (the work is mostly Arrow and Parquet,
        which release the GIL): the record that follows starts with Dagster loaded. A failure there is
        left for the record itself to meet and report."""
        def warm():
            try:
                self.warm()
            except Exception:  # noqa: BLE001 - reported by the record that follows, in one line
                pass

        self._warming = threading.Thread(target=warm, name="dagster-warm", daemon=True)
        self._warming.start()

    def _wait_warm(self) -> None:
        if self._warming is not None and self._warming is not threading.current_thread():
            self._warming.join()
            self._warming = None

    def _open(self):
        self._wait_warm()
        if self._instance is None:
            point_code_location_at(self.layout)
            self._instance = open_instance(self.layout)
        return self._instance

    def _record(self, record) -> None:
        """Run ``record(emit, instance)`` (which emits the events of a write), each event reported runless
        and tagged with the command; then queue the checks of the (dataset, day) pairs it returns."""
        try:
            instance = self._open()
            tags, extra = command_tags(self.command), {"written_by": self.command}
            done = record(instance.report_runless_asset_event, instance, tags, extra)
        except Exception as exc:  # the data is stored; only Dagster's view of it is late
            click.echo(f"warning: stored, but not recorded in Dagster ({type(exc).__name__}: {exc}); "
                       "the next write of the same days records them again", err=True)
            return
        for ds, day in done:
            self._pending.setdefault(ds, set()).add(day)
        if time.monotonic() - self._last_checks >= self.checks_every_s:
            self.record_checks()

    def _written(self, store, written: Mapping[str, Iterable[str]], before=(), after=()) -> None:
        from mia_pipeline.defs.recording import record_events

        def record(emit, instance, tags, extra):
            for event in before:
                emit(_with(event, tags, extra))
            done = record_events(emit, instance, store, written, tags=tags, extra=extra)
            for event in after:
                emit(_with(event, tags, extra))
            return done

        self._record(record)

    def ingestion(self, store, report) -> None:
        """After an ingestion pass that read lines: landing_zone, raw_events and the datasets of each day
        written, live_session; then (see ``checks_every_s``) their checks."""
        if not report.lines:
            return
        import dagster as dg

        from mia_pipeline.defs.collection import ingestion_written, landing_metadata, live_session_event

        self._written(store, ingestion_written(report),
                      before=[dg.AssetMaterialization(asset_key="landing_zone", metadata=landing_metadata(report, self.layout))],
                      after=[live_session_event(self.layout, report.live_views)])

    def written(self, store, written: Mapping[str, Iterable[str]]) -> None:
        """After a direct write of (dataset or raw_events, day) partitions (an import, a rebuild, a restore)."""
        self._written(store, written)

    def catch_up(self, store) -> None:
        """Record the (dataset, day) partitions on disk that Dagster has not heard of (a writer died
        between committing them and recording them); nothing is recorded when all agree."""
        from mia_pipeline.defs.recording import record_events, unrecorded

        def record(emit, instance, tags, extra):
            missing = unrecorded(instance, store)
            if missing:
                click.echo("recording in Dagster what an earlier writer stored but did not record: "
                           + "; ".join(f"{ds} {', '.join(days[:5])}{' ...' if len(days) > 5 else ''}"
                                       for ds, days in missing.items()), err=True)
            return record_events(emit, instance, store, missing, tags=tags, extra=extra)

        self._record(record)

    def paper_trading(self, summary) -> None:
        """After `mia simulate` wrote days into the landing zone: one paper_trading_events partition per day."""
        from mia_pipeline.defs.sources import paper_trading_events_recorded

        def record(emit, instance, tags, extra):
            for event in paper_trading_events_recorded(self.layout.streaming_dir, summary):
                emit(_with(event, tags, extra))
            return []

        self._record(record)

    def record_checks(self) -> bool:
        """Evaluate and record the checks of the days written since the last time (one ``daily_checks`` run
        per range of consecutive days: days far apart, e.g. an imported old day and today's system
        metrics, never run the checks of every day between); print each failure. False when a check
        failed or a run could not be made."""
        self._last_checks = time.monotonic()
        days = sorted({d for ds_days in self._pending.values() for d in ds_days})
        if not days:
            return True
        job_name = checks_job(ds for ds, ds_days in self._pending.items() if ds_days)
        from mia_pipeline.defs.recording import failed_checks

        metrics = self._metrics_in_background(days)  # computed while the checks run (DuckDB releases the GIL)
        ok = True
        for span in contiguous_spans(days):
            try:
                job = code_location_defs().resolve_job_def(job_name)
                result = job.execute_in_process(instance=self._open(), run_config=QUIET, raise_on_error=False,
                                                tags={**command_tags(self.command), **partition_tags(span)})
            except Exception as exc:
                click.echo(f"warning: stored, but the checks of {span[0]}..{span[-1]} were not recorded in Dagster "
                           f"({type(exc).__name__}: {exc})", err=True)
                metrics.exception()  # waited for: the figures are on disk; recorded with the next write's checks
                return False  # the days not recorded stay pending
            for ds_days in self._pending.values():
                ds_days.difference_update(span)
            failures = failed_checks(result.get_asset_check_evaluations())
            for line in failures:
                click.echo(f"check failed: {line}", err=True)
            ok = ok and result.success and not failures
        self._pending.clear()
        self._record_metrics(days, metrics)
        return ok

    def _metrics_in_background(self, days: list[str]):
        """A future of the days' ``collection_metrics`` materializations (figures computed and stored)."""
        from concurrent.futures import ThreadPoolExecutor

        from mia_pipeline.defs.quality import metrics_materialization
        from mia_pipeline.storage import partition_store

        store = partition_store(self.layout)
        pool = ThreadPoolExecutor(max_workers=1)
        future = pool.submit(lambda: [metrics_materialization(self.layout, store, day) for day in days])
        pool.shutdown(wait=False)  # the task runs on; its result is awaited where it is recorded
        return future

    def _record_metrics(self, days: list[str], metrics) -> None:
        """Record each written day's ``collection_metrics`` partition runless (the same figures as the
        asset's own runs, recomputed from what is stored)."""
        tags, extra = command_tags(self.command), {"written_by": self.command}
        try:
            instance = self._open()
            for event in metrics.result():
                instance.report_runless_asset_event(_with(event, tags, extra))
        except Exception as exc:  # the data is stored; the figures are recomputed at the next write
            click.echo(f"warning: the collection metrics of {days[0]}..{days[-1]} were not recorded "
                       f"({type(exc).__name__}: {exc})", err=True)

    def close(self) -> None:
        """Record the checks still pending, then release the instance."""
        self._wait_warm()
        if self._instance is None:
            return
        try:
            self.record_checks()
        finally:
            self._instance.dispose()
            self._instance = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def record_data_tree(layout: Layout, created: int) -> None:
    """A runless materialization of ``data_tree`` (what `mia init` just made), so the assets that depend on
    the tree are not shown Unsynced for a tree Dagster never heard of."""
    import dagster as dg

    try:
        with open_instance(layout) as instance:
            instance.report_runless_asset_event(dg.AssetMaterialization(
                asset_key="data_tree", tags=command_tags(command_line()),
                metadata={"path": dg.MetadataValue.path(str(layout.root)), "created_dirs": created,
                          "written_by": command_line()}))
    except Exception as exc:  # the tree exists; only Dagster's view of it is late
        click.echo(f"warning: data tree made, but not recorded in Dagster ({type(exc).__name__}: {exc})", err=True)


def run_job(instance, job, *, partition_key: str | None = None, tags: Mapping[str, str] | None = None,
            run_config: Mapping | None = None, asset_selection=None):
    """Run ``job`` (a job of the code location) to completion in this process, in ``instance``; the result
    (``run_id``, ``success``, events). Failures are in the result, not raised."""
    return job.execute_in_process(instance=instance, partition_key=partition_key, raise_on_error=False,
                                  run_config=dict(run_config or {}), tags=dict(tags or {}),
                                  asset_selection=asset_selection)


def set_sensor(layout: Layout, name: str, running: bool, config: str | None = None) -> str:
    """Turn a sensor of the code location on or off in the data root's instance (Dagster's own
    ``dagster sensor start|stop``); returns what happened. Raises RuntimeError with Dagster's reason."""
    env = {**os.environ, "DAGSTER_HOME": str(ensure_dagster_home(layout)), "MIA_DATA_DIR": str(layout.root)}  # + workspace
    if config:
        env["MIA_CONFIG"] = str(config)
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    cmd = [dagster, "sensor", "start" if running else "stop", name, "-w", str(layout.dagster_dir / "workspace.yaml")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).strip().splitlines() if ln.strip()]
        raise RuntimeError(lines[-1] if lines else f"`dagster sensor` exited {done.returncode}")
    state = "running" if running else "stopped"
    hint = (" — it ticks while `make ui` (or dagster-daemon) runs with this data root" if running else "")
    return f"{name} {state} in the instance at {layout.dagster_dir}{hint}"
