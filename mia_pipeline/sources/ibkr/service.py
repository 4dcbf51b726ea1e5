"""The front doors' shared calls: plan a backfill from settings and run it on its own connection.

Used by `mia backfill ibkr` and the ``ibkr_history`` Dagster asset (one implementation, two doors).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from mia_pipeline.layout import Layout
from mia_pipeline.sources.ibkr.backfill import Backfill, DayResult, Unavailable, lander
from mia_pipeline.sources.ibkr.contracts import Series, instruments, plan_series
from mia_pipeline.sources.ibkr.pacing import PacingLimiter, RealClock
from mia_pipeline.sources.ibkr.session import close, connect


class PlanError(ValueError):
    """The requested symbols / bar sizes / data types select nothing that can be recorded."""


@dataclass
class Plan:
    series: list[Series]
    refused: list[str] = field(default_factory=list)


def unavailable_file(layout: Layout) -> Path:
    """Where the series IB does not serve are remembered: ``data/live/ibkr_unavailable.json``."""
    return layout.streaming_dir.parent / "ibkr_unavailable.json"


def plan(ibkr, symbols=None, timeframes=None, data_types=None, known_symbols=None) -> Plan:
    """Series to backfill from the ``ibkr:`` settings, narrowed by the given lists. Raises
    :class:`PlanError` when a symbol is not configured or nothing is left to ask for."""
    insts = instruments(tuple(ibkr.symbols), tuple(ibkr.futures))
    if symbols:
        names = {i.symbol for i in insts}
        unknown = [s for s in symbols if s.upper() not in names]
        if unknown:
            raise PlanError(f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not configured; "
                            f"configured: {', '.join(sorted(names))} (ibkr.symbols / ibkr.futures in mia.yaml)")
        insts = [i for i in insts if i.symbol in {s.upper() for s in symbols}]
    if known_symbols is not None:
        missing = [i.symbol for i in insts if i.symbol not in known_symbols]
        if missing:
            raise PlanError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in the top-level "
                            "symbols list, so their bars would be quarantined as unknown_symbol; add them to "
                            "`symbols:` in mia.yaml (or MIA_SYMBOLS)")
    series, refused = plan_series(insts, timeframes or ibkr.timeframes, data_types or ibkr.data_types)
    if not series:
        raise PlanError("nothing to backfill: " + ("; ".join(refused) or "no series selected"))
    return Plan(series, refused)


def run_backfill(ibkr, layout: Layout, store, series: list[Series], days: list[date], *,
                 known_symbols=None, on_result: Callable[[DayResult], None] | None = None,
                 written: dict | None = None, clock=None) -> list[DayResult]:
    """Connect, backfill ``series`` × ``days``, disconnect. Raises ``ConnectFailure`` (cannot connect)
    or ``BackfillAborted`` (connection lost; days before it are written)."""

    async def go() -> list[DayResult]:
        ib = await connect(ibkr.host, ibkr.port, ibkr.client_id, ibkr.connect_timeout_s)
        try:
            bf = Backfill(ib, PacingLimiter(clock or RealClock()), lander(layout, store, known_symbols, written),
                          Unavailable(unavailable_file(layout)), roll_days=ibkr.roll_days,
                          request_timeout_s=ibkr.request_timeout_s, use_rth=ibkr.market_hours_only,
                          retry_wait_s=ibkr.retry_wait_s)
            return await bf.run(series, days, on_result)
        finally:
            close(ib)

    return asyncio.run(go())
