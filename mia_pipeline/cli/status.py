"""`mia init`, `mia status`, `mia check-integrity`.

Heavy libraries (storage -> pyarrow/duckdb, rich) are imported inside the commands: see cli/common.py.
"""

from __future__ import annotations

import json

import click

from mia_pipeline.cli.common import DAY, EXIT_PROBLEM, CliState, human_bytes, pass_state, stdout_console
from mia_pipeline.layout import DATASETS, init_tree


@click.command("init")
@click.option("--instance", "profile", metavar="FILE|default",
              help="The data root's Dagster instance config, kept for every later command, `make ui` and the "
                   "daemon: e.g. deploy/dagster.postgres.yaml (credentials from MIA_PG_* variables), or "
                   "`default` (SQLite under <data>/.dagster). Without it the root keeps the one it has.")
@pass_state
def init(state: CliState, profile: str | None) -> None:
    """Create the data tree (the guide's --create-structure). Safe to run again."""
    from mia_pipeline.dagster_home import ProfileError, ensure_dagster_home, instance_profile
    from mia_pipeline.storage import refresh_views

    layout = state.layout
    created = init_tree(layout)
    refresh_views(layout)
    if profile is not None:
        _choose_instance(layout, profile)
    try:
        home = ensure_dagster_home(layout)
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from None
    from mia_pipeline.cli.dagster_bridge import record_data_tree

    record_data_tree(layout, len(created))  # what the data_tree asset would record: its inputs are there
    click.echo(f"data tree at {layout.root}: {len(created)} folders created, {len(layout.tree()) - len(created)} "
               f"already there; Dagster instance at {home} ({instance_profile(layout)} profile)")


def _choose_instance(layout, profile: str) -> None:
    """Make ``profile`` the root's instance config, then open it (creating its tables): on failure the
    previous config is put back and the command exits 1 naming the reason."""
    from mia_pipeline.cli.dagster_bridge import open_instance
    from mia_pipeline.dagster_home import ProfileError, restore_instance_profile, set_instance_profile

    try:
        before = set_instance_profile(layout, profile)
    except ProfileError as exc:
        raise click.BadParameter(str(exc), param_hint="--instance") from None
    import logging

    class Last(logging.Handler):  # the storage's retry warnings: kept for the reason, not printed
        def __init__(self):
            super().__init__()
            self.message = None

        def emit(self, record):
            self.message = record.getMessage()

    last, root = Last(), logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [last]
    try:
        open_instance(layout).dispose()
    except Exception as exc:  # noqa: BLE001 - any failure to open: said in one line, the old config kept
        restore_instance_profile(layout, before)
        errors = [getattr(e, "message", str(e)) for e in getattr(exc, "errors", None) or []]  # a config error's own lines
        reason = "; ".join(errors) if errors else str(exc)
        if last.message:
            reason += f"; last try: {last.message.split('(Background on this error')[0]}"
        reason = " ".join(reason.split("Stack Trace:")[0].split())[:500]
        raise click.ClickException(f"cannot open the Dagster instance of {profile} ({type(exc).__name__}: {reason}); "
                                   "the data root keeps its previous instance. For deploy/dagster.postgres.yaml "
                                   "set MIA_PG_HOST, MIA_PG_PORT, MIA_PG_USER, MIA_PG_PASSWORD and MIA_PG_DB "
                                   "to a reachable database.") from None
    finally:
        root.handlers[:] = saved


def dataset_status(state: CliState, start=None, end=None) -> dict[str, dict]:
    """Per dataset: days present, first/last day, rows, bytes, last update — from the manifests only."""
    store = state.store
    out: dict[str, dict] = {}
    manifests, _ = store.readable_manifests()  # damaged days are reported by `mia status` and check-integrity
    for ds in DATASETS:
        entries = [
            (d, m["datasets"][ds]) for d, m in manifests.items()
            if ds in m["datasets"] and (start is None or d >= start.isoformat()) and (end is None or d <= end.isoformat())
        ]
        out[ds] = {
            "days": len(entries),
            "first_day": entries[0][0] if entries else None,
            "last_day": entries[-1][0] if entries else None,
            "rows": sum(e["rows"] for _, e in entries),
            "bytes": sum(e["bytes"] for _, e in entries),
            "last_update": max((e["written_at"] for _, e in entries), default=None),
        }
    return out


def _rows_by_day(state: CliState, start, end) -> dict[str, dict[str, int]]:
    from mia_pipeline.storage.describe import rows_per_day

    lo, hi = (start.isoformat() if start else ""), (end.isoformat() if end else "9999")
    return {ds: {d: n for d, n in per.items() if lo <= d <= hi} for ds, per in rows_per_day(state.store).items()}


def _gaps(state: CliState, start, end) -> list[str]:
    """Trading days without data in the range (the same rule as check-integrity and the trading_day_has_data
    check): [--from or the first stored day, --to or the last stored day]."""
    from mia_pipeline.collection.gaps import gap_days

    return gap_days(state.store.readable_manifests()[0], start, end)


