"""What every report shares: its period, its data (DuckDB views over the period's stored partitions, daily
or archived), its outcome (:class:`Report`) and how it is written (``reports/<end>/<kind>_<start>_<end>.html``
plus a ``.json`` of its figures beside it, both atomic).

A report's **status** says what its page says:

- ``ok``: figures computed, nothing blocking found;
- ``problem``: figures computed and a blocking problem found (``problems`` lists them) -> exit 1;
- ``no data``: the period holds nothing the report is about (no stored day, no trade, no labelled
  decision) -> exit 1: the question asked has no answer, and the page says why;
- ``unverified``: the data is there but the analysis cannot run on it (one outcome class, NaN-only
  features) -> exit 1, never shown as a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import duckdb
import pyarrow as pa

from mia_pipeline.layout import DATASETS, Layout, parse_day
from mia_pipeline.reports.page import Page
from mia_pipeline.storage import StorageError
from mia_pipeline.storage.atomic import atomic_write_bytes, atomic_write_json

STATUSES = ("ok", "problem", "no data", "unverified")
DEFAULT_DAYS = 30  # the monthly checklist: a report without --start/--end covers the last 30 days stored


class ReportError(ValueError):
    """A report cannot be made from these arguments (bad period, unknown option): exit 2."""


@dataclass(frozen=True)
class Period:
    start: str
    end: str

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ReportError(f"period {self.start}..{self.end} ends before it starts; give --start <= --end")

    @property
    def days(self) -> list[str]:
        a, b = parse_day(self.start), parse_day(self.end)
        return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]

    def __str__(self) -> str:
        return self.start if self.start == self.end else f"{self.start} .. {self.end}"


def resolve_period(store, start: str | date | None = None, end: str | date | None = None,
                   default_days: int = DEFAULT_DAYS) -> Period:
    """The period a report covers: ``[start, end]`` as given; a missing end is the newest stored day (today,
    UTC, when nothing is stored); a missing start is ``default_days`` before the end, or the first day ever
    stored when that is later."""
    try:
        b = parse_day(end) if end else None
        a = parse_day(start) if start else None
    except ValueError as exc:
        raise ReportError(f"{exc}; dates are YYYY-MM-DD") from None
    stored = store.days_present() + _archived_days(store.layout) if a is None or b is None else []
    if b is None:
        b = parse_day(max(stored)) if stored else (a or datetime.now(UTC).date())
        if a is not None and b < a:
            b = a
    if a is None:
        a = b - timedelta(days=default_days - 1)
        first = min((d for d in stored if d <= b.isoformat()), default=None)
        if first is not None and parse_day(first) > a:
            a = parse_day(first)   # nothing was ever stored before the first day: not 30 empty days
    return Period(a.isoformat(), b.isoformat())


def _archived_days(layout: Layout) -> list[str]:
    from mia_pipeline.storage import archive_index

    try:
        months, _ = archive_index.archived_manifests(layout)
    except Exception:  # a damaged archive index is check-integrity's to report; the default period ignores it
        return []
    return [d for man in months.values() for entry in man["datasets"].values() for d in entry["days"]]


READ_ERRORS = (duckdb.Error, pa.ArrowException, OSError, ValueError)


def period_damage(store, period: Period, datasets=DATASETS) -> tuple[list[str], set[tuple[str, str]]]:
    """What of the period's stored data cannot be trusted, checked before anything is read: damaged day or
    month manifests, data files no manifest vouches for, and committed daily files that are missing or
    whose sha256 or row count differs from their manifest. Returns ``(problems, {(day, dataset)} to
    leave out)`` (``(day, "*")`` for a whole day or month). Cost: one sha256 pass over the period's daily files (a year of ticks: about a second)."""
    good, damaged = store.readable_manifests(period.start, period.end)
    problems = [f"{key}: {why}" if not why.startswith(key) else why for key, why in sorted(damaged.items())]
    bad: set[tuple[str, str]] = {(key, "*") for key in damaged}   # a whole day (or month) nothing vouches for
    for day in (d for d in store.days_present() if period.start <= d <= period.end):
        orphans = store.orphan_files(day)
        if orphans:
            bad.add((day, "*"))
            problems.append(f"{day}: data files without a manifest ({', '.join(orphans)}): nothing vouches for "
                            "them, so they are not read")
    for day, manifest in sorted(good.items()):
        for ds in datasets:
            entry = manifest["datasets"].get(ds)
            if not entry or entry.get("archived"):
                continue
            why = store.verify_dataset(day, ds)
            if why:
                problems.append(why)
                bad.add((day, ds))
    return problems, bad


