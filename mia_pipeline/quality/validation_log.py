"""The latest Great Expectations results per asset and partition, kept as small JSON files so the report
index shows them offline with the real run and asset names (GX's own Data Docs need scripts from public
CDNs to render and name runs ``__none__``).

One file per (asset, partition): ``reports/validations/<asset>/<partition>.json`` =
``{"asset", "partition", "run", "recorded_at", "status", "results": [{"check", "status", "detail",
"failing_rows"}]}``; a newer validation of the same partition replaces it (atomic). ``status`` is PASS,
FAIL or UNVERIFIED (a check that could not run is never a pass).

Writers: the ``daily_checks`` / ``gx_completeness`` evaluations (daily datasets), the ML dataset's checks
(``ml_dataset``), and ``mia validate`` (run ``mia validate (no Dagster run)``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from mia_pipeline.layout import Layout, check_id
from mia_pipeline.storage.atomic import atomic_write_json

PASS, FAIL, UNVERIFIED = "PASS", "FAIL", "UNVERIFIED"


def _verdict(statuses: list[str]) -> str:
    return FAIL if FAIL in statuses else UNVERIFIED if UNVERIFIED in statuses else PASS


def record(layout: Layout, asset: str, partition: str, run: str, results: list[dict]) -> Path:
    """Keep one validation of ``asset[partition]`` (each result: check, status, detail, failing_rows)."""
    path = layout.validations_dir / check_id(asset, "asset") / f"{check_id(partition, 'partition')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {
        "asset": asset, "partition": partition, "run": run,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": _verdict([r["status"] for r in results]), "results": results,
    }, durable=False)
    return path


def record_daily(layout: Layout, outcomes: dict, run: str) -> None:
    """``outcomes``: ``{dataset: {day: DailyOutcome}}`` of :func:`mia_pipeline.quality.gx.validate_days`."""
    for ds, per_day in outcomes.items():
        for day, o in per_day.items():
            record(layout, ds, day, run, [
                {"check": f"gx_completeness/{e.name}", "status": PASS if e.passed else FAIL, "detail": e.detail,
                 "failing_rows": e.failing_rows} for e in o.per_expectation])


def record_dataset(layout: Layout, report, partition: str, run: str) -> None:
    """``report``: a :class:`mia_pipeline.ml.validation.ValidationReport` of the week ``partition``."""
    record(layout, "ml_dataset", partition, run, [
        {"check": r.name, "status": r.status, "detail": r.detail, "failing_rows": None} for r in report.results])


def latest(layout: Layout, limit: int = 500) -> tuple[list[dict], list[str]]:
    """Recorded validations, newest first (at most ``limit``), and the files that could not be read."""
    found, damaged = [], []
    root = layout.validations_dir
    for path in sorted(root.glob("*/*.json")) if root.is_dir() else ():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            damaged.append(str(path))
            continue
        if _well_formed(doc):
            found.append(doc)
        else:
            damaged.append(str(path))
    found.sort(key=lambda d: (str(d.get("recorded_at")), str(d.get("partition"))), reverse=True)
    return found[:limit], damaged


def _well_formed(doc) -> bool:
    return (isinstance(doc, dict) and all(isinstance(doc.get(k), str) for k in ("asset", "partition", "status"))
            and isinstance(doc.get("results"), list)
            and all(isinstance(r, dict) and isinstance(r.get("check"), str) and isinstance(r.get("status"), str)
                    for r in doc["results"]))


def dagster_run_name(run_id: str, job_name: str | None) -> str:
    return f"Dagster run {run_id[:8]}" + (f" of job {job_name}" if job_name else "")
