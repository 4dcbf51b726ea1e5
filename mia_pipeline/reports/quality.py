"""Data quality report (guide §5.1): completeness, anomalies, consistency, quarantine, recommendations.

**Completeness** — every day of the period against the CME Globex calendar (``collection.gaps``): rows per
dataset and day, weekends and holidays marked, trading days with nothing stored (gaps), and each day's
``data_quality_score`` / ``completeness`` from the collection metrics (``quality.metrics``; computed on the
fly, never written, for up to :data:`METRICS_COMPUTE_MAX_DAYS` days without stored figures, else "not
computed"). Gaps are counted from the first day ever stored (days before collection began are not gaps)
up to the period's end, and never today or later (today's data may still be landing).

The anomaly rules are in :mod:`mia_pipeline.reports.anomalies`, the consistency checks and what blocks in
:mod:`mia_pipeline.reports.consistency`.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from mia_pipeline.layout import DATASETS
from mia_pipeline.reports.anomalies import (
    ANOMALY_RULES,
    PRICE_SPIKE,
    STALE_QUOTE,
    TIME_GAP,
    TRADE_PRICE_OUTLIER,
    VOLUME_OUTLIER,
    find_anomalies,
)
from mia_pipeline.reports.base import DAMAGE_ADVICE, Period, Report, damaged_days, open_checked
from mia_pipeline.reports.consistency import (
    BLOCKING,
    EXAMPLES,
    EXIT_BEFORE_ENTRY,
    EXIT_WITHOUT_ENTRY,
    INFO,
    PNL_SIGN,
    TRADE_WITHOUT_SIGNAL,
    WARNING,
    consistency,
    day_check_findings,
)
from mia_pipeline.reports.page import Page, md_table, new_figure, status_span

KIND, TITLE = "quality", "Data quality report"
METRICS_COMPUTE_MAX_DAYS = 31
TOP_ROWS = 10

# -- completeness ----------------------------------------------------------------------------------------------

def _day_kind(day: str) -> str:
    from mia_pipeline.collection.gaps import is_trading_day

    if is_trading_day(day):
        return "trading day"
    return "weekend" if date.fromisoformat(day).weekday() >= 5 else "holiday"


def _metrics(store, days: list[str], hurt: set[str]) -> dict[str, dict | None]:
    """Each day's stored collection metrics; computed (not written) for a few days without them, never for
    a damaged day (``hurt``: its files cannot be read as they are)."""
    from mia_pipeline.quality.metrics import compute_day_metrics, read_day_metrics

    out = {d: read_day_metrics(store.layout, d) for d in days}
    missing = [d for d, m in out.items() if m is None and d not in hurt and d[:7] not in hurt]
    if len(missing) <= METRICS_COMPUTE_MAX_DAYS:
        for d in missing:
            out[d] = compute_day_metrics(store.layout, store, d)
    return out


def _gaps(store, period: Period) -> tuple[list[str], set[str], str | None]:
    """(gap days, stored days of the period, first day ever stored)."""
    from mia_pipeline.collection.gaps import gap_days

    good, damaged = store.readable_manifests(hi=period.end)
    stored = {d for d in [*good, *damaged] if len(d) == 10}
    first = min(stored) if stored else None
    lo = max(date.fromisoformat(period.start), date.fromisoformat(first)) if first else None
    hi = min(date.fromisoformat(period.end), datetime.now(UTC).date() - timedelta(days=1))
    gaps = gap_days(stored, lo, hi) if lo and lo <= hi else []
    return gaps, {d for d in stored if period.start <= d <= period.end}, first


def _reject_example(layout, day: str, reason: str) -> str:
    from mia_pipeline.collection.quarantine import read_rejects

    t = read_rejects(layout, day).to_pandas()
    hit = t.loc[t["reason"] == reason, "detail"]
    return str(hit.iloc[0]) if len(hit) else ""


def _heatmap(page: Page, grid: pd.DataFrame, kinds: dict[str, str], gaps: set[str]) -> None:
    """Rows per dataset and day as one image (vectorised: a year or a century of days costs the same):
    green by log rows; grey where CME has no session; red on gap days only (a trading day before the first
    stored day, or today, is not a gap and stays white)."""
    import matplotlib

    days = list(grid.columns)
    values = np.log10(grid.to_numpy(dtype=float) + 1)
    top = values.max() if values.size and values.max() > 0 else 1.0
    rgba = matplotlib.colormaps["Greens"](0.15 + 0.85 * values / top)
    rgba[values == 0] = (1.0, 1.0, 1.0, 1.0)
    closed = np.array([kinds[d] != "trading day" for d in days])
    gap = np.array([d in gaps for d in days])
    rgba[:, closed] = (0.79, 0.81, 0.85, 1.0)
    rgba[:, gap] = (0.88, 0.33, 0.29, 1.0)
    fig, ax = new_figure(width=min(14.0, 6 + 0.3 * len(days)), height=1.4 + 0.35 * grid.shape[0])
    ax.imshow(rgba, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(grid.shape[0]), grid.index)
    step = max(1, len(days) // 20)
    label = (lambda d: d) if days[0][:4] != days[-1][:4] else (lambda d: d[5:])
    ax.set_xticks(range(0, len(days), step), [label(d) for d in days[::step]], rotation=60, fontsize=8)
    ax.set_title("Rows per dataset and day (log scale)")
    page.figure(fig, "Completeness against the CME calendar: green = rows (darker: more), grey = no CME session "
                     "(weekend, holiday), red = gap (a trading day with nothing stored), white = no rows")


# -- the report ------------------------------------------------------------------------------------------------

def _recommendations(gaps, findings, anomalies: pd.DataFrame, quarantine: pd.DataFrame, low_days,
                     damage=()) -> list[str]:
    recs = [f"{len(damage)} damaged partition(s) (first: {damage[0]}): {DAMAGE_ADVICE}."] if damage else []
    for day in gaps[:10]:
        recs.append(f"Gap {day} (trading day with nothing stored): `mia rebuild --date {day}` if its raw lines were "
                    "landed, or re-import the day's files (`mia import PATH`); check the collector was running "
                    "(`mia collect status`).")
    if len(gaps) > 10:
        recs.append(f"... and {len(gaps) - 10} more gap day(s): the same for each.")
    by_check = {}
    for f in findings:
        by_check.setdefault((f.check, f.dataset), []).append(f)
    fixes = {
        "has_unique_keys": "`mia recover --validate-and-repair` (deduplicates the day's partition)",
        "non_empty_when_events_exist": "`mia rebuild --date {day}` (rows were lost between raw lines and partition)",
        "timestamps_inside_partition_day": "`mia rebuild --date {day}` (rows stored under the wrong day)",
        "prices_positive": "check the writer's price scaling for this source; re-import the day once fixed",
        "ask_above_bid": "check the writer of bid/ask (swapped fields?) and re-import the day",
        EXIT_WITHOUT_ENTRY: "the trade snapshot was lost or never written: re-import the entry's day or "
                            "`mia recover --restore-trades --trade-ids FILE`; check the trading system writes the "
                            "entry before the exit",
        PNL_SIGN: "check the pnl computation of the exit writer (side, multiplier, commission)",
        EXIT_BEFORE_ENTRY: "check the clocks and timestamps of the trading system's exit writer",
        TRADE_WITHOUT_SIGNAL: "check the signal recorder was running and its clock agrees with the executor's",
    }
    for (check, ds), group in by_check.items():
        if check not in fixes or group[0].severity == INFO:
            continue
        days = sorted({f.day for f in group if f.day})
        where = f" on {', '.join(days[:5])}" + (" ..." if len(days) > 5 else "") if days else ""
        n = sum(f.count for f in group)
        recs.append(f"{check} ({ds}, {n}{where}): " + fixes[check].format(day=days[0] if days else "D"))
    if len(anomalies):
        for (rule, ds), g in anomalies.groupby(["rule", "dataset"], sort=False):
            series = ", ".join(sorted({f"{s}/{y}" for s, y in zip(g["source"], g["symbol"], strict=True)})[:5])
            days = sorted(set(g["day"]))
            advice = {
                PRICE_SPIKE: "compare those bars with the source (`mia sources test`); re-import the day if the "
                             "stored bar differs from the exchange's",
                TIME_GAP: "check the recorder/feed was connected at those times (`mia collect status`); "
                          f"`mia rebuild --date {days[0]}` if the raw lines hold the missing rows",
                STALE_QUOTE: "check the market data subscription of the feed for these symbols (a frozen quote "
                             "stream looks like a quiet market)",
                TRADE_PRICE_OUTLIER: "check the trade snapshot's market_context is captured at the fill, not later",
                VOLUME_OUTLIER: "compare the bar volume with the source; a unit change (lots vs contracts) or a "
                                "duplicated print inflates it",
            }[rule]
            recs.append(f"{rule} ({ds}: {len(g)} on {series}, {days[0]}..{days[-1]}): {advice}.")
    if len(quarantine):
        top = quarantine.iloc[0]
        share = top["lines"] / quarantine["lines"].sum()
        if share >= 0.5:
            recs.append(f"Quarantine dominated by `{top['reason']}` ({top['lines']} lines, {share:.0%}, "
                        f"{top['first day']}..{top['last day']}; e.g. {top['example']}): fix the writer of that field, "
                        "then re-land the lines.")
    for day, score in low_days:
        recs.append(f"data_quality_score {score:.3f} on {day} (target > 0.95): see its completeness and validity "
                    "above; minutes without events while CME was open point to the collector.")
    return recs


def build_quality_report(store, period: Period, *, comprehensive: bool = False) -> Report:
    """The data quality report of ``period`` (see the module docstring for every rule and what blocks)."""
    from mia_pipeline.collection.gaps import CALENDAR
    from mia_pipeline.collection.quarantine import counts_by_reason

    page = Page(TITLE, f"{period} (UTC days) — calendar {CALENDAR}")
    days = period.days
    gaps, stored, first = _gaps(store, period)
    quarantine_days = counts_by_reason(store.layout, days)
    con, rows, damage = open_checked(store, period)
    figures: dict = {"days": len(days), "stored_days": len(stored)}
    if not rows and not stored and not quarantine_days and not gaps and not damage:
        con.close()
        figures.update(trading_days=sum(_day_kind(d) == "trading day" for d in days), gap_days=0, blocking=0)
        page.notice("warn", f"Nothing is stored for {period}: no partition, no quarantined line. There is no data "
                            "to judge (collect or import these days first, or choose another period).")
        return Report(KIND, TITLE, period, page, "no data", f"**{TITLE} {period}: NO DATA** — nothing stored.",
                      figures)
    try:
        per_day = {ds: dict(con.execute(f"SELECT strftime(day, '%Y-%m-%d'), count(*) FROM {ds} GROUP BY 1")
                            .fetchall()) for ds in rows}
        anomalies = find_anomalies(con)
        cons = consistency(con, period, None if comprehensive else EXAMPLES)
    finally:
        con.close()
    hurt = damaged_days(damage)  # damaged days are blocking problems already; their checks cannot read them
    checks = day_check_findings(store, [d for d in days if d not in hurt and d[:7] not in hurt])
    findings = [*cons, *checks]
    kinds = {d: _day_kind(d) for d in days}
    metrics = _metrics(store, days, hurt)

    # quarantine by reason
    total = Counter()
    span: dict[str, list[str]] = {}
    for day, counter in sorted(quarantine_days.items()):
        total.update(counter)
        for reason in counter:
            span.setdefault(reason, []).append(day)
    quarantine = pd.DataFrame([{"reason": r, "lines": n, "days": len(span[r]), "first day": span[r][0],
                                "last day": span[r][-1], "example": _reject_example(store.layout, span[r][0], r)}
                               for r, n in total.most_common()])

    low_days = [(d, m["data_quality_score"]) for d, m in metrics.items()
                if m and m.get("data_quality_score") is not None and m["data_quality_score"] < 0.95]
    problems = [f"damaged: {d}" for d in damage]
    problems += [f"gap: {d} is a trading day with no stored data" for d in gaps]
    problems += [f"{f.check} ({f.dataset}{', ' + f.day if f.day else ''}): {f.detail}"
                 + (f" [{', '.join(f.examples[:3])}]" if f.examples else "")
                 for f in findings if f.severity == BLOCKING]
    status = "problem" if problems else "ok"
    counts = anomalies["rule"].value_counts().to_dict() if len(anomalies) else {}
    figures.update(
        trading_days=sum(k == "trading day" for k in kinds.values()), gap_days=len(gaps),
        **{f"rows_{ds}": int(rows.get(ds, 0)) for ds in DATASETS},
        **{f"anomalies_{r}": int(counts.get(r, 0)) for r in ANOMALY_RULES}, anomalies=int(len(anomalies)),
        consistency_failures=sum(f.count for f in cons if f.severity != INFO),
        day_check_failures=len(checks), quarantined=int(sum(total.values())), blocking=len(problems),
        damaged=len(damage))

    # -- page
    page.raw(f"<p>Verdict: {status_span(status)}</p>")
    page.cards({"days": len(days), "trading days": figures["trading_days"], "gap days": len(gaps),
                "rows": sum(rows.values()), "anomalies": len(anomalies),
                "consistency failures": figures["consistency_failures"], "quarantined": figures["quarantined"],
                "blocking problems": len(problems)})
    if damage:
        page.notice("error", f"{len(damage)} stored partition(s) cannot be trusted and were left out of every figure "
                             f"below: {'; '.join(damage[:5])}{' ...' if len(damage) > 5 else ''} — {DAMAGE_ADVICE}.")
    if problems:
        page.notice("error", f"{len(problems)} blocking problem(s): " + "; ".join(problems[:5])
                    + (" ..." if len(problems) > 5 else ""))
    elif len(anomalies) or any(f.severity == WARNING for f in findings):
        page.notice("warn", "No blocking problem; warnings below.")
    else:
        page.notice("ok", "The data met every rule of this report: no gap, no anomaly, every consistency check "
                          "and day check passed.")

    page.h2("Completeness against the CME calendar")
    present = [ds for ds in DATASETS if ds in rows]
    table = []
    for d in days:
        m = metrics[d]
        row = {"day": d, "weekday": date.fromisoformat(d).strftime("%a"), "session": kinds[d]}
        row.update({ds: int(per_day[ds].get(d, 0)) for ds in present})
        row["stored"] = "yes" if d in stored else ("GAP" if d in gaps else "no")
        if m is None:
            row["quality score"] = row["completeness"] = "not computed"
        else:
            row["quality score"], row["completeness"] = m.get("data_quality_score"), m.get("completeness")
        table.append(row)
    if present:
        page.table([{"dataset": ds, "rows": int(rows[ds]), "days with rows": sum(1 for d in days if per_day[ds].get(d))}
                    for ds in present], caption="Rows per dataset over the period")
    listed = table if comprehensive or len(table) <= 62 else [r for r in table if r["stored"] != "no"]
    page.table(listed, caption="Rows per dataset and day (session from the CME calendar; score and completeness "
                               "from the collection metrics)")
    if len(listed) < len(table):
        page.p(f"{len(table) - len(listed):,} day(s) with nothing stored that are not gaps (no session, before the "
               "first stored day, or from today) are not listed; `--comprehensive` lists every day.")
    if first and first > period.start:
        page.p(f"Gaps are counted from {first}, the first day ever stored.")
    if gaps:
        page.notice("error", f"{len(gaps)} trading day(s) with no stored data: {', '.join(gaps[:20])}"
                    + (" ..." if len(gaps) > 20 else ""))
    if present:
        grid = pd.DataFrame({d: [per_day[ds].get(d, 0) for ds in present] for d in days}, index=present)
        _heatmap(page, grid, kinds, set(gaps))

    page.h2("Anomalies (warnings)")
    page.table([{"rule": r, "dataset": ds, "parameters": text, "found": int(counts.get(r, 0))}
                for r, (ds, text) in ANOMALY_RULES.items()], caption="Rules and what they found")
    for rule in ANOMALY_RULES:
        part = anomalies[anomalies["rule"] == rule] if len(anomalies) else anomalies
        if len(part):
            page.table(part.drop(columns=["rule"]).assign(ts=part["ts"].astype(str)), caption=f"{rule}: examples",
                       max_rows=None if comprehensive else TOP_ROWS)

    page.h2("Consistency")
    shown = pd.DataFrame([{"check": f.check, "dataset": f.dataset, "day": f.day or "period", "rows": f.count,
                           "severity": f.severity, "detail": f.detail, "examples": ", ".join(f.examples)}
                          for f in findings])
    if len(shown):
        page.table(shown, caption="Failed consistency and day checks (day checks from the rule table)",
                   max_rows=None if comprehensive else 50)
    else:
        page.notice("ok", "trades, exits and signals agree; every day check of the rule table passed.")

    page.h2("Quarantine")
    if len(quarantine):
        page.table(quarantine, caption=f"Quarantined lines by reason, {period}")
    else:
        page.p("No line of the period was quarantined.")

    page.h2("Recommendations")
    recs = _recommendations(gaps, findings, anomalies, quarantine, low_days, damage)
    if recs:
        page.bullets(recs)
    else:
        page.notice("ok", "The data met every rule: nothing to fix.")

    summary_rows = pd.DataFrame(
        ([{"finding": "gap days", "count": len(gaps), "severity": BLOCKING}] if gaps else [])
        + [{"finding": r, "count": int(n), "severity": WARNING} for r, n in counts.items()]
        + [{"finding": f"{f.check} ({f.dataset})", "count": f.count, "severity": f.severity} for f in findings])
    verdict = (f"**{TITLE} {period}: {status.upper()}** — "
               + (f"{len(problems)} blocking problem(s)." if problems else
                  ("no blocking problem." if len(summary_rows) else "the data met every rule.")))
    summary = verdict + ("\n\n" + md_table(summary_rows) if len(summary_rows) else "")
    return Report(KIND, TITLE, period, page, status, summary, figures, problems)
