"""The data quality report: each planted defect is found by its named rule, blocking ones make the status
"problem" with one line each, recommendations name what was found; a clean day is "ok" and says the data
met every rule; an empty period is "no data" without plots; the page is self-contained.

Days are landed through the landing zone and ingested (as the collector does). 2025-06-23 and 2025-06-25
are a Monday and a Wednesday; 2025-06-24 (a CME trading day) is left empty: a gap."""

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.reports.anomalies import PRICE_SPIKE, STALE_QUOTE, TIME_GAP, open_ms_between
from mia_pipeline.reports.base import Period
from mia_pipeline.reports.consistency import EXIT_WITHOUT_ENTRY
from mia_pipeline.reports.quality import build_quality_report
from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.guide_examples import make_event, to_line

MON, TUE, WED = "2025-06-23", "2025-06-24", "2025-06-25"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def at(day: str, hhmm: str, seconds: float = 0) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}:00+00:00") + timedelta(seconds=seconds)


def bars(day: str, start: str, n: int, skip=(), spike_at: int | None = None, seed: int = 1) -> bytes:
    """``n`` 1-minute ES bars from ``start`` (a random walk in quarter points), minutes in ``skip`` left out,
    the close of bar ``spike_at`` 3 % above the walk (and back at the next bar)."""
    rng = np.random.default_rng(seed)
    closes = 6000 + np.cumsum(rng.choice([-0.75, -0.5, -0.25, 0.25, 0.5, 0.75], n))
    if spike_at is not None:
        closes[spike_at] = round(closes[spike_at] * 1.03 * 4) / 4
    out, prev = b"", closes[0]
    for i, c in enumerate(closes):
        if i not in skip:
            t = at(day, start, 60 * i)
            out += to_line(make_event("market_bar", event_id=f"bar-{day}-{i}", timestamp=iso(t), open=float(prev),
                                      close=float(c), high=float(max(prev, c) + 0.25), low=float(min(prev, c) - 0.25),
                                      vwap=float(c), volume=float(1800 + rng.integers(0, 100))))
        prev = c
    return out


def ticks(day: str, start: str, n: int, stale=range(0)) -> bytes:
    """One ES tick a second; the quote moves every tick except over the indices in ``stale``."""
    out = b""
    for i in range(n):
        bid = 6000.0 if i in stale else 6000.0 + 0.25 * (i % 7)
        out += to_line(make_event("market_tick", event_id=f"tick-{day}-{i}", seq=i, timestamp=iso(at(day, start, i)),
                                  bid=bid, ask=bid + 0.25, last=bid))
    return out


def trade_pair(day: str) -> bytes:
    """A signal, the trade it led to 5 s later and its exit (consistent: long, exit above entry, pnl > 0)."""
    entry = at(day, "14:35", 15)
    tid = f"TRADE-{day}"
    return (to_line(make_event("signal", event_id=f"sig-{day}", signal_id=f"SIG-{day}",
                               timestamp=iso(entry - timedelta(seconds=5))))
            + to_line(make_event("trade", event_id=f"tr-{day}", trade_id=tid, timestamp=iso(entry)))
            + to_line(make_event("trade_exit", event_id=f"ex-{day}", trade_id=tid, entry_timestamp=iso(entry),
                                 timestamp=iso(entry + timedelta(minutes=20)))))


def land(layout, store, data: bytes) -> None:
    with open(layout.streaming_dir / "a.jsonl", "ab") as fh:
        fh.write(data)
    ingest_once(layout, store)


@pytest.fixture
def store(layout) -> PartitionStore:
    return PartitionStore(layout)


def html_is_self_contained(page_html: str) -> None:
    assert "http://" not in page_html and "https://" not in page_html
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page_html)
    assert all(s.startswith("data:image/png;base64,") for s in srcs)


