"""Which contracts, bar sizes and data types are recorded, and which futures month is the front one.

Symbols come from the ``ibkr:`` settings: a six-letter pair in ``symbols`` (``EURUSD``) is a Forex
pair on IDEALPRO; anything else there, and every name in ``futures`` (``ES``, ``NQ``), is a CME
future whose month is chosen from IB's contract details: the nearest expiry that is more than
``roll_days`` away from the day in question (so the recorder and each backfilled day roll before
expiry, and a backfilled 2024 day uses the contract that was the front month then).

Data types (the guide's IBKR_DATA_CONFIG) map to IB's ``whatToShow``: BID_ASK → BID_ASK, TRADES and
VOLUME → TRADES (volume is a column of trade bars: one request serves both), VOLATILITY →
HISTORICAL_VOLATILITY. IB has no trades for FX (CASH): TRADES and VOLUME are refused up front for
a pair, with the reason, instead of being asked and failing with error 162.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ib_async import Contract, ContractDetails, Forex, Future

BAR_SIZES = {"1min": "1 min", "5min": "5 mins", "15min": "15 mins"}
BAR_SECONDS = {"1min": 60, "5min": 300, "15min": 900}
WHAT_TO_SHOW = {"BID_ASK": "BID_ASK", "TRADES": "TRADES", "VOLUME": "TRADES", "VOLATILITY": "HISTORICAL_VOLATILITY"}
FX_EXCHANGE, FUTURES_EXCHANGE = "IDEALPRO", "CME"
_PAIR = re.compile(r"[A-Z]{6}")


class ContractProblem(ValueError):
    """A contract IB does not know, or knows several of; the message names it and IB's answer."""


@dataclass(frozen=True)
class Instrument:
    """A recorded instrument by its settings name: ``EURUSD`` (FX) or ``ES`` (future)."""

    symbol: str
    kind: str  # "fx" | "future"

    @property
    def exchange(self) -> str:
        return FX_EXCHANGE if self.kind == "fx" else FUTURES_EXCHANGE

    def request(self) -> Contract:
        """The contract to ask IB about (every listed expiry, expired ones included, for futures)."""
        if self.kind == "fx":
            return Forex(self.symbol, exchange=FX_EXCHANGE)
        return Future(self.symbol, exchange=FUTURES_EXCHANGE, currency="USD", includeExpired=True)


@dataclass(frozen=True)
class Series:
    """One recorded series: an instrument in one bar size and one ``whatToShow``."""

    instrument: Instrument
    timeframe: str  # 1min | 5min | 15min
    what: str       # IB whatToShow

    @property
    def source(self) -> str:
        """The ``source`` of its market_bars rows: keeps BID_ASK and TRADES bars of one symbol apart."""
        return f"ibkr.{self.what.lower()}"

    @property
    def name(self) -> str:
        return f"{self.instrument.symbol}_{self.timeframe}_{self.what}"


def instrument(symbol: str, futures: tuple[str, ...] = ()) -> Instrument:
    symbol = symbol.strip().upper()
    if _PAIR.fullmatch(symbol) and symbol not in futures:
        return Instrument(symbol, "fx")
    return Instrument(symbol, "future")


def instruments(symbols: tuple[str, ...], futures: tuple[str, ...]) -> list[Instrument]:
    seen: dict[str, Instrument] = {}
    for s in (*symbols, *futures):
        seen.setdefault(s.strip().upper(), instrument(s, futures))
    return list(seen.values())


def refusal(inst: Instrument, data_type: str) -> str | None:
    """Why ``data_type`` cannot be had for ``inst`` (None when it can be asked for)."""
    if inst.kind == "fx" and WHAT_TO_SHOW.get(data_type) == "TRADES":
        return (f"{data_type} is not recorded for {inst.symbol}: IB has no trades for FX (CASH) pairs; "
                "record BID_ASK (and VOLATILITY) for pairs")
    return None


def plan_series(insts: list[Instrument], timeframes, data_types) -> tuple[list[Series], list[str]]:
    """Every (instrument, bar size, whatToShow) to record, deduplicated, and the refusals (one line each)."""
    series: dict[tuple, Series] = {}
    refused: list[str] = []
    for inst in insts:
        for dt in data_types:
            if why := refusal(inst, dt):
                refused.append(why)
                continue
            for tf in timeframes:
                s = Series(inst, tf, WHAT_TO_SHOW[dt])
                series.setdefault((inst.symbol, tf, s.what), s)
    return list(series.values()), list(dict.fromkeys(refused))


def expiry_of(details: ContractDetails) -> date:
    text = (details.realExpirationDate or details.contract.lastTradeDateOrContractMonth)[:8]
    return datetime.strptime(text, "%Y%m%d").date()


def front_month(details: list[ContractDetails], day: date, roll_days: int) -> Contract:
    """The contract to use on ``day``: the nearest expiry strictly later than ``day + roll_days``."""
    futures = sorted((d for d in details if d.contract and d.contract.secType == "FUT"), key=expiry_of)
    if not futures:
        raise ContractProblem("IB listed no futures contract")
    for d in futures:
        if expiry_of(d) > day + timedelta(days=roll_days):
            return d.contract
    last = futures[-1].contract
    raise ContractProblem(f"{last.symbol}: no listed expiry after {day + timedelta(days=roll_days)} "
                          f"(latest {last.lastTradeDateOrContractMonth})")


def single(inst: Instrument, details: list[ContractDetails]) -> Contract:
    """The one contract of an FX pair; an ambiguous answer names the candidates."""
    if len(details) != 1:
        names = ", ".join(sorted(f"{d.contract.localSymbol}@{d.contract.exchange}" for d in details))
        raise ContractProblem(f"{inst.symbol}: ambiguous, IB lists {len(details)} contracts ({names}); "
                              "name it more precisely")
    return details[0].contract
