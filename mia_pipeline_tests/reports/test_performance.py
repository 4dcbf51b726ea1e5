"""Battle Navale performance report (guide §5.2) on stored days built through the landing zone.

The main book, worked by hand (ES, stop distances in points, pnl net USD as the exits report it):

====  ====  =======  ==========  ========  ========================  ==========  =====  ====
id    side  pattern  confluence  regime    entry (UTC)               exit         pnl    R
====  ====  =======  ==========  ========  ========================  ==========  =====  ====
T1    BUY   A        0.65        TRENDING  Mon 2025-06-23 14:00      5010 14:30   +500   +1
T2    SELL  A        0.85        RANGING   Mon 2025-06-23 15:00      5020 15:30  -1000   -2
T3    BUY   B        0.95        TRENDING  Sun 2025-06-29 23:00      5010 +80m    +500   +2
T4    SELL  B        0.55        TRENDING  Tue 2025-07-01 14:00      4995 +10m    +250   +1
T5    BUY   A        0.65        TRENDING  Tue 2025-07-01 15:00      (open)
====  ====  =======  ==========  ========  ========================  ==========  =====  ====

plus an exit of ``T-OLD`` whose entry is not stored (excluded, counted). Closed 4, wins 3 -> 0.75
(Wilson [0.3006, 0.9544]); total 250, expectancy 62.5 (t, 3 df: [-1080.11, 1205.11]); profit factor
1250 / 1000 = 1.25; cumulative 500, -500, 0, 250 -> max drawdown 1000; mean R 0.5. Every entry is at 5000.
"""

import copy
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.layout import Layout, init_tree
from mia_pipeline.reports.base import Period, ReportError, open_period
from mia_pipeline.reports.performance import build_performance_report, equity_curve, performance_table
from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.guide_examples import TRADE_EXAMPLE, make_event, to_line

PERIOD = Period("2025-06-23", "2025-07-01")
BOOK = [  # id, action, pattern, confluence, regime, entry, exit price, minutes held, pnl, stop
    ("T1", "BUY", "A", 0.65, "TRENDING", "2025-06-23T14:00", 5010.0, 30, 500.0, 4990.0),
    ("T2", "SELL", "A", 0.85, "RANGING", "2025-06-23T15:00", 5020.0, 30, -1000.0, 5010.0),
    ("T3", "BUY", "B", 0.95, "TRENDING", "2025-06-29T23:00", 5010.0, 80, 500.0, 4995.0),
    ("T4", "SELL", "B", 0.55, "TRENDING", "2025-07-01T14:00", 4995.0, 10, 250.0, 5005.0),
    ("T5", "BUY", "A", 0.65, "TRENDING", "2025-07-01T15:00", None, 0, 0.0, 4990.0),
]


def iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry(tid, action, pattern, conf, regime, at, stop, signal_type="VIKINGS_ATTACK", symbol="ES") -> bytes:
    bn = copy.deepcopy(TRADE_EXAMPLE["battle_navale"]) | {"pattern": pattern, "confluence_score": conf,
                                                            "market_regime": regime, "signal_type": signal_type}
    rm = copy.deepcopy(TRADE_EXAMPLE["risk_management"]) | {"stop_loss": stop}
    return to_line(make_event("trade", event_id=f"in-{tid}", trade_id=tid, symbol=symbol, action=action,
                              quantity=1, price=5000.0, timestamp=iso(at), battle_navale=bn, risk_management=rm))


def exit_(tid, action, at, held_min, exit_price, pnl, symbol="ES") -> bytes:
    out = at + timedelta(minutes=held_min)
    return to_line(make_event("trade_exit", event_id=f"out-{tid}", trade_id=tid, symbol=symbol, quantity=1,
                              action="SELL" if action == "BUY" else "BUY", entry_price=5000.0,
                              exit_price=exit_price, entry_timestamp=iso(at), timestamp=iso(out), pnl=pnl,
                              holding_time_s=held_min * 60.0))


def book_lines(book=BOOK) -> bytes:
    lines = b""
    for tid, action, pattern, conf, regime, at, px, held, pnl, stop in book:
        t = datetime.fromisoformat(at).replace(tzinfo=UTC)
        lines += entry(tid, action, pattern, conf, regime, t, stop)
        if px is not None:
            lines += exit_(tid, action, t, held, px, pnl)
    return lines