@pytest.fixture
def planted(layout, store):
    """Monday: bars with a spike (minute 100) and a 20-minute hole while open (minutes 150-169), ticks with a
    160-second frozen quote, a consistent trade, an exit whose entry is in the period but was never stored,
    2 quarantined lines. Tuesday: nothing (a gap). Wednesday: bars around the daily halt (no gap: closed)."""
    orphan = make_event("trade_exit", event_id="ex-orphan", trade_id="T-ORPHAN",
                        entry_timestamp=iso(at(MON, "15:00")), timestamp=iso(at(MON, "15:10")))
    bad = b"".join(to_line(make_event("market_tick", seq=None, event_id=f"bad-{i}", timestamp=iso(at(MON, "14:40"))))
                   for i in range(2))
    land(layout, store, bars(MON, "14:30", 200, skip=range(150, 170), spike_at=100)
         + ticks(MON, "14:30", 300, stale=range(100, 260)) + trade_pair(MON) + to_line(orphan) + bad
         + bars(WED, "20:50", 10, seed=2) + bars(WED, "22:00", 12, seed=3).replace(b"bar-", b"bar2-"))
    return build_quality_report(store, Period(MON, WED))


def test_each_planted_defect_is_found_by_its_rule(planted):
    f = planted.figures
    assert f["anomalies_price_spike"] >= 1
    assert f["anomalies_time_gap"] == 1          # the Monday hole; the Wednesday halt is closed time
    assert f["anomalies_stale_quote"] == 1
    assert f["gap_days"] == 1
    assert f["quarantined"] == 2
    html = planted.page.html()
    for rule in (PRICE_SPIKE, TIME_GAP, STALE_QUOTE, EXIT_WITHOUT_ENTRY):
        assert rule in html
    assert "close 6" in html and "20.0 open minutes" in html and "unchanged over 160 ticks" in html


def test_blocking_problems_make_the_status_problem_one_line_each(planted):
    assert planted.status == "problem" and planted.exit_code == 1
    assert len(planted.problems) == 2
    assert planted.problems[0].startswith(f"gap: {TUE}")
    assert planted.problems[1].startswith(EXIT_WITHOUT_ENTRY) and "T-ORPHAN" in planted.problems[1]
    assert planted.figures["blocking"] == 2
    assert "PROBLEM" in planted.summary and "gap days" in planted.summary


def test_recommendations_are_derived_from_the_findings(planted):
    html = planted.page.html()
    recs = html.split("<h2>Recommendations</h2>", 1)[1]
    assert f"mia rebuild --date {TUE}" in recs and "mia collect status" in recs
    assert "T-ORPHAN" not in recs and EXIT_WITHOUT_ENTRY in recs
    assert "market data subscription" in recs              # stale quotes
    assert "Quarantine dominated by" in recs
    assert "met every rule" not in html


def test_the_page_is_self_contained_with_a_plot(planted):
    html = planted.page.html()
    html_is_self_contained(html)
    assert planted.page.images >= 1


def test_a_clean_day_is_ok_and_says_it_met_every_rule(layout, store):
    land(layout, store, bars(MON, "14:30", 200) + ticks(MON, "14:30", 120) + trade_pair(MON))
    report = build_quality_report(store, Period(MON, MON))
    assert report.status == "ok", report.problems
    assert report.problems == [] and report.figures["anomalies"] == 0 and report.figures["gap_days"] == 0
    html = report.page.html()
    assert "met every rule" in html and "met every rule" in report.summary
    html_is_self_contained(html)


def test_an_empty_period_is_no_data_without_plots(layout, store):
    report = build_quality_report(store, Period("2025-07-01", "2025-07-02"))
    assert report.status == "no data" and report.exit_code == 1
    html = report.page.html()
    assert "Nothing is stored" in html and "<img" not in html
    html_is_self_contained(html)


def test_open_time_between_skips_the_daily_halt():
    a, b = at(MON, "20:30"), at(MON, "22:30")     # halt 21:00-22:00 UTC (17-18 ET, summer)
    got = open_ms_between([int(a.timestamp() * 1000)], [int(b.timestamp() * 1000)])
    assert got.tolist() == [60 * 60_000]
