"""`mia collect start|status|stop`, `mia import`, `mia rebuild` (the guide's §5.1 commands)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import click

from mia_pipeline.cli.common import DAY, EXIT_PROBLEM, CliState, pass_state, process_seconds
from mia_pipeline.layout import DATASETS


def _symbols(state: CliState) -> frozenset[str]:
    return frozenset(state.settings.symbols)


CHECKS_EVERY_S = 300.0  # a running collector records its days' checks in Dagster at most this often (and at stop)


def _recorder(state: CliState, checks_every_s: float = 0.0):
    from mia_pipeline.cli.dagster_bridge import Recorder

    return Recorder(state.layout, checks_every_s=checks_every_s)


def _print_report(report, wall_s: float | None = None) -> None:
    landed = ", ".join(f"{k} {v:,}" for k, v in sorted(report.landed.items())) or "nothing new"
    dup = sum(report.duplicates.values())
    quarantined = ", ".join(f"{k} {v}" for k, v in sorted(report.quarantined.items())) or "none"
    took = (f"in {wall_s:.2f}s (ingestion {report.seconds:.2f}s; the rest start-up and Dagster's records and checks)"
            if wall_s is not None else f"in {report.seconds:.2f}s")
    click.echo(f"ingested {report.lines:,} line(s) from {report.files} file(s) {took}: {landed}; "
               f"duplicates dropped {dup:,}; quarantined: {quarantined}")
    for day, datasets in sorted(report.repaired.items()):
        click.echo(f"repaired {day}: {', '.join(datasets)} did not match the manifest; rebuilt from the raw lines "
                   "before merging", err=True)
    for day, why in sorted(report.damaged.items()):
        click.echo(f"NOT WRITTEN {day}: {why}; its landing lines wait ({', '.join(sorted(report.held_files))})",
                   err=True)


@click.group("collect")
def collect() -> None:
    """Live collection of the landing zone (data/live/streaming/*.jsonl)."""


MAX_INTERVAL_S = 3600.0


def _check_interval(ctx, param, value: float) -> float:
    if not math.isfinite(value) or not 0.1 <= value <= MAX_INTERVAL_S:
        raise click.BadParameter(f"{value} is not a number of seconds from 0.1 to {MAX_INTERVAL_S:g}, "
                                 "e.g. --interval 2")
    return value


def _state_problem(exc: Exception) -> NoReturn:
    """A damaged state file or a collector already running: one line, exit 1."""
    click.echo(f"Error: {exc}", err=True)
    raise SystemExit(EXIT_PROBLEM)


@collect.command("start")
@click.option("--interval", type=float, callback=_check_interval, default=2.0, show_default=True,
              help="Seconds between ingestion passes (0.1 to 3600).")
@click.option("--once", is_flag=True, help="Ingest what is pending once, then exit.")
@click.option("--detach", is_flag=True, help="Run the collector in the background (stop it with `mia collect stop`).")
@click.option("--sensor", is_flag=True, help="Instead, turn on Dagster's landing_zone_sensor (needs `make ui` or a daemon).")
@click.option("--reset-state", is_flag=True,
              help="Move a damaged data/live/collector.json or ingest_state.json aside (<name>.bad-<time>) and "
                   "start clean; re-ingesting is safe (merges are idempotent).")
@pass_state
def start(state: CliState, interval: float, once: bool, detach: bool, sensor: bool, reset_state: bool) -> None:
    """Ingest the landing zone continuously until stopped (Ctrl-C or `mia collect stop`)."""
    from mia_pipeline.collection.collector import (
        CollectorRunning,
        check_state_files,
        collector_lock,
        ingest_once,
        lock_holder,
        note_once_pass,
        reset_state_files,
        run_collector,
    )
    from mia_pipeline.collection.landing import StateFileError

    state.settings.require()  # data_collection.enabled: false -> exit 2 naming the key
    layout = state.layout
    if sensor:
        _dagster_sensor(state, True)
        return

    def say_moved(moved) -> None:
        for src, dst in moved:
            click.echo(f"moved damaged {src.name} aside to {dst}; starting clean", err=True)

    try:
        if once:
            if reset_state:
                with collector_lock(layout):
                    say_moved(reset_state_files(layout))
            check_state_files(layout)
            recorder = _recorder(state)
            report = ingest_once(layout, state.store, _symbols(state), refused_kinds=state.settings.refused_kinds())
            note_once_pass(layout, report)
            with recorder:
                recorder.ingestion(state.store, report)
                recorder.catch_up(state.store)
            _print_report(report, process_seconds())
            if report.damaged:
                raise SystemExit(EXIT_PROBLEM)
            return
        holder = lock_holder(layout)
        if holder is not None:
            raise CollectorRunning(holder)
        if not reset_state:
            check_state_files(layout)
    except (CollectorRunning, StateFileError) as exc:
        _state_problem(exc)
    if detach:
        log = layout.collector_log_file
        log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "mia_pipeline.cli.main", "--data-dir", str(layout.root)]
        if state.config:
            cmd += ["--config", state.config]
        cmd += ["collect", "start", "--interval", str(interval)] + (["--reset-state"] if reset_state else [])
        with open(log, "ab") as fh:
            logged_from = fh.tell()
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=os.environ.copy())
        _confirm_detached(layout, proc, log, logged_from)
        click.echo(f"collector started in the background (pid {proc.pid}); log: {log}")
        click.echo(_sampler_line(state.settings))
        return
    recorders = []  # opened once this process holds the collector lock: a loser never touches the instance

    def on_start(moved) -> None:
        say_moved(moved)
        recorder = _recorder(state, CHECKS_EVERY_S)
        recorders.append(recorder)
        recorder.warm()  # Dagster imported and the instance opened before the first pass, not during it
        recorder.catch_up(state.store)  # days an earlier collector stored but died before recording
        click.echo(f"collecting {layout.streaming_dir} every {interval:g}s — Ctrl-C or `mia collect stop` to stop")
        click.echo(_sampler_line(state.settings))

    def on_report(report) -> None:
        if report.lines:
            t0 = time.perf_counter() - report.seconds
            recorders[0].ingestion(state.store, report)
            _print_report(report, time.perf_counter() - t0)  # this pass: ingestion + its Dagster records

    try:
        passes = run_collector(layout, state.store, known_symbols=_symbols(state), interval=interval,
                               on_report=on_report, on_start=on_start, reset_state=reset_state,
                               refused_kinds=state.settings.refused_kinds(), settings=state.settings)
    except (CollectorRunning, StateFileError) as exc:
        _state_problem(exc)
    finally:
        for recorder in recorders:
            recorder.close()
    click.echo(f"collector stopped after {passes} pass(es)")


def _sampler_line(settings) -> str:
    """One line: is the system-metrics sampler on, and if not, why (the key named)."""
    from mia_pipeline.collection.system_sampler import FILE_PREFIX, off_reason

    if why := off_reason(settings):
        return f"system metrics sampler not started: {why}"
    return (f"system metrics: host and collector sampled every {settings.monitoring.system_metrics_interval_s}s "
            f"into {FILE_PREFIX}<day>.jsonl (performance events)")


def _sampler_status(col: dict) -> str | None:
    sm = col.get("system_metrics")
    if not isinstance(sm, dict):
        return None
    text = str(sm.get("state"))
    if text == "on" and col.get("state") != "running":
        text = "off (its collector is not running)"
    if sm.get("samples"):
        text += f", {sm['samples']} sample(s), the last at {sm.get('last_sample_at')}"
    errors = (sm.get("errors") or 0)
    if errors:
        text += f"; {errors} error(s) (of which {sm.get('write_errors') or 0} failed writes), last: {sm.get('last_error')}"
    return text


DETACH_WAIT_S = 30.0


def _confirm_detached(layout, proc: subprocess.Popen, log, logged_from: int) -> None:
    """Return once the background collector holds the collector lock; when it exits first (another
    collector won a race to the lock, or it failed), say why from its log and exit 1."""
    from mia_pipeline.collection.collector import lock_holder

    deadline = time.monotonic() + DETACH_WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log, "rb") as fh:
                fh.seek(logged_from)
                said = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
            reason = said[-1].removeprefix("Error: ") if said else f"it exited with code {proc.returncode}"
            click.echo(f"Error: the background collector did not start: {reason}", err=True)
            raise SystemExit(EXIT_PROBLEM)
        if lock_holder(layout) == proc.pid:
            return
        time.sleep(0.05)
    click.echo(f"Error: the background collector (pid {proc.pid}) has not taken the collector lock after "
               f"{DETACH_WAIT_S:g}s; see {log}", err=True)
    raise SystemExit(EXIT_PROBLEM)


def _dagster_sensor(state: CliState, running: bool) -> None:
    from mia_pipeline.cli.dagster_bridge import set_sensor

    try:
        click.echo(set_sensor(state.layout, "landing_zone_sensor", running, state.config))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        click.echo(f"Error: could not switch landing_zone_sensor: {exc}", err=True)
        raise SystemExit(EXIT_PROBLEM) from None


@collect.command("stop")
@click.option("--sensor", is_flag=True, help="Turn Dagster's landing_zone_sensor off instead.")
@pass_state
def stop(state: CliState, sensor: bool) -> None:
    """Stop a running collector (it finishes its current batch first)."""
    from mia_pipeline.collection.collector import NotACollector, stop_collector

    if sensor:
        _dagster_sensor(state, False)
        return
    try:
        click.echo(stop_collector(state.layout))
    except NotACollector as exc:
        _state_problem(exc)


@collect.command("status")
@click.option("--days", type=click.IntRange(min=1), default=10, show_default=True, help="How many recent days to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def status(state: CliState, days: int, as_json: bool) -> None:
    """Events per day, lag behind the landing zone, last event time, quarantine counts."""
    from mia_pipeline.collection.status import collection_status

    st = collection_status(state.layout, state.store, days)
    if as_json:
        click.echo(json.dumps(st, indent=2, default=str))
        return
    col = st["collector"]
    click.echo(f"collector     : {col.get('state')}" + (f" (pid {col['pid']}, last pass {col.get('last_run_at')})"
                                                         if col.get("state") == "running" else "")
               + (f"; {col['once_passes']} `--once` pass(es), the last at {col.get('last_once_at')}"
                  if col.get("once_passes") else ""))
    if (sampler := _sampler_status(col)) is not None:
        click.echo(f"system metrics: {sampler}")
    click.echo(f"landing zone  : {st['landing_files']} file(s); lag {st['lag']['pending_lines']:,} complete line(s) "
               f"({st['lag']['pending_bytes']:,} bytes) not ingested yet"
               + (f"; {sum(st['lag']['in_progress_bytes'].values())} bytes of lines being written"
                  if st["lag"]["in_progress_bytes"] else ""))
    for sk in st["skipped_files"]:
        click.echo(f"skipped       : {sk['name']}: {sk['reason']}")
    for day, why in st["damaged_days"].items():
        click.echo(f"damaged day   : {day}: {why}")
    if st["ingest_state_problem"]:
        click.echo(f"ingest state  : {st['ingest_state_problem']}")
    click.echo(f"last event    : {st['last_event_time'] or '-'}")
    click.echo("events per day:")
    names = DATASETS
    click.echo("  " + f"{'day':<12}" + "".join(f"{n:>13}" for n in names))
    for day, counts in st["events_per_day"].items():
        click.echo("  " + f"{day:<12}" + "".join(f"{counts.get(n, 0):>13,}" for n in names))
    q = st["quarantine"]
    total = sum(sum(c.values()) for c in q.values())
    click.echo(f"quarantine    : {total} line(s)")
    for day, counts in q.items():
        click.echo(f"  {day}: " + ", ".join(f"{r} {n}" for r, n in sorted(counts.items())))


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--no-ingest", is_flag=True, help="Only stage the files into the landing zone.")
@click.option("--symbol", default=None, help="Sierra files: the symbol they hold (default: from the file name, "
                                             "ESU25_FUT_CME.scid -> ES).")
@click.option("--tz", default=None, help="Sierra study exports: the chart's time zone (default: sierra.chart_timezone).")
@click.option("--timeframe", default=None, help="Sierra study exports: bar length, e.g. 1min (default: inferred).")
@pass_state
def import_(state: CliState, paths: tuple[Path, ...], no_ingest: bool, symbol: str | None, tz: str | None,
            timeframe: str | None) -> None:
    """Import JSON Lines, the guide's per-day JSON files (trades.json, signals.json, ...) or Sierra Chart
    files (.scid, .depth, .dly, "Write Bar and Study Data To File" exports), landed as typed tables."""
    # Sierra Chart files: typed Arrow tables straight into the partitions (mia_pipeline.cli.sierra).
    from mia_pipeline.sources.sierra.files import is_sierra_file

    state.settings.require()  # data_collection.enabled: false -> exit 2 naming the key
    sierra = [p for p in paths if p.is_file() and is_sierra_file(p)]
    if sierra:
        from mia_pipeline.cli.sierra import import_sierra_files

        import_sierra_files(state, sierra, symbol, tz, timeframe)
        paths = tuple(p for p in paths if p not in sierra)
        if not paths:
            return

    from mia_pipeline.collection.collector import ingest_once
    from mia_pipeline.collection.importer import ImportError_, stage_import

    landing_zone = state.layout.streaming_dir.resolve()
    for path in paths:
        if not path.exists():
            raise click.BadParameter(f"{path} does not exist", param_hint="PATHS")
        if path.resolve() == landing_zone or landing_zone in path.resolve().parents:
            raise click.BadParameter(f"{path} is in the landing zone already: `mia collect start --once` ingests it",
                                     param_hint="PATHS")
    # In a folder, only its regular files: a symlink there is never followed (name the target to import it).
    expanded = [p for f in paths
                for p in ([x for x in sorted(f.glob("*.json*")) if not x.is_symlink() and x.is_file()]
                          if f.is_dir() else [f])]
    if not expanded:
        click.echo(f"nothing to import in {', '.join(map(str, paths))}: no *.jsonl / *.json files there "
                   "(accepted: landing-zone .jsonl, or the guide's trades/signals/market_data/performance.json)",
                   err=True)
        raise SystemExit(EXIT_PROBLEM)
    for path in expanded:
        try:
            target = stage_import(state.layout, path)
        except ImportError_ as exc:
            raise click.BadParameter(str(exc), param_hint="PATHS") from None
        click.echo(f"staged {path} -> {target.name}")
    if not no_ingest:
        report = ingest_once(state.layout, state.store, _symbols(state), refused_kinds=state.settings.refused_kinds())
        with _recorder(state) as recorder:
            recorder.ingestion(state.store, report)
            recorder.catch_up(state.store)
        _print_report(report, process_seconds())
        if report.damaged:
            raise SystemExit(EXIT_PROBLEM)


@click.command("rebuild")
@click.option("--date", "day", type=DAY, required=True, help="Day to rebuild from its raw lines (YYYY-MM-DD).")
@pass_state
def rebuild(state: CliState, day) -> None:
    """Recreate one day's datasets from the raw lines kept for that day."""
    from mia_pipeline.collection.rebuild import RawLinesDamaged, RebuildError, rebuild_day

    try:
        counts = rebuild_day(state.store, day, _symbols(state))
    except RawLinesDamaged as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(EXIT_PROBLEM) from None
    except RebuildError as exc:
        raise click.BadParameter(str(exc), param_hint="--date") from None
    with _recorder(state) as recorder:
        recorder.written(state.store, {ds: [day.isoformat()] for ds in counts})
    click.echo(f"rebuilt {day}: " + (", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "no rows"))
