"""`mia archive`, `mia cleanup`, `mia optimize` (the guide's archive_old_data.py, cleanup_data.py,
optimize_storage.py). Thin: the work is in ``mia_pipeline.lifecycle``; heavy imports stay inside the
commands (see cli/common.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from mia_pipeline.cli.common import DAY, EXIT_PROBLEM, CliState, check_day_range, human_bytes, pass_state


def _today():
    return datetime.now(UTC).date()


@click.command("archive")
@click.option("--before", type=DAY, help="Archive the days before this one (default: today minus "
              "archive_after_days).")
@click.option("--dry-run", is_flag=True, help="List what would be archived; change nothing.")
@pass_state
def archive(state: CliState, before, dry_run: bool) -> None:
    """Compact old day folders into monthly archive files (verified before the days are removed)."""
    if before is not None:
        check_day_range(before, "--before", "--before")
        if before > _today() + timedelta(days=1):
            raise click.BadParameter(f"{before} is in the future: days still being collected are not archived "
                                     "(use a day up to tomorrow, or leave --before out)", param_hint="--before")
    from mia_pipeline.lifecycle.archive import archive as run
    from mia_pipeline.lifecycle.archive import archive_cutoff

    layout, store = state.layout, state.store
    cutoff = before or archive_cutoff(state.settings.archive_after_days, _today())
    reports = run(layout, store, cutoff, dry_run=dry_run)
    verb = "would archive" if dry_run else "archived"
    for r in reports:
        size = f"{human_bytes(r.bytes_daily)} of daily files"
        if not dry_run:
            size += f" -> month files {human_bytes(r.bytes_month)}"
        click.echo(f"{r.month}: {verb} {len(r.days)} day(s) {', '.join(r.days) or '-'} ({size})"
                   + (f"; removed {len(r.removed)} day folder(s)" if r.removed else ""))
    total = sum(len(r.days) for r in reports)
    click.echo(f"{verb} {total} day(s) before {cutoff} in {len(reports)} month(s)")


@click.command("cleanup")
@click.option("--older-than", "older_than", required=True, metavar="AGE",
              help="Delete what is older than AGE days, e.g. 365d.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; change nothing.")
@click.option("--force", is_flag=True, help="Also delete data that has no verified backup.")
@pass_state
def cleanup(state: CliState, older_than: str, dry_run: bool, force: bool) -> None:
    """Delete day folders, archive months and quarantine past the age; refuses data without a verified
    backup unless --force. Exit 1 when something was refused."""
    from mia_pipeline.lifecycle.retention import RetentionError, parse_age
    from mia_pipeline.lifecycle.retention import cleanup as run

    try:
        days = parse_age(older_than)
    except RetentionError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    report = run(state.layout, state.settings, days, dry_run=dry_run, force=force, today=_today())
    verb = "would delete" if dry_run else "deleted"
    for item in report.removed:
        click.echo(f"{verb} {item.kind} {item.name} ({human_bytes(item.bytes)})")
    for item in report.refused:
        click.echo(f"KEPT {item.kind} {item.name}: no verified backup of {len(item.not_backed_up)} file(s) "
                   f"(e.g. {item.not_backed_up[0]})")
    click.echo(f"{verb} {len(report.removed)} item(s) older than {report.cutoff} "
               f"({human_bytes(report.bytes_removed)}); {len(report.refused)} kept without a backup")
    if report.refused:
        click.echo("Error: some data past retention has no verified backup: run `mia backup --full` first, or "
                   "pass --force to delete it anyway", err=True)
        raise SystemExit(EXIT_PROBLEM)


@click.command("optimize")
@click.option("--compress", is_flag=True, help="Rewrite with stronger zstd compression.")
@click.option("--index", "index", is_flag=True, help="Sort by (symbol, ts), row-group statistics, Bloom filters.")
@click.option("--date", "day", type=DAY, help="Optimize one day only (default: every closed day).")
@click.option("--measure/--no-measure", default=True, help="Time one symbol over one month before and after.")
@pass_state
def optimize(state: CliState, compress: bool, index: bool, day, measure: bool) -> None:
    """Rewrite closed daily partitions for faster queries (content unchanged, manifests updated)."""
    if not (compress or index):
        raise click.UsageError("nothing to do: pass --compress, --index or both")
    from mia_pipeline.lifecycle.optimize import optimize as run

    layout = state.layout
    if day is not None and day.isoformat() not in state.store.days_present():
        raise click.BadParameter(f"no day folder {day} (archived or never collected)", param_hint="--date")
    report = run(layout, state.store, compress=compress, index=index,
                 days=[day.isoformat()] if day else None, measure=measure)
    click.echo(f"rewrote {len(report.rewritten)} partition(s), {report.skipped} already optimized: "
               f"{human_bytes(report.bytes_before)} -> {human_bytes(report.bytes_after)}, row groups "
               f"{report.row_groups_before} -> {report.row_groups_after}")
    if report.query:
        q = report.query
        click.echo(f"query {q['dataset']} symbol {q['symbol']} over {q['month']}: {q['before_s'] * 1000:.1f} ms "
                   f"before, {q['after_s'] * 1000:.1f} ms after")


@click.command("move-partitions")
@click.option("--dry-run", is_flag=True, help="List the day folders and archive months that would move.")
@pass_state
def move_partitions(state: CliState, dry_run: bool) -> None:
    """Move the local day folders and archive months to the object store MIA_STORAGE_URL names (each verified
    there before its local copy goes)."""
    from mia_pipeline.lifecycle.move import move_partitions as run
    from mia_pipeline.storage import refresh_views

    layout = state.layout
    report = run(layout, compression=state.settings.compression, dry_run=dry_run)
    where = layout.store.url
    for name in report.moved:
        click.echo(f"{'would move' if dry_run else 'moved'} {name} to {where}")
    for name in report.already:
        click.echo(f"{name}: {where} already held the same data; local copy removed")
    for name, why in report.refused.items():
        click.echo(f"KEPT {name}: {why}")
    if not dry_run and (report.moved or report.already):
        refresh_views(layout)
    verb = "would move" if dry_run else "moved"
    click.echo(f"{verb} {len(report.moved)} item(s); {len(report.refused)} kept local")
    if report.refused:
        raise SystemExit(EXIT_PROBLEM)
