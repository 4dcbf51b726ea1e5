"""IB's historical pacing rules, as the limiter keeps them, on a fake clock (no real waiting).

Guards: identical requests 15 s apart, fewer than 6 per contract/whatToShow in 2 s, at most 60 per
10 minutes with BID_ASK counting double; and an independent check (the fake gateway's own rule
checker) never sees a violation from a long paced run.
"""

import asyncio

import pytest

from mia_pipeline.sources.ibkr.pacing import FakeClock, HistoricalRequest, PacingLimiter
from mia_pipeline_tests.fake_ibkr.handlers import Handlers


def req(n: int = 0, what: str = "TRADES", contract: str = "1@CME") -> HistoricalRequest:
    return HistoricalRequest(contract, what, f"2025010{n % 9 + 1} 00:00:00 UTC-{n}", "86400 S", "5 mins")


def booked_times(limiter: PacingLimiter, requests) -> list[float]:
    times = []

    async def go():
        for r in requests:
            await limiter.acquire(r)
            times.append(limiter.clock.now())

    asyncio.run(go())
    return times


def test_identical_request_waits_15_seconds():
    clock = FakeClock(0)
    t = booked_times(PacingLimiter(clock), [req(1), req(1)])
    assert t[1] - t[0] >= 15


def test_sixth_request_for_one_contract_within_2_seconds_waits():
    clock = FakeClock(0)
    t = booked_times(PacingLimiter(clock), [req(i) for i in range(6)])
    assert t[:5] == [0, 0, 0, 0, 0] and t[5] >= 2


def test_other_contracts_are_not_held_by_one_contracts_burst():
    clock = FakeClock(0)
    t = booked_times(PacingLimiter(clock), [req(i) for i in range(5)] + [req(0, contract="2@CME")])
    assert t[5] == 0


@pytest.mark.parametrize(("what", "allowed"), [("TRADES", 60), ("BID_ASK", 30)])
def test_at_most_60_weighted_requests_in_10_minutes(what, allowed):
    clock = FakeClock(0)
    contracts = [f"{i}@CME" for i in range(allowed + 1)]  # distinct contracts: only the 10-minute rule applies
    t = booked_times(PacingLimiter(clock), [req(0, what, c) for c in contracts])
    assert t[allowed - 1] == 0 and t[allowed] >= 600


def test_a_long_paced_run_never_breaks_the_gateways_independent_rules():
    clock = FakeClock(0)
    limiter = PacingLimiter(clock)
    checker = Handlers(gw=None)
    requests = [req(i % 7, what, f"{i % 3}@CME") for i in range(150) for what in ("BID_ASK", "TRADES")[i % 2:][:1]]
    violations = []

    async def go():
        for r in requests:
            await limiter.acquire(r)
            why = checker.pacing_violation(clock.now(), r.identity, (r.contract, r.what), r.weight)
            if why:
                violations.append(why)

    asyncio.run(go())
    assert violations == [] and limiter.issued == 150
    assert clock.now() >= (sum(r.weight for r in requests) - 60) / 60 * 600  # it really had to wait