@click.command("status")
@click.option("--from", "start", type=DAY, help="First day to count (inclusive).")
@click.option("--to", "end", type=DAY, help="Last day to count (inclusive).")
@click.option("--by-day", is_flag=True, help="Rows per day and dataset (what Dagster shows per partition), with "
                                            "the CME trading days that hold no data (gaps).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def status(state: CliState, start, end, by_day: bool, as_json: bool) -> None:
    """Days present per dataset, rows, bytes and last update."""
    if start and end and end < start:
        raise click.BadParameter(f"--to {end} is before --from {start}", param_hint="--to")
    stats = dataset_status(state, start, end)
    days = _rows_by_day(state, start, end) if by_day else None
    gaps = _gaps(state, start, end) if by_day else []
    from mia_pipeline.dagster_home import instance_profile

    profile = instance_profile(state.layout)
    if as_json:
        out = {"data_dir": str(state.layout.root), "dagster_instance": profile, "datasets": stats}
        if days is not None:
            out["rows_by_day"] = days
            out["gaps"] = gaps
        click.echo(json.dumps(out, indent=2))
        return
    from rich import box
    from rich.table import Table

    if days is not None:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        from mia_pipeline.collection.gaps import CALENDAR

        table.add_column("day")
        for ds in DATASETS:
            table.add_column(ds, justify="right")
        table.add_column("note")
        for day in sorted({d for per in days.values() for d in per} | set(gaps)):
            table.add_row(day, *(f"{days[ds][day]:,}" if day in days[ds] else "-" for ds in DATASETS),
                          "gap" if day in gaps else "")
        console = stdout_console()
        console.print(table)
        if gaps:
            console.print(f"{len(gaps)} {CALENDAR} trading day(s) without data: {', '.join(gaps)} (`mia check-integrity` "
                          "reports them; in Dagster their partitions fail trading_day_has_data)",
                          markup=False, highlight=False, soft_wrap=True)
        return

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in (("dataset", "left"), ("days", "right"), ("first", "left"), ("last", "left"),
                          ("rows", "right"), ("bytes", "right"), ("last update", "left")):
        table.add_column(name, justify=justify)
    for ds, s in stats.items():
        table.add_row(ds, str(s["days"]), s["first_day"] or "-", s["last_day"] or "-", f"{s['rows']:,}",
                      human_bytes(s["bytes"]), s["last_update"] or "-")
    console = stdout_console()
    where = f"; partitions on {state.layout.store.url}" if state.layout.store else ""
    console.print(f"data dir: {state.layout.root} (Dagster instance: {profile} profile{where})", markup=False,
                  highlight=False, soft_wrap=True)
    console.print(table)
    for day, why in state.store.readable_manifests()[1].items():
        console.print(f"damaged day {day} (not counted): {why}", markup=False, highlight=False, soft_wrap=True)
    from mia_pipeline.collection.integrity import hidden_local_partitions

    for note in hidden_local_partitions(state.layout):
        console.print(f"not counted: {note}", markup=False, highlight=False, soft_wrap=True)


@click.command("check-integrity")
@click.option("--date", "day", type=DAY, help="Check one day only (its files against its manifest).")
@click.option("--start", type=DAY, help="First day of the range checked for gaps (default: the first stored day).")
@click.option("--end", type=DAY, help="Last day of the range checked for gaps (default: the last stored day).")
@pass_state
def check_integrity(state: CliState, day, start, end) -> None:
    """Verify every day's files against its manifest (sha256, row counts, unvouched files), the archive,
    the quarantine and the collector's state files; then across days: ids stored on several days, CME
    trading days with no data (gaps), archived months without a verified backup, quarantine totals.
    Exit 1 on any problem."""
    from mia_pipeline.collection.audit import audit
    from mia_pipeline.collection.integrity import integrity_problems

    if day and (start or end):
        raise click.UsageError("--date checks one day; --start/--end check a range: give one or the other")
    if start and end and end < start:
        raise click.BadParameter(f"--end {end} is before --start {start}", param_hint="--end")
    days = [day.isoformat()] if day else state.store.days_present()
    problems = integrity_problems(state.layout, state.store, days if day else None)
    for p in problems:
        click.echo(f"PROBLEM {p}")
    summary = f"checked {len(days)} day(s): {len(problems)} problem(s)"
    if not day:
        report = audit(state.layout, state.store, state.settings, start, end)
        for title, lines in (("ids on several days", report.duplicates), ("gaps", report.gaps),
                             ("archive without backup", report.unbacked_archives)):
            click.echo(f"{title}: {len(lines) or 'none'}")
            for line in lines:
                click.echo(f"PROBLEM {line}")
        q = report.quarantine
        click.echo(f"quarantine: {sum(q.values()):,} line(s)" + (" (" + ", ".join(
            f"{k} {v:,}" for k, v in q.most_common()) + ")" if q else ""))
        problems += report.problems
        archived = len(set(state.store.readable_manifests()[0]) - set(days))
        summary = (f"checked {len(days)} day(s)" + (f", {archived} archived day(s)" if archived else "")
                   + f" and the range across them: {len(problems)} problem(s)")
    click.echo(summary)
    from mia_pipeline.collection.integrity import record_integrity_result

    record_integrity_result(state.layout, problems, "day " + days[0] if day else summary.split(":")[0], "mia check-integrity")
    if problems:
        raise SystemExit(EXIT_PROBLEM)
