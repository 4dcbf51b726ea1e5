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

from mia_pipeline.layout import DATASETS, Layout, parse_day
from mia_pipeline.reports.page import Page
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
    stored = store.layout.days_present() + _archived_days(store.layout) if a is None or b is None else []
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


def open_period(store, period: Period, datasets=DATASETS) -> tuple[duckdb.DuckDBPyConnection, dict[str, int]]:
    """An in-memory DuckDB connection (session time zone UTC) with one view per dataset that has rows in
    the period (daily files read in place, archived days through the store), each with a ``day`` column
    (the partition day, UTC date of ``ts``). Returns ``(con, {dataset: rows})``; a dataset without data in
    the period has no view and is absent from the counts."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'").fetchall()
    rows: dict[str, int] = {}
    for ds in datasets:
        rel = store.relation(con, ds, period.start, period.end)
        if rel is None:
            continue
        rel.create_view(f"_{ds}_raw", replace=True)
        con.execute(f"CREATE OR REPLACE VIEW {ds} AS SELECT *, CAST(ts AS DATE) AS day FROM _{ds}_raw")
        rows[ds] = con.execute(f"SELECT count(*) FROM {ds}").fetchall()[0][0]
    return con, rows


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