def land(layout: Layout, data: bytes) -> PartitionStore:
    store = PartitionStore(layout)
    with open(layout.streaming_dir / "a.jsonl", "ab") as fh:
        fh.write(data)
    ingest_once(layout, store)
    return store


@pytest.fixture(scope="module")
def book_store(tmp_path_factory) -> PartitionStore:
    """The main book (+ the orphan exit), ingested once for the module; read only."""
    layout = Layout(tmp_path_factory.mktemp("perf") / "data")
    init_tree(layout)
    orphan = exit_("T-OLD", "BUY", datetime(2025, 6, 23, 9, 0, tzinfo=UTC), 60, 5001.0, 10.0)
    return land(layout, book_lines() + orphan)


@pytest.fixture(scope="module")
def book_report(book_store):
    return build_performance_report(book_store, PERIOD)


# -- figures ------------------------------------------------------------------------------------------------

def test_the_book_scores_as_worked_by_hand(book_report):
    f = book_report.figures
    assert book_report.status == "ok"
    assert book_report.problems == []
    assert (f["trades"], f["closed"], f["open"], f["wins"], f["orphan_exits"]) == (5, 4, 1, 3, 1)
    assert f["success_rate"] == 0.75
    assert f["success_ci_low"] == pytest.approx(0.3006, abs=1e-4)
    assert f["success_ci_high"] == pytest.approx(0.9544, abs=1e-4)
    assert f["total_pnl"] == 250.0
    assert f["expectancy"] == 62.5
    assert f["expectancy_ci_low"] == pytest.approx(-1080.11, abs=0.01)
    assert f["expectancy_ci_high"] == pytest.approx(1205.11, abs=0.01)
    assert f["profit_factor"] == 1.25
    assert f["profit_factor_inf"] is False
    assert f["max_drawdown"] == 1000.0
    assert f["mean_r"] == pytest.approx(0.5)
    assert (f["best_pattern"], f["worst_pattern"], f["patterns"]) == ("B", "A", 2)
    json.dumps(f, allow_nan=False)  # JSON-able: no NaN, no inf


def test_by_pattern(book_store):
    con, _ = open_period(book_store, PERIOD)
    df = performance_table(con, "pattern").set_index("group")
    a, b = df.loc["A"], df.loc["B"]
    assert (a["trades"], a["closed"], a["open"], a["wins"]) == (3, 2, 1, 1)
    assert (a["success_rate"], a["total_pnl"], a["profit_factor"], a["max_drawdown"], a["mean_r"]) == (
        0.5, -500.0, 0.5, 1000.0, -0.5)
    assert (b["closed"], b["wins"], b["success_rate"], b["total_pnl"], b["max_drawdown"], b["mean_r"]) == (
        2, 2, 1.0, 750.0, 0.0, 1.5)
    assert b["profit_factor"] == float("inf")
    assert bool(df["small_sample"].all())


def test_by_confluence_bucket_and_regime(book_store):
    con, _ = open_period(book_store, PERIOD)
    conf = performance_table(con, "confluence")
    assert list(conf["group"]) == ["[0.5, 0.6)", "[0.6, 0.7)", "[0.8, 0.9)", "[0.9, 1.0]"]
    assert list(conf["closed"]) == [1, 1, 1, 1]
    assert list(conf["open"]) == [0, 1, 0, 0]
    assert list(conf["expectancy"]) == [250.0, 500.0, -1000.0, 500.0]
    regime = performance_table(con, "regime").set_index("group")
    assert (regime.loc["TRENDING", "closed"], regime.loc["TRENDING", "total_pnl"]) == (3, 1250.0)
    assert (regime.loc["RANGING", "closed"], regime.loc["RANGING", "wins"]) == (1, 0)
    assert regime.loc["RANGING", "profit_factor"] == 0.0


