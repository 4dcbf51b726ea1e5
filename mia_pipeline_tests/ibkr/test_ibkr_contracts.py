"""Contracts from settings: FX pairs, futures front month chosen from IB's contract details by expiry
and rolled before expiry, TRADES refused up front for FX, unknown/ambiguous contracts named."""

import asyncio
from datetime import date

import pytest
from ib_async import RequestError

from mia_pipeline.sources.ibkr.contracts import (
    ContractProblem,
    Instrument,
    front_month,
    instruments,
    plan_series,
    single,
)
from mia_pipeline.sources.ibkr.session import close, connect
from mia_pipeline_tests.fake_ibkr import FakeGateway, FakeMarket
from mia_pipeline_tests.fake_ibkr.market import Listed


def details_of(port: int, contract):
    async def go():
        ib = await connect("127.0.0.1", port, 3, 3)
        try:
            return await ib.reqContractDetailsAsync(contract)
        finally:
            close(ib)

    return asyncio.run(go())


def test_series_plan_refuses_trades_for_fx_and_serves_volume_from_trades():
    insts = instruments(("EURUSD", "GBPUSD"), ("ES",))
    assert [(i.symbol, i.kind, i.exchange) for i in insts] == [
        ("EURUSD", "fx", "IDEALPRO"), ("GBPUSD", "fx", "IDEALPRO"), ("ES", "future", "CME")]
    series, refused = plan_series(insts, ("5min",), ("BID_ASK", "TRADES", "VOLUME", "VOLATILITY"))
    names = sorted(s.name for s in series)
    assert names == ["ES_5min_BID_ASK", "ES_5min_HISTORICAL_VOLATILITY", "ES_5min_TRADES",
                     "EURUSD_5min_BID_ASK", "EURUSD_5min_HISTORICAL_VOLATILITY",
                     "GBPUSD_5min_BID_ASK", "GBPUSD_5min_HISTORICAL_VOLATILITY"]
    assert len(refused) == 4 and all("IB has no trades for FX" in r for r in refused)
    assert {s.source for s in series} == {"ibkr.bid_ask", "ibkr.trades", "ibkr.historical_volatility"}


@pytest.mark.parametrize(("day", "roll_days", "expected"), [
    (date(2025, 6, 2), 8, "ESM5"),    # June contract expires 2025-06-20: 18 days away
    (date(2025, 6, 12), 8, "ESU5"),   # 8 days before expiry: rolled to September
    (date(2025, 6, 12), 0, "ESM5"),   # no roll window: still June
    (date(2024, 3, 1), 8, "ESH4"),    # a 2024 day uses the contract that was the front month then
])
def test_front_month_from_several_expiries(gateway, day, roll_days, expected):
    details = details_of(gateway.port, Instrument("ES", "future").request())
    assert len(details) > 8  # the gateway lists every quarterly expiry, expired ones included
    assert front_month(details, day, roll_days).localSymbol == expected


def test_unknown_contract_is_ib_error_200(gateway):
    with pytest.raises(RequestError) as caught:
        details_of(gateway.port, Instrument("ZZ", "future").request())
    assert caught.value.code == 200 and "No security definition" in caught.value.message


def test_ambiguous_pair_names_the_candidates():
    twin = Listed(99, "EUR", "CASH", "", "IDEALPRO", "USD", "EUR.USD.X", "EUR.USD", "", "twin", 0.00005, 1.08)
    with FakeGateway(FakeMarket(extra=(twin,))) as gw:
        details = details_of(gw.port, Instrument("EURUSD", "fx").request())
    with pytest.raises(ContractProblem, match=r"EURUSD: ambiguous, IB lists 2 contracts \(EUR.USD.X@IDEALPRO, EUR.USD@IDEALPRO\)"):
        single(Instrument("EURUSD", "fx"), details)
