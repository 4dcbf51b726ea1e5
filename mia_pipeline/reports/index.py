"""``reports/index.html``: every report page written (newest period first, with its status and headline
figures, read from the ``.json`` beside each page) and the latest Great Expectations results per asset and
partition (:mod:`mia_pipeline.quality.validation_log`), with the run that made them. Rebuilt whole after
every report write (atomic), so it always lists exactly the pages on disk.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from mia_pipeline.layout import REPORT_KINDS, Layout
from mia_pipeline.quality import validation_log
from mia_pipeline.reports.page import Page, esc, status_span
from mia_pipeline.storage.atomic import atomic_write_bytes

TITLES = {"quality": "Data quality", "performance": "Battle Navale performance", "features": "Feature importance"}
HEADLINE = {  # figures shown beside each page's link
    "quality": ("days", "gap_days", "blocking"),
    "performance": ("trades", "closed", "success_rate", "total_pnl", "profit_factor"),
    "features": ("rows", "target", "mean_test_auc", "top_feature"),
}
VALIDATIONS_SHOWN = 200
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def listed_reports(layout: Layout) -> tuple[list[dict], list[str]]:
    """Every report's figures (``path`` added, relative to the reports folder), newest period first; and
    the ``.json`` files that could not be read."""
    found, damaged = [], []
    for day in layout.report_days():
        for path in sorted((layout.reports_dir / day).glob("*.json")):
            if path.stem.split("_", 1)[0] not in REPORT_KINDS:
                continue
            try:
                doc = _report_doc(json.loads(path.read_text(encoding="utf-8")))
                page = path.with_name(doc["page"])
                doc["path"] = page.relative_to(layout.reports_dir).as_posix() if page.is_file() else None
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                damaged.append(str(path))
                continue
            found.append(doc)
    found.sort(key=lambda d: (d.get("end", ""), d.get("start", ""), d.get("kind", "")), reverse=True)
    return found, damaged


def _report_doc(doc) -> dict:
    """The figures file of one page, checked field by field (anything else: ValueError, listed as damaged)."""
    from mia_pipeline.reports.base import STATUSES

    ok = (isinstance(doc, dict) and doc.get("kind") in REPORT_KINDS and doc.get("status") in STATUSES
          and all(isinstance(doc.get(k), str) and _DAY.fullmatch(doc[k]) for k in ("start", "end"))
          and isinstance(doc.get("page"), str) and "/" not in doc["page"] and "\\" not in doc["page"]
          and isinstance(doc.get("figures", {}), dict)
          and isinstance(doc.get("problems", []), list) and all(isinstance(p, str) for p in doc.get("problems", [])))
    if not ok:
        raise ValueError("not a report figures file")
    return doc


def _figures(doc: dict) -> str:
    from mia_pipeline.reports.page import fmt

    figs = doc.get("figures") or {}
    return "; ".join(f"{k} {fmt(figs[k])}" for k in HEADLINE.get(doc.get("kind"), ()) if k in figs)


def build_index(layout: Layout) -> Page:
    reports, damaged = listed_reports(layout)
    validations, bad_validations = validation_log.latest(layout, VALIDATIONS_SHOWN)
    page = Page("mia-pipeline reports", f"Data root {layout.root}")
    page.h2("Reports")
    if not reports:
        page.notice("info", "No report written yet: run `mia report all` (or materialize data_quality_report, "
                            "battle_navale_performance, feature_importance in the UI).")
    for kind in REPORT_KINDS:
        mine = [d for d in reports if d.get("kind") == kind]
        if not mine:
            continue
        page.h3(TITLES[kind])
        rows = []
        for d in mine:
            period = d["start"] if d["start"] == d["end"] else f"{d['start']} .. {d['end']}"
            link = (f'<a href="{esc(d["path"])}">{esc(period)}</a>' if d["path"]
                    else f"{esc(period)} (page missing)")
            rows.append(f"<tr><td>{link}</td><td>{status_span(d.get('status', '?'))}</td>"
                        f"<td>{esc(_figures(d))}</td><td>{esc('; '.join(d.get('problems') or [])[:300])}</td></tr>")
        page.raw("<table><thead><tr><th>period</th><th>status</th><th>figures</th><th>problems</th></tr></thead>"
                 f"<tbody>{''.join(rows)}</tbody></table>")
    for path in damaged:
        page.notice("warn", f"{path}: damaged report figures (not listed); re-run `mia report` for that period.")
    page.h2("Latest validation results (Great Expectations)")
    if not validations:
        page.notice("info", "No validation recorded yet: the daily datasets' gx_completeness check, the weekly "
                            "ML dataset's checks and `mia validate` record theirs here.")
    else:
        counts = pd.Series([v["status"] for v in validations]).value_counts().to_dict()
        page.cards({"validations": len(validations), **{k: counts.get(k, 0) for k in ("PASS", "FAIL", "UNVERIFIED")}})
        rows = []
        for v in validations:
            bad = [r for r in v["results"] if r.get("status") != validation_log.PASS]
            detail = "; ".join(f"{r['check']}: {r['status']} {r.get('detail', '')}" for r in bad)[:400] or \
                f"{len(v['results'])} expectation group(s) met"
            rows.append(f"<tr><td>{esc(v['asset'])}</td><td>{esc(v['partition'])}</td>"
                        f"<td>{status_span(v['status'])}</td><td>{esc(v.get('run'))}</td>"
                        f"<td>{esc(v.get('recorded_at'))}</td><td>{esc(detail)}</td></tr>")
        page.raw("<table><thead><tr><th>asset</th><th>partition</th><th>status</th><th>run</th><th>recorded</th>"
                 f"<th>detail</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
    for path in bad_validations:
        page.notice("warn", f"{path}: damaged validation record (not listed).")
    return page


def write_index(layout: Layout) -> Path:
    path = layout.report_index_file
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, build_index(layout).html().encode("utf-8"), durable=False)
    return path
