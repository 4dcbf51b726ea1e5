"""Historical backfill against the fake gateway: bars land in market_bars through validation, dedup and
one atomic commit per day; an empty or missing answer is retried and finally a failed day, never an
empty day stored as complete; 162/200 handled; "not available" is asked once; pacing holds."""

import asyncio
from datetime import date, timedelta

import pyarrow.compute as pc
import pytest

from mia_pipeline.collection.rebuild import rebuild_day
from mia_pipeline.sources.ibkr.backfill import Backfill, Unavailable, lander
from mia_pipeline.sources.ibkr.contracts import instruments, plan_series
from mia_pipeline.sources.ibkr.pacing import FakeClock, PacingLimiter
from mia_pipeline.sources.ibkr.service import run_backfill
from mia_pipeline.sources.ibkr.session import close, connect
from mia_pipeline.storage import PartitionStore

MON, TUE, SAT = date(2025, 6, 23), date(2025, 6, 24), date(2025, 6, 21)


@pytest.fixture
def store(layout):
    return PartitionStore(layout)


def backfill(gateway, layout, store, symbols, whats, days, *, timeout=2.0, attempts=3, clock=None):
    clock = clock or FakeClock()
    gateway.clock = clock
    written: dict = {}
    series, _ = plan_series(instruments(tuple(s for s in symbols if len(s) == 6), tuple(s for s in symbols if len(s) != 6)),
                            ("5min",), whats)

    async def go():
        ib = await connect("127.0.0.1", gateway.port, 4, 3)
        try:
            bf = Backfill(ib, PacingLimiter(clock), lander(layout, store, None, written),
                          Unavailable(layout.root / "live" / "ibkr_unavailable.json"), request_timeout_s=timeout,
                          attempts=attempts, retry_wait_s=5)
            return await bf.run(series, days)
        finally:
            close(ib)

    return asyncio.run(go()), written


def bars_of(store, day, source="ibkr.bid_ask", symbol="EURUSD"):
    t = store.read(day, "market_bars")
    if t is None:
        return 0
    return t.filter(pc.and_(pc.equal(t["source"], source), pc.equal(t["symbol"], symbol))).num_rows


def test_bars_land_once_and_rebuild_from_raw_lines(gateway, layout, store):
    results, written = backfill(gateway, layout, store, ["EURUSD"], ["BID_ASK"], [SAT, MON])
    assert [(r.day, r.status, r.rows) for r in results] == [(SAT, "closed", 0), (MON, "written", 288)]
    assert written == {"market_bars": {"2025-06-23"}, "raw_events": {"2025-06-23"}}
    t = store.read(MON, "market_bars")
    assert t.num_rows == 288 and set(t["timeframe"].to_pylist()) == {"5min"}
    assert min(t["volume"].to_pylist()) == 0.0 and t["vwap"].null_count == 288  # IB's -1 are not negative values
    assert store.read(SAT, "market_bars") is None  # a closed day is not stored as an empty complete day
    again, written = backfill(gateway, layout, store, ["EURUSD"], ["BID_ASK"], [MON])
    assert again[0].status == "written" and store.read(MON, "market_bars").num_rows == 288  # idempotent
    assert written == {}  # nothing new: no day rewritten
    assert rebuild_day(store, MON)["market_bars"] == 288  # raw lines kept: the UI's rebuild keeps the bars


def test_empty_answers_and_timeouts_are_retried_then_a_failed_day(gateway, layout, store):
    gateway.fail_next("EURUSD", "BID_ASK", "empty", "hang", "empty")
    results, _ = backfill(gateway, layout, store, ["EURUSD"], ["BID_ASK"], [MON, TUE], timeout=0.5)
    mon, tue = results
    assert (mon.status, mon.attempts) == ("failed", 3) and "gave up after 3 tries" in mon.detail
    assert "IB returned no bars" in mon.detail or "HMDS query returned no data" in mon.detail
    assert bars_of(store, MON) == 0 and store.read(MON, "market_bars") is None  # never an empty "complete" day
    assert tue.status == "written" and bars_of(store, TUE) == 288


def test_162_service_error_is_retried_and_succeeds(gateway, layout, store):
    gateway.fail_next("EURUSD", "BID_ASK", (162, "Historical Market Data Service error message:API historical "
                                                 "data query cancelled: 1"))
    (r,), _ = backfill(gateway, layout, store, ["EURUSD"], ["BID_ASK"], [MON])
    assert (r.status, r.attempts, r.rows) == ("written", 2, 288)


def test_not_available_is_recorded_once_and_not_asked_again(gateway, layout, store):
    results, _ = backfill(gateway, layout, store, ["EURUSD"], ["VOLATILITY"], [MON, TUE])
    assert [r.status for r in results] == ["unavailable", "unavailable"]
    assert len(gateway.history_log) == 1  # asked for the first day only
    results, _ = backfill(gateway, layout, store, ["EURUSD"], ["VOLATILITY"], [MON])
    assert results[0].status == "unavailable" and len(gateway.history_log) == 1  # remembered across runs
    assert "No historical market data" in results[0].detail


