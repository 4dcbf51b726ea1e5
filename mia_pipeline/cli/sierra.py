"""Sierra Chart at the command line: `mia import` of Sierra files, `mia record sierra`, the Sierra line of
`mia sources test`. Thin: the work is in ``mia_pipeline.sources.sierra`` (imported inside the functions).

- :func:`import_sierra_files` — called by `mia import` for ``.scid/.depth/.dly/.txt/.csv`` paths;
- :data:`record_sierra` — ``mia record sierra --data-dir DIR``: tails the configured files into the
  daily partitions until Ctrl-C (``--once``: one pass);
- :func:`sierra_source_check` — ``(ok, line)`` for `mia sources test`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import click

from mia_pipeline.cli.common import EXIT_PROBLEM, CliState, pass_state


def _written(report) -> dict[str, list[str]]:
    from mia_pipeline.layout import DATASETS, RAW_EVENTS

    return {ds: sorted(days) for ds, days in report.days.items() if ds in (*DATASETS, RAW_EVENTS) and days}


def _record(recorder, state: CliState, report) -> None:
    """Dagster hears of the partitions written; a dataset stored for the first time gets its DuckDB view."""
    written = _written(report)
    if not written:
        return
    recorder.written(state.store, written)
    import duckdb

    from mia_pipeline.storage.warehouse import ensure_views

    try:
        ensure_views(state.layout, written)
    except (duckdb.Error, OSError) as exc:  # the data is stored; the view comes with the next refresh
        click.echo(f"warning: stored, but the DuckDB views were not refreshed ({type(exc).__name__}: "
                   f"{str(exc).splitlines()[0]}); `mia init` refreshes them", err=True)


def _summary(report) -> str:
    landed = ", ".join(f"{k} {v:,}" for k, v in sorted(report.landed.items()) if v) or "nothing new"
    dup = sum(report.duplicates.values())
    quarantined = ", ".join(f"{k} {v}" for k, v in sorted(report.quarantined.items())) or "none"
    return f"{landed}; duplicates dropped {dup:,}; quarantined: {quarantined}"


def import_sierra_files(state: CliState, paths: list[Path], symbol: str | None, tz: str | None,
                        timeframe: str | None) -> None:
    """Land the Sierra files: ``.scid`` and ``.depth`` together, day by day (each UTC day of every file in
    one commit, streamed), then each other file. Every file is checked whole before anything is
    written: an unreadable one is exit 2 naming it, with nothing of that group written. Dagster is
    loaded in the background meanwhile, for the record that follows."""
    from mia_pipeline.cli.dagster_bridge import Recorder
    from mia_pipeline.sources.sierra import SierraFileError
    from mia_pipeline.sources.sierra.files import import_file, record_sources
    from mia_pipeline.sources.sierra.ingest import land_files
    from mia_pipeline.sources.sierra.landing import merge_reports

    settings = state.settings
    settings.require("sierra_chart_data")  # off -> exit 2 naming the key
    tz = tz or settings.sierra.chart_timezone
    known = frozenset(settings.symbols)
    records = [p for p in paths if p.suffix.lower() in (".scid", ".depth")]
    others = [p for p in paths if p not in records]
    reports = []
    with Recorder(state.layout) as recorder:
        recorder.warm_in_background()
        try:
            if records:
                landed = land_files(state.layout, state.store, record_sources(records, symbol), known_symbols=known)
                reports.append(landed[0].report)
                names = ", ".join(str(p) for p in records)
                click.echo(f"imported {names}: {_summary(landed[0].report)}")
                _report_day_problems(landed[0].report, symbol)
            for path in others:
                landed = import_file(state.layout, state.store, path, symbol=symbol, tz=tz, timeframe=timeframe,
                                     known_symbols=known)
                reports.append(landed.report)
                click.echo(f"imported {path}: {_summary(landed.report)}")
                _report_day_problems(landed.report, symbol)
        except SierraFileError as exc:
            _record(recorder, state, merge_reports(reports))
            group = Path(exc.path).suffix.lower() in (".scid", ".depth") and len(records) > 1 and not reports
            what = (f"none of the {len(records)} .scid/.depth files was imported (each is checked before any day "
                    "is written)" if group else "nothing was imported from it")
            raise click.BadParameter(f"{exc}; {what}", param_hint="PATHS") from None
        except ValueError as exc:
            _record(recorder, state, merge_reports(reports))
            raise click.BadParameter(str(exc), param_hint="PATHS") from None
        total = merge_reports(reports)
        _record(recorder, state, total)
    if total.damaged:
        raise SystemExit(EXIT_PROBLEM)


def _report_day_problems(report, symbol: str | None) -> None:
    if report.quarantined.get("unknown_symbol"):
        click.echo(f"  symbol {symbol or '(from the file name)'} is not in `symbols` of the settings: rows went "
                   "to quarantine; add it to mia.yaml or pass --symbol", err=True)
    for day, why in sorted(report.damaged.items()):
        click.echo(f"NOT WRITTEN {day}: {why}", err=True)


def sierra_source_check(settings) -> tuple[bool, str]:
    """The Sierra line of `mia sources test`: (ok, one line per symbol after the first)."""
    if not settings.sources.sierra_chart_data:
        return True, "Sierra off (data_collection.sources.sierra_chart_data)"
    from mia_pipeline.sources.sierra.status import sierra_status

    if not settings.sierra.data_dir:  # not configured: nothing to be down (the guide's default install)
        return True, ("Sierra not configured (set sierra.data_dir in mia.yaml to Sierra Chart's Data folder, or "
                      "data_collection.sources.sierra_chart_data: false)")
    check = sierra_status(settings.sierra)
    if not check.files:
        return check.ok, check.message
    head = "Sierra " + ("ok" if check.ok else "PROBLEM") + f" ({settings.sierra.data_dir})"
    return check.ok, "\n".join([head] + [f"  {s.line()}" for s in check.files])


def _positive(ctx, param, value):
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise click.BadParameter(f"{value} is not a positive number of seconds, e.g. {param.opts[0]} 2")
    return value


@click.command("sierra")
@click.option("--data-dir", "sierra_dir", type=click.Path(path_type=Path), default=None,
              help="Sierra Chart's Data folder (default: sierra.data_dir of the settings).")
@click.option("--interval", type=float, callback=_positive, default=2.0, show_default=True,
              help="Seconds between passes over the files.")
@click.option("--duration", type=float, callback=_positive, default=None,
              help="Stop after this many seconds (default: until Ctrl-C).")
@click.option("--once", is_flag=True, help="Land what the files gained once, then exit.")
@pass_state
def record_sierra(state: CliState, sierra_dir: Path | None, interval: float, duration: float | None,
                  once: bool) -> None:
    """Tail Sierra Chart's .scid/.depth files into the daily partitions (ticks, 1/5/15-min order-flow bars,
    market depth), each file from its record-count cursor in data/live/sierra_tail.json."""
    from mia_pipeline.cli.dagster_bridge import Recorder
    from mia_pipeline.sources.sierra.files import configured_files
    from mia_pipeline.sources.sierra.tail import SierraTail

    settings = state.settings
    settings.require("sierra_chart_data")  # off -> exit 2 naming the key
    sierra = settings.sierra.model_copy(update={"data_dir": str(sierra_dir)}) if sierra_dir else settings.sierra
    if not sierra.data_dir:
        raise click.BadParameter("no Sierra data folder: pass --data-dir (e.g. C:/SierraChart/Data) or set "
                                 "sierra.data_dir in mia.yaml", param_hint="--data-dir")
    if not Path(sierra.data_dir).expanduser().is_dir():
        raise click.BadParameter(f"{sierra.data_dir} is not a folder: point it at Sierra Chart's Data folder",
                                 param_hint="--data-dir")
    files = configured_files(sierra)
    if not files:
        raise click.BadParameter(f"no .scid files in {sierra.data_dir} (or none of sierra.files there)",
                                 param_hint="--data-dir")
    tail = SierraTail(state.layout, state.store, files, known_symbols=frozenset(settings.symbols),
                      profile=sierra.volume_profile)
    click.echo("recording " + ", ".join(f"{f.symbol} ({f.scid.name}{f' + {len(f.depth)} .depth' if f.depth else ''})"
                                        for f in files), err=True)
    stop_at = None if duration is None else time.monotonic() + duration
    try:
        while True:
            done = tail.poll()
            for key, why in done.errors.items():
                click.echo(f"skipped {key}: {why}", err=True)
            for key in done.rewritten:
                click.echo(f"{key} was rewritten by Sierra: read again from its start", err=True)
            if done.records:
                with Recorder(state.layout) as recorder:
                    _record(recorder, state, done.report)
                click.echo(f"{sum(done.records.values()):,} new record(s): {_summary(done.report)}")
            if once or (stop_at is not None and time.monotonic() >= stop_at):
                break
            time.sleep(interval if stop_at is None else max(0.0, min(interval, stop_at - time.monotonic())))
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    if once and done.errors:
        raise SystemExit(EXIT_PROBLEM)
