"""Historical backfill: one request per (series, UTC day), paced, retried, landed, never stored empty.

For each series (instrument × bar size × whatToShow) and each day of a range, ask IB for the bars of
that UTC day (``endDateTime`` = next midnight UTC, ``durationStr="86400 S"``, ``formatDate=2``,
``useRTH`` from ``market_hours_only``) through the :class:`~.pacing.PacingLimiter`, then land them in
``market_bars`` through :func:`~mia_pipeline.collection.typed_landing.land_rows` (validation, dedup,
atomic commit per day). Outcomes per (series, day):

- ``written``: bars landed (or already there: re-running a day is idempotent);
- ``failed``: no bars after ``attempts`` tries. An empty answer and a timeout (ib_async returns an
  empty list for both) are retried after ``retry_wait_s``, never stored as a complete empty day;
  IB errors 162 ("query returned no data", service errors) and 366 are retried too; a pacing
  violation backs off ``PACING_BACKOFF_S`` first. An unknown contract (error 200) fails its
  instrument's days with IB's message; the other instruments carry on;
- ``unavailable``: IB does not serve this data for this contract (162 "no historical market data",
  "no market data permissions", ...): recorded once in the :class:`Unavailable` registry and not
  asked again (``forget`` clears it);
- ``closed``: Saturdays, 25 December and 1 January (UTC), when FX and CME Globex do not trade: not
  asked, not stored.

A lost socket (``ConnectionError``) stops the run with :class:`BackfillAborted`; days already written stay written.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ib_async import RequestError

from mia_pipeline.collection.typed_landing import land_rows
from mia_pipeline.sources.ibkr.contracts import (
    BAR_SIZES,
    ContractProblem,
    Instrument,
    Series,
    front_month,
    single,
)
from mia_pipeline.sources.ibkr.convert import history_rows
from mia_pipeline.sources.ibkr.decode_errors import DECODE_ERRORS
from mia_pipeline.sources.ibkr.pacing import HistoricalRequest, PacingLimiter
from mia_pipeline.storage.atomic import atomic_write_json

DURATION = "86400 S"
PACING_BACKOFF_S = 60.0
UNAVAILABLE_HINTS = ("no historical market data", "no market data permissions", "not available",
                     "not supported", "invalid what to show", "not allowed")


class BackfillAborted(ConnectionError):
    """The connection was lost mid-run; ``results`` holds what was done before."""

    def __init__(self, message: str, results: list):
        super().__init__(message)
        self.results = results


class DamagedDayError(RuntimeError):
    """A day's stored partition is damaged (not merged into), or every bar was refused."""


@dataclass
class DayResult:
    series: Series
    day: date
    status: str  # written | failed | unavailable | closed
    rows: int = 0
    attempts: int = 0
    detail: str = ""


def is_closed(day: date) -> bool:
    return day.weekday() == 5 or (day.month, day.day) in ((12, 25), (1, 1))


def classify(code: int, message: str) -> str:
    """IB error → ``unavailable`` | ``pacing`` | ``no_contract`` | ``retry``."""
    text = message.lower()
    if code == 200:
        return "no_contract"
    if "pacing violation" in text or code == 100:
        return "pacing"
    if code == 162 and any(h in text for h in UNAVAILABLE_HINTS):
        return "unavailable"
    return "retry"