def test_weeks_run_sunday_to_saturday_and_months_split_on_the_first(book_store):
    """T3 enters on Sunday 2025-06-29 23:00 UTC (the Globex week's open): its week is the one of
    2025-06-29, with T4 and T5 — not the ISO (Monday) week of T1 and T2."""
    con, _ = open_period(book_store, PERIOD)
    weeks = performance_table(con, "weekly")
    assert list(weeks["group"]) == ["2025-06-22", "2025-06-29"]
    assert list(weeks["trades"]) == [2, 3]
    assert list(weeks["total_pnl"]) == [-500.0, 750.0]
    months = performance_table(con, "monthly")
    assert list(months["group"]) == ["2025-06", "2025-07"]
    assert list(months["closed"]) == [3, 1]
    assert list(months["total_pnl"]) == [0.0, 250.0]
    assert list(months["open"]) == [0, 1]


def test_equity_curve_and_drawdown(book_store):
    con, _ = open_period(book_store, PERIOD)
    performance_table(con, "overall")
    curve = equity_curve(con)
    assert list(curve["equity"]) == [500.0, -500.0, 0.0, 250.0]
    assert list(curve["drawdown"]) == [0.0, -1000.0, -500.0, -250.0]


def test_monthly_timeframe_and_a_bad_one(book_store):
    html = build_performance_report(book_store, PERIOD, timeframe="monthly").page.html()
    assert "2025-07" in html and "Performance over time (monthly)" in html
    with pytest.raises(ReportError, match="timeframe"):
        build_performance_report(book_store, PERIOD, timeframe="daily")


# -- the page -----------------------------------------------------------------------------------------------

def test_the_page_is_self_contained(book_report):
    html = book_report.page.html()
    assert "http://" not in html and "https://" not in html
    srcs = re.findall(r'<img[^>]*src="([^"]*)"', html)
    assert len(srcs) == 3 == book_report.page.images          # equity+drawdown, pattern rates, confluence
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "small sample" in html
    assert "1 exit(s) in the period whose entry is not" in html
    assert "inf" in html                                       # pattern B's profit factor
    assert "| pattern |" in book_report.summary


def test_comprehensive_lists_every_trade_and_more_groups(book_store):
    html = build_performance_report(book_store, PERIOD, comprehensive=True).page.html()
    for tid in ("T1", "T2", "T3", "T4", "T5"):
        assert f"<td>{tid}</td>" in html
    assert "By symbol" in html and "By signal type" in html


# -- bad input ----------------------------------------------------------------------------------------------

def assert_no_data(report, says: str):
    assert report.status == "no data"
    assert report.exit_code == 1
    html = report.page.html()
    assert "<img" not in html
    assert says in html
    assert isinstance(report.figures, dict)
    assert report.figures["closed"] == 0
    json.dumps(report.figures, allow_nan=False)


def test_an_empty_period_has_no_data(layout):
    assert_no_data(build_performance_report(PartitionStore(layout), PERIOD), "no trade entry is stored")


def test_trades_without_exits_have_no_data(layout):
    store = land(layout, book_lines([row[:6] + (None,) + row[7:] for row in BOOK]))
    report = build_performance_report(store, PERIOD)
    assert_no_data(report, "5 trade(s) entered, none closed")
    assert (report.figures["trades"], report.figures["open"]) == (5, 5)


def test_only_exits_whose_entries_are_before_the_period(layout):
    store = land(layout, book_lines())
    assert_no_data(build_performance_report(store, Period("2025-06-30", "2025-06-30")), "exit(s) stored")


def test_a_single_trade_does_not_crash(layout):
    store = land(layout, book_lines(BOOK[:1]))
    report = build_performance_report(store, PERIOD, comprehensive=True)
    f = report.figures
    assert report.status == "ok"
    assert (f["closed"], f["wins"], f["success_rate"], f["expectancy"]) == (1, 1, 1.0, 500.0)
    assert f["success_ci_low"] == pytest.approx(0.2065, abs=1e-4)
    assert f["expectancy_ci_low"] is None and f["expectancy_ci_high"] is None
    assert f["profit_factor"] is None and f["profit_factor_inf"] is True
    assert f["max_drawdown"] == 0.0
    assert f["best_pattern"] == f["worst_pattern"] == "A"
    assert "<td>-</td>" in report.page.html()                  # the missing expectancy interval
    json.dumps(f, allow_nan=False)
