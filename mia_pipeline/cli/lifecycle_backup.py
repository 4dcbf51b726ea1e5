"""`mia backup --incremental|--full|--archive|--list` and `mia recover ...` (the guide's backup_data.py and
recovery_data.py). Thin: the work is in ``mia_pipeline.lifecycle``; heavy imports happen inside the commands.

Exit codes: 0 done; 1 a backup failed (also recorded as a WARNING alert in reports/alerts.jsonl), damage
was found, or a restore had nothing good to use; 2 a bad argument or setting (the message says how to fix it).
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from mia_pipeline.cli.common import (
    DAY,
    EXIT_PROBLEM,
    EXIT_USAGE,
    STORAGE_ERRNOS,
    CliState,
    human_bytes,
    pass_state,
)


def _fail(message: str, code: int = EXIT_PROBLEM) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)


def _oserror_line(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    hint = STORAGE_ERRNOS.get(exc.errno, "check the disk and its permissions")
    return f"cannot read or write{where}: {exc.strerror or exc} — {hint}"


def _alert(state: CliState, message: str, **context) -> None:
    from mia_pipeline.quality.alerts import report_alert as record_alert

    try:
        record_alert(state.layout, "WARNING", "backup", message, **context)
    except OSError as exc:  # the data root itself refuses writes: say so, the exit code still tells
        click.echo(f"warning: the alert could not be recorded ({exc.strerror or exc})", err=True)


@click.command("backup")
@click.option("--incremental", is_flag=True, help="Hourly: re-read only what changed.")
@click.option("--full", is_flag=True, help="Daily: re-read and re-verify everything.")
@click.option("--archive", is_flag=True, help="Weekly: a full backup kept as a weekly one.")
@click.option("--list", "list_", is_flag=True, help="List the backups in the target and exit.")
@pass_state
def backup(state: CliState, incremental: bool, full: bool, archive: bool, list_: bool) -> None:
    """Back up partitions, raw lines, quarantine, manifests, archive, processed datasets and the settings
    file into the backup target (backup.target, default <data>/backups; a folder, or s3://bucket/prefix
    with the server and credentials in AWS_* variables): content-addressed, verified after writing,
    rotated (backup.keep_hourly/keep_daily/keep_weekly)."""
    modes = [m for m, on in (("incremental", incremental), ("full", full), ("archive", archive)) if on]
    if len(modes) > 1:
        raise click.UsageError(f"choose one kind of backup, not {' and '.join('--' + m for m in modes)}")
    mode = modes[0] if modes else None
    if list_:
        if mode:
            raise click.UsageError("--list lists backups; it does not take --incremental/--full/--archive")
        return _list_backups(state)
    if mode is None:
        raise click.UsageError("say which backup: --incremental (hourly), --full (daily) or --archive (weekly)")
    from mia_pipeline.lifecycle.backup import BackupError, run_backup
    from mia_pipeline.lifecycle.blobstore import TargetError, TargetSetupError
    from mia_pipeline.lifecycle.sources import settings_file

    layout, settings = state.layout, state.settings
    target = str(settings.backup.target or layout.root / "backups")  # a folder or s3://bucket/prefix
    try:
        result = run_backup(layout, settings, mode, config_file=settings_file(state.config), store=state.store)
    except TargetSetupError as exc:
        _alert(state, f"backup failed: {exc}", mode=mode, target=target)
        _fail(str(exc), EXIT_USAGE)
    except (BackupError, TargetError) as exc:
        _alert(state, f"backup failed: {exc}", mode=mode, target=target)
        _fail(f"backup failed: {exc}")
    except OSError as exc:
        line = _oserror_line(exc)
        _alert(state, f"backup failed: {line}", mode=mode, target=target)
        _fail(f"backup failed: {line} (the previous backups are intact)")
    click.echo(f"backup {result.kind}/{result.id} ({result.mode}): {result.files:,} files, "
               f"{human_bytes(result.bytes)}; {result.new_blobs:,} new blob(s), {human_bytes(result.new_bytes)} "
               f"written; {result.verified_blobs:,} blob(s) re-read and verified; {result.seconds:.2f}s")
    if result.removed_backups or result.removed_blobs:
        click.echo(f"rotation removed {len(result.removed_backups)} backup(s) and {result.removed_blobs} "
                   "unreferenced blob(s)")
    if result.damaged:
        for rel, why in sorted(result.damaged.items()):
            click.echo(f"DAMAGED {rel}: {why}", err=True)
        message = (f"backup {result.kind}/{result.id} written, but {len(result.damaged)} damaged item(s) in the "
                   "data were not backed up as they are: run `mia recover --validate-and-repair`")
        _alert(state, message, mode=mode, target=target, damaged=sorted(result.damaged))
        _fail(message)


def _list_backups(state: CliState) -> None:
    from mia_pipeline.lifecycle.blobstore import TargetError
    from mia_pipeline.lifecycle.catalog import list_backups
    from mia_pipeline.lifecycle.restore import open_target

    try:
        target = open_target(state.layout, state.settings)
        with target.lock(exclusive=False):
            good, damaged = list_backups(target)
    except TargetError as exc:
        _fail(str(exc))
    click.echo(f"backup target {target.location}: {len(good)} backup(s)")
    for b in good:
        days = b.days()
        span = f"{days[0]}..{days[-1]}" if days else "no day"
        click.echo(f"  {b.kind:<6} {b.id}  {b.mode:<11} {len(b.files):>7,} files {human_bytes(b.bytes):>10}  "
                   f"days {span}" + (f"  ({len(b.damaged)} damaged item(s) not backed up)" if b.damaged else ""))
    for name, why in damaged.items():
        click.echo(f"  DAMAGED {name}: {why} (never used)")


@click.command("recover")
@click.option("--validate-and-repair", "repair", is_flag=True,
              help="Check every day against its manifest; repair from the newest good backup or the raw lines.")
@click.option("--restore-from-backup", "restore", is_flag=True, help="Restore one day (with --date).")
@click.option("--date", "day", type=DAY, help="Day to restore, YYYY-MM-DD.")
@click.option("--restore-trades", "trades", is_flag=True, help="Restore the trades listed in --trade-ids.")
@click.option("--trade-ids", type=click.Path(path_type=Path, dir_okay=False),
              help="File with one trade id per line ('#' comments allowed).")
@pass_state
def recover(state: CliState, repair: bool, restore: bool, day, trades: bool, trade_ids: Path | None) -> None:
    """Repair or restore partitions from verified backups (damaged backups are detected and skipped).
    Every restore is atomic, verified, and recorded in Dagster."""
    chosen = [name for name, on in (("--validate-and-repair", repair), ("--restore-from-backup", restore),
                                    ("--restore-trades", trades)) if on]
    if len(chosen) != 1:
        raise click.UsageError("choose one of --validate-and-repair, --restore-from-backup --date YYYY-MM-DD, "
                               "--restore-trades --trade-ids FILE" + (f" (got {' and '.join(chosen)})" if chosen else ""))
    if day is not None and not restore:
        raise click.BadParameter("--date goes with --restore-from-backup", param_hint="--date")
    if trade_ids is not None and not trades:
        raise click.BadParameter("--trade-ids goes with --restore-trades", param_hint="--trade-ids")
    if restore and day is None:
        raise click.BadParameter("--restore-from-backup needs the day, e.g. --date 2025-06-23", param_hint="--date")
    if trades and trade_ids is None:
        raise click.BadParameter("--restore-trades needs --trade-ids FILE (one id per line)", param_hint="--trade-ids")
    from mia_pipeline.lifecycle.blobstore import TargetError
    from mia_pipeline.lifecycle.restore import RestoreError, RestoreInputError

    try:
        if repair:
            written, ok = _repair(state)
        elif restore:
            written, ok = _restore(state, day.isoformat())
        else:
            written, ok = _trades(state, trade_ids)
    except RestoreInputError as exc:
        _fail(str(exc), EXIT_USAGE)
    except (RestoreError, TargetError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{_oserror_line(exc)}; nothing was half-written (restores are atomic)")
    _record(state, written)
    if not ok:
        raise SystemExit(EXIT_PROBLEM)


def _record(state: CliState, written: dict[str, list[str]]) -> None:
    """Runless materializations for the (dataset, day) partitions written, raw lines (raw_events) included."""
    from mia_pipeline.layout import DATASETS, RAW_EVENTS

    written = {ds: sorted(days) for ds, days in written.items() if ds in (*DATASETS, RAW_EVENTS) and days}
    if not written:
        return
    from mia_pipeline.cli.dagster_bridge import Recorder

    with Recorder(state.layout) as recorder:
        recorder.written(state.store, written)
        recorder.catch_up(state.store)


def _skipped(skipped: dict[str, str]) -> None:
    for name, why in sorted(skipped.items()):
        click.echo(f"skipped backup {name}: {why}", err=True)


def _repair(state: CliState) -> tuple[dict, bool]:
    from mia_pipeline.lifecycle.recover import validate_and_repair

    report = validate_and_repair(state.layout, state.settings, state.store, frozenset(state.settings.symbols))
    _skipped(report.skipped_backups)
    for day, actions in sorted(report.repaired.items()):
        for action in actions:
            click.echo(f"repaired {day}: {action}")
    for day, problems in sorted(report.unrepaired.items()):
        for problem in problems:
            click.echo(f"NOT REPAIRED {day}: {problem}", err=True)
    click.echo(f"checked {report.checked} day(s): {len(report.repaired)} repaired, {len(report.unrepaired)} "
               "not repaired")
    return report.written, not report.unrepaired


def _restore(state: CliState, day: str) -> tuple[dict, bool]:
    from mia_pipeline.lifecycle.restore import restore_day

    result = restore_day(state.layout, state.settings, state.store, day)
    _skipped(result.skipped)
    if result.datasets:
        older = {ds: src for ds, src in result.sources.items()
                 if src != result.backup_id and not src.startswith(f"{result.backup_id} +")}
        note = "".join(f"; {ds} from {src} (the newer copies are damaged)" for ds, src in sorted(older.items()))
        if result.kept_newer:
            note += (f"; {result.kept_newer} raw line(s) stored here and in no backup were kept, the day's datasets "
                     "rebuilt with them")
        if result.reread:
            note += f"; the raw lines stored here were lost with the day's manifest: {result.reread}"
        click.echo(f"restored {day} from {result.backup_id}: {', '.join(result.datasets)} (verified){note}")
    elif not result.unrestored:
        click.echo(f"{day} already matches {result.backup_id}: nothing to restore")
    if result.not_kept:
        click.echo(f"NOT KEPT {day}: {result.not_kept}", err=True)
    for ds, why in sorted(result.unrestored.items()):
        click.echo(f"NOT RESTORED {day}/{ds}: {why}; it is left as it is here", err=True)
    if result.quarantine:
        click.echo(f"restored the quarantine file of {day}")
    return {ds: [day] for ds in result.datasets}, not (result.unrestored or result.not_kept)


def _trades(state: CliState, path: Path) -> tuple[dict, bool]:
    from mia_pipeline.lifecycle.trades import read_trade_ids, restore_trades

    if not path.exists():
        raise click.BadParameter(f"{path} does not exist", param_hint="--trade-ids")
    ids = read_trade_ids(path)
    result = restore_trades(state.layout, state.settings, state.store, ids)
    for day, per in sorted(result.restored.items()):
        click.echo(f"restored into {day}: " + ", ".join(f"{ds} {n} row(s)" for ds, n in sorted(per.items())))
    click.echo(f"restored {len(ids)} trade(s) from " + ", ".join(sorted(set(result.sources.values()))))
    written: dict[str, list[str]] = {}
    for day, per in result.restored.items():
        for ds in per:
            written.setdefault(ds, []).append(day)
    return written, True