class Unavailable:
    """Series IB said it does not serve, kept in a JSON file: {series name: {code, message, since}}."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.entries: dict = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            self.entries = {}  # a damaged registry only costs one more request per series

    def get(self, series: Series) -> dict | None:
        return self.entries.get(series.name)

    def mark(self, series: Series, code: int, message: str) -> None:
        self.entries[series.name] = {"code": code, "message": message, "since": datetime.now(UTC).isoformat()}
        atomic_write_json(self.path, self.entries)

    def forget(self) -> int:
        n, self.entries = len(self.entries), {}
        if self.path.exists():
            atomic_write_json(self.path, {})
        return n


class Backfill:
    """Runs the requests; ``land(series, day, rows)`` stores a day's rows and returns rows landed."""

    def __init__(self, ib, limiter: PacingLimiter, land: Callable, unavailable: Unavailable, *, roll_days: int = 8,
                 request_timeout_s: float = 60, use_rth: bool = False, attempts: int = 3, retry_wait_s: float = 30.0):
        self.ib, self.limiter, self.land, self.unavailable = ib, limiter, land, unavailable
        self.roll_days, self.request_timeout_s, self.use_rth = roll_days, request_timeout_s, use_rth
        self.attempts, self.retry_wait_s = attempts, retry_wait_s
        self._details: dict[str, list | ContractProblem] = {}

    async def contract_for(self, inst: Instrument, day: date):
        if inst.symbol not in self._details:
            try:
                self._details[inst.symbol] = await self.ib.reqContractDetailsAsync(inst.request())
            except RequestError as exc:
                self._details[inst.symbol] = ContractProblem(f"{inst.symbol}: IB error {exc.code}: {exc.message}")
        details = self._details[inst.symbol]
        if isinstance(details, ContractProblem):
            raise details
        if not details:
            raise ContractProblem(f"{inst.symbol}: IB lists no contract for it")
        return single(inst, details) if inst.kind == "fx" else front_month(details, day, self.roll_days)

    async def run(self, series: list[Series], days: list[date], on_result: Callable | None = None) -> list[DayResult]:
        results: list[DayResult] = []
        for s in series:
            for day in days:
                try:
                    result = await self.one(s, day)
                except ConnectionError as exc:
                    raise BackfillAborted(f"the connection to IB was lost during {s.name} {day}: {exc}", results) from None
                results.append(result)
                if on_result:
                    on_result(result)
        return results

    async def _request(self, contract, end, s: Series):
        """``reqHistoricalDataAsync``, ended at once by an undecodable historical answer (:class:`Undecodable`)."""
        garbled = DECODE_ERRORS.waiter()
        request = asyncio.ensure_future(self.ib.reqHistoricalDataAsync(
            contract, end, DURATION, BAR_SIZES[s.timeframe], s.what, self.use_rth, 2, timeout=self.request_timeout_s))
        alarm = asyncio.ensure_future(garbled.wait())
        try:
            await asyncio.wait({request, alarm}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            DECODE_ERRORS.forget(garbled)
            alarm.cancel()
        if not request.done():
            request.cancel()
            raise Undecodable(DECODE_ERRORS.last)
        return request.result()

    async def one(self, s: Series, day: date) -> DayResult:
        if is_closed(day):
            return DayResult(s, day, "closed", detail="market closed (Saturday or 25 Dec / 1 Jan)")
        if known := self.unavailable.get(s):
            return DayResult(s, day, "unavailable", detail=f"IB error {known['code']}: {known['message']}")
        try:
            contract = await self.contract_for(s.instrument, day)
        except ContractProblem as exc:
            return DayResult(s, day, "failed", detail=str(exc))
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        req = HistoricalRequest(f"{contract.conId or contract.localSymbol}@{contract.exchange}", s.what,
                                end.strftime("%Y%m%d %H:%M:%S UTC"), DURATION, BAR_SIZES[s.timeframe])
        last = ""
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                await self.limiter.backoff(self.retry_wait_s * (attempt - 1))
            await self.limiter.acquire(req)
            try:
                bars = await self._request(contract, end, s)
            except Undecodable as exc:  # the same answer would come again: no retry, the reason now
                return DayResult(s, day, "failed", attempts=attempt,
                                 detail=f"IB's answer could not be decoded ({exc}); not retried: check the "
                                        "gateway's version (ib_async speaks API 157..178)")
            except RequestError as exc:
                kind = classify(exc.code, exc.message)
                last = f"IB error {exc.code}: {exc.message}"
                if kind == "unavailable":
                    self.unavailable.mark(s, exc.code, exc.message)
                    return DayResult(s, day, "unavailable", attempts=attempt, detail=last)
                if kind == "no_contract":
                    return DayResult(s, day, "failed", attempts=attempt, detail=f"{contract.localSymbol}: {last}")
                if kind == "pacing":
                    await self.limiter.backoff(PACING_BACKOFF_S)
                continue
            rows = history_rows(s, bars, int(start.timestamp() * 1000), int(end.timestamp() * 1000))
            if rows.num_rows == 0:
                last = (f"IB returned no bars for {day} (an empty answer, or no answer within "
                        f"{self.request_timeout_s:g} s)")
                continue
            try:
                landed = self.land(s, day, rows)
            except DamagedDayError as exc:
                return DayResult(s, day, "failed", attempts=attempt, detail=f"not written: {exc}")
            return DayResult(s, day, "written", rows=landed, attempts=attempt)
        return DayResult(s, day, "failed", attempts=self.attempts, detail=f"{last}; gave up after {self.attempts} tries")


class Undecodable(RuntimeError):
    """An answer to the request that ib_async could not decode (it would otherwise wait for its timeout)."""


def lander(layout, store, known_symbols: frozenset[str] | None, written: dict[str, set] | None = None):
    """A ``land`` callback storing rows with :func:`land_rows`; every (dataset, day) touched goes to
    ``written``. Returns the rows now stored for the request (new + already there); a day that is
    damaged on disk raises :class:`DamagedDayError`."""

    def land(s: Series, day: date, rows) -> int:
        report = land_rows(layout, store, "market_bar", rows, origin=f"ibkr-backfill/{s.name}",
                           known_symbols=known_symbols)
        if report.damaged:
            raise DamagedDayError("; ".join(report.damaged.values()))
        if written is not None:
            for ds, ds_days in report.days.items():
                written.setdefault(ds, set()).update(ds_days)
        if report.quarantined and not (report.landed or report.duplicates):
            raise DamagedDayError(f"every bar of {s.name} {day} was refused by validation "
                                  f"({dict(report.quarantined)}); see the quarantine of {day}")
        return sum(report.landed.values()) + sum(report.duplicates.values())

    return land