def test_unknown_contract_fails_its_days_and_the_others_carry_on(gateway, layout, store):
    results, _ = backfill(gateway, layout, store, ["ZZ", "ES"], ["TRADES"], [MON])
    by_symbol = {r.series.instrument.symbol: r for r in results}
    assert by_symbol["ZZ"].status == "failed" and "ZZ: IB error 200: No security definition" in by_symbol["ZZ"].detail
    assert by_symbol["ES"].status == "written" and bars_of(store, MON, "ibkr.trades", "ES") == 288


def test_a_paced_multi_contract_run_breaks_no_pacing_rule(gateway, layout, store):
    clock = FakeClock()
    days = [date(2025, 6, 2) + timedelta(days=i) for i in range(21)]
    results, _ = backfill(gateway, layout, store, ["EURUSD", "ES"], ["BID_ASK", "TRADES"], days, clock=clock)
    asked = [r for r in results if r.status != "closed"]
    assert all(r.status == "written" for r in asked) and len(asked) == 54
    assert gateway.violations == [] and len(gateway.history_log) == 54
    # 18 open days x (BID_ASK 2 + BID_ASK 2 + TRADES 1) = 90 > 60 per 10 minutes: the run had to wait
    assert gateway.history_log[-1][0] - gateway.history_log[0][0] >= 600


def test_cli_path_connects_with_settings(gateway, layout, store, ibkr_cfg):
    gateway.clock = FakeClock()
    results = run_backfill(ibkr_cfg(symbols=("EURUSD",), futures=(), data_types=("BID_ASK",), timeframes=("15min",)),
                           layout, store, plan_series(instruments(("EURUSD",), ()), ("15min",), ("BID_ASK",))[0],
                           [MON], clock=gateway.clock)
    assert [(r.status, r.rows) for r in results] == [("written", 96)]


def test_an_undecodable_answer_fails_the_day_at_once_with_the_reason(gateway, layout, store, capfd):
    """Issue 25 (12): an answer ib_async cannot decode cost the request timeout times the tries (272 s a
    day) with no reason, and printed a traceback per message. Now: one try, the reason, no traceback."""
    import time

    gateway.fail_next("EURUSD", "BID_ASK", "garbage")
    t0 = time.monotonic()
    results, _ = backfill(gateway, layout, store, ["EURUSD"], ["BID_ASK"], [MON, TUE], timeout=30)
    mon, tue = results
    assert time.monotonic() - t0 < 15  # not 3 x 30 s
    assert (mon.status, mon.attempts) == ("failed", 1) and "could not be decoded" in mon.detail
    assert "historicalData" in mon.detail or "Error handling fields: [" in mon.detail
    assert store.read(MON, "market_bars") is None
    assert tue.status == "written" and bars_of(store, TUE) == 288  # the next day goes on
    err = capfd.readouterr().err
    assert "Traceback" not in err


def test_damaged_historical_bars_are_quarantined_with_their_reason_and_the_rest_lands(gateway, layout, store):
    """Issue 25 (9, 13): each anomaly in IB's answer is one quarantined bar with its reason; the day's other
    bars land once, and asking again adds nothing."""
    from mia_pipeline.collection.quarantine import read_rejects

    damage = {3: ("nan", 1.2, 1.0, 1.1, -1, -1, -1), 5: (1.1, 1.2, 1.0, 1.1, -500, -1, -1),
              7: (1.1, 1.0, 1.2, 1.1, -1, -1, -1), 9: (1.1, 1.2, 1.0, 1e300, -1, -1, -1),
              11: (1.1, 1.2, 1.0, 0.0, -1, -1, -1), 13: (1.1, "inf", 1.0, 1.1, -1, -1, -1)}
    gateway.fail_next("EURUSD", "BID_ASK", damage)
    [mon], _ = backfill(gateway, layout, store, ["EURUSD"], ["BID_ASK"], [MON])
    assert (mon.status, mon.rows) == ("written", 288 - len(damage))
    assert bars_of(store, MON) == 288 - len(damage)
    reasons = sorted(read_rejects(layout, MON.isoformat())["reason"].to_pylist())
    assert reasons == sorted(["non_finite_number", "invalid_quantity", "inconsistent_bar", "invalid_price",
                              "invalid_price", "non_finite_number"])
    [again], _ = backfill(gateway, layout, store, ["EURUSD"], ["BID_ASK"], [MON])
    assert again.status == "written" and bars_of(store, MON) == 288  # the clean answer fills the gaps, once
    assert read_rejects(layout, MON.isoformat()).num_rows == len(damage)