def _relation(store, con, dataset: str, period: Period, exclude: set):
    """The period's rows of one dataset, leaving out the (day, dataset) pairs of ``exclude``."""
    if not any(ds == dataset for _, ds in exclude):
        return store.relation(con, dataset, period.start, period.end)
    days = [d for d in store.days(dataset, period.start, period.end) if (d, dataset) not in exclude]
    tables = [t for d in days if (t := store.read(d, dataset)) is not None and t.num_rows]
    return con.from_arrow(pa.concat_tables(tables, promote_options="permissive")) if tables else None


def open_period(store, period: Period, datasets=DATASETS, exclude: set = frozenset(),
                problems: list | None = None) -> tuple[duckdb.DuckDBPyConnection, dict[str, int]]:
    """An in-memory DuckDB connection (session time zone UTC) with one view per dataset that has rows in
    the period (daily files read in place, archived days through the store), each with a ``day`` column
    (the partition day, UTC date of ``ts``). Returns ``(con, {dataset: rows})``; a dataset without data in
    the period has no view and is absent from the counts. ``exclude``: (day, dataset) pairs left out.
    ``problems``: when given, a dataset that cannot be read is left out and the reason appended to it
    (otherwise the error propagates)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'").fetchall()
    rows: dict[str, int] = {}
    for ds in datasets:
        try:
            rel = _relation(store, con, ds, period, set(exclude))
            if rel is None:
                continue
            rel.create_view(f"_{ds}_raw", replace=True)
            con.execute(f"CREATE OR REPLACE VIEW {ds} AS SELECT *, CAST(ts AS DATE) AS day FROM _{ds}_raw")
            rows[ds] = con.execute(f"SELECT count(*) FROM {ds}").fetchall()[0][0]
        except (*READ_ERRORS, StorageError) as exc:
            if problems is None:
                raise
            con.execute(f"DROP VIEW IF EXISTS {ds}").fetchall()
            problems.append(f"{ds}: cannot be read in {period} ({str(exc).splitlines()[0][:300]})")
    return con, rows


def open_checked(store, period: Period, datasets=DATASETS) -> tuple[duckdb.DuckDBPyConnection, dict[str, int], list[str]]:
    """:func:`open_period` over what :func:`period_damage` vouches for: ``(con, rows, damage)`` where
    ``damage`` names every partition left out and why (a report with damage is never OK)."""
    damage, bad = period_damage(store, period, datasets)
    con, rows = open_period(store, period, datasets, bad, damage)
    return con, rows, damage


def damaged_days(damage: list[str]) -> set[str]:
    """The days (``YYYY-MM-DD``) or months (``YYYY-MM``) a damage line of :func:`period_damage` names."""
    return {line.split(":", 1)[0].split("/", 1)[0] for line in damage}


DAMAGE_ADVICE = ("run `mia check-integrity` for the whole list, then `mia recover --validate-and-repair` (or "
                 "`mia recover --restore-from-backup --date D`) and make the report again")


@dataclass
class Report:
    kind: str                  # one of layout.REPORT_KINDS
    title: str
    period: Period
    page: Page
    status: str = "ok"
    summary: str = ""          # Markdown, a few lines: what the page says first (Dagster metadata)
    figures: dict = field(default_factory=dict)    # key numbers (JSON-able scalars) for metadata and tests
    problems: list[str] = field(default_factory=list)  # blocking problems: exit 1

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"report status {self.status!r} not in {STATUSES}")

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "ok" else 1

    def headline(self) -> str:
        """One line for the terminal: status and the first problem or reason."""
        why = f": {self.problems[0]}" if self.problems else ""
        return f"{self.kind} {self.period}: {self.status.upper()}{why}"


def unverified_report(kind: str, title: str, period: Period, reasons: list[str], page: Page | None = None) -> Report:
    """A report whose analysis could not run: its page says why (never an empty page, never a pass)."""
    page = page or Page(title, str(period))
    page.notice("error", f"UNVERIFIED: the {kind} report could not be made for {period}: " + "; ".join(reasons[:10]))
    return Report(kind, title, period, page, "unverified", f"**{title} {period}: UNVERIFIED** — {reasons[0]}",
                  {}, list(reasons))


def write_report(layout: Layout, report: Report) -> tuple:
    """Write the page and its figures atomically; returns ``(html path, json path)``."""
    html_path = layout.report_file(report.kind, report.period.start, report.period.end)
    json_path = layout.report_file(report.kind, report.period.start, report.period.end, ".json")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(html_path, report.page.html(footer=f"Data root: {layout.root}").encode("utf-8"))
    atomic_write_json(json_path, {
        "kind": report.kind, "title": report.title, "start": report.period.start, "end": report.period.end,
        "status": report.status, "summary": report.summary, "problems": report.problems,
        "figures": report.figures, "page": html_path.name, "images": report.page.images,
    })
    return html_path, json_path
