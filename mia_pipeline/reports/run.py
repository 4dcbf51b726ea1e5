"""Make, write and index reports: the one implementation behind `mia report ...` and the report assets.

``generate(store, ["quality", "performance"], start="2026-11-01", end="2026-11-30")`` writes
``reports/2026-11-30/quality_2026-11-01_2026-11-30.html`` (+ ``.json``) and the performance page beside
it, then rebuilds ``reports/index.html``; re-running the same period replaces the same files.
"""

from __future__ import annotations

from pathlib import Path

from mia_pipeline.layout import REPORT_KINDS
from mia_pipeline.reports.base import (
    Period,
    Report,
    ReportError,
    resolve_period,
    unverified_report,
    write_report,
)
from mia_pipeline.reports.index import write_index

TIMEFRAMES = ("weekly", "monthly")


TITLES = {"quality": "Data quality report", "performance": "Battle Navale performance",
          "features": "Feature importance"}


def make_report(kind: str, store, period: Period, *, comprehensive: bool = False,
                timeframe: str = "weekly") -> Report:
    """Compute one report (nothing written). Whatever the data, the result is a page: an analysis that
    raises on damaged or unexpected input gives an UNVERIFIED page naming the error, never a traceback."""
    if timeframe not in TIMEFRAMES:
        raise ReportError(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}")
    if kind not in REPORT_KINDS:
        raise ReportError(f"unknown report {kind!r}; reports: {', '.join(REPORT_KINDS)}")
    try:
        return _make(kind, store, period, comprehensive, timeframe)
    except ReportError:
        raise
    except Exception as exc:  # noqa: BLE001 -- the page says what failed; the other reports still run
        return unverified_report(kind, TITLES[kind], period, [
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:400] if str(exc) else 'no message'}",
            "the stored data may be damaged: `mia check-integrity` names what; `mia recover --validate-and-repair`"])


def _make(kind: str, store, period: Period, comprehensive: bool, timeframe: str) -> Report:
    if kind == "quality":
        from mia_pipeline.reports.quality import build_quality_report

        return build_quality_report(store, period, comprehensive=comprehensive)
    if kind == "performance":
        from mia_pipeline.reports.performance import build_performance_report

        return build_performance_report(store, period, timeframe=timeframe, comprehensive=comprehensive)
    from mia_pipeline.reports.features import build_feature_report, bundles_for_period

    bundles, unreadable = bundles_for_period(store.layout, period)
    if unreadable and not bundles:  # a dataset overlaps the period but none can be read: not "no data"
        return unverified_report(kind, TITLES[kind], period, [*unreadable, "rebuild the week's ML dataset "
                                 "(`mia materialize --select features_dataset,labels_dataset,dataset_splits "
                                 "--partition <week start>`)"])
    report = build_feature_report(bundles, period, comprehensive=comprehensive)
    for problem in unreadable:
        report.page.notice("warn", problem)
    return report


def write(store, report: Report, index: bool = True) -> Path:
    """Write one report (and rebuild the index); returns the page path."""
    page, _ = write_report(store.layout, report)
    if index:
        write_index(store.layout)
    return page


def generate(store, kinds, start=None, end=None, *, comprehensive: bool = False,
             timeframe: str = "weekly") -> list[tuple[Report, Path]]:
    """Make and write each report of ``kinds`` over one period (see :func:`resolve_period`), then the index."""
    period = resolve_period(store, start, end)
    out = []
    for kind in kinds:
        report = make_report(kind, store, period, comprehensive=comprehensive, timeframe=timeframe)
        out.append((report, write(store, report, index=False)))
    write_index(store.layout)
    return out
