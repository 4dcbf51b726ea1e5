"""IB's historical-data pacing rules as a limiter, with an injectable clock.

Rules (IB, bars of 30 s or less; ``BID_ASK`` counts as two requests)::

    - no identical request (same contract, end, duration, bar size, whatToShow) within 15 s;
    - fewer than 6 requests for the same contract, exchange and whatToShow within 2 s;
    - at most 60 requests (weighted) in any 10 minutes.

``await limiter.acquire(request)`` waits (on the clock) until the request breaks no rule, then
books it. ``wait_s(request)`` says how long that would be without waiting. Times are the clock's
seconds; a :class:`FakeClock` makes a day of pacing run in milliseconds in tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

IDENTICAL_S = 15.0
BURST_S, BURST_MAX = 2.0, 5
WINDOW_S, WINDOW_MAX = 600.0, 60
MARGIN_S = 0.01  # step past a window edge, not onto it


class RealClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that jumps instead of sleeping (readable from other threads, e.g. the fake gateway)."""

    def __init__(self, start: float = 1_750_000_000.0):
        self.t = float(start)
        self.slept = 0.0

    def now(self) -> float:
        return self.t

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.t += seconds
            self.slept += seconds
        await asyncio.sleep(0)


@dataclass(frozen=True)
class HistoricalRequest:
    contract: str  # conId or local symbol, with the exchange
    what: str
    end: str
    duration: str
    bar_size: str

    @property
    def weight(self) -> int:
        return 2 if self.what == "BID_ASK" else 1

    @property
    def identity(self) -> tuple:
        return (self.contract, self.end, self.duration, self.bar_size, self.what)


class PacingLimiter:
    """Books historical requests so that none breaks IB's pacing rules. Memory: 10 minutes of requests."""

    def __init__(self, clock=None):
        self.clock = clock or RealClock()
        self._booked: deque[tuple[float, HistoricalRequest]] = deque()
        self.waited_s = 0.0
        self.issued = 0

    def _prune(self, now: float) -> None:
        while self._booked and now - self._booked[0][0] >= WINDOW_S:
            self._booked.popleft()

    def wait_s(self, req: HistoricalRequest, now: float | None = None) -> float:
        now = self.clock.now() if now is None else now
        self._prune(now)
        wait = 0.0
        for t, r in self._booked:
            if r.identity == req.identity:
                wait = max(wait, t + IDENTICAL_S - now)
        same = [t for t, r in self._booked if (r.contract, r.what) == (req.contract, req.what) and now - t < BURST_S]
        if len(same) >= BURST_MAX:
            wait = max(wait, same[-BURST_MAX] + BURST_S - now)
        total = sum(r.weight for _, r in self._booked)
        if total + req.weight > WINDOW_MAX:
            freed = 0
            for t, r in self._booked:  # oldest first: wait until enough weight has left the window
                freed += r.weight
                if total - freed + req.weight <= WINDOW_MAX:
                    wait = max(wait, t + WINDOW_S - now)
                    break
        return wait + MARGIN_S if wait > 0 else 0.0

    async def acquire(self, req: HistoricalRequest) -> None:
        while (wait := self.wait_s(req)) > 0:
            self.waited_s += wait
            await self.clock.sleep(wait)
        self._booked.append((self.clock.now(), req))
        self.issued += 1

    def backoff(self, seconds: float):
        """Sleep on the limiter's clock (after a pacing violation or an empty answer)."""
        self.waited_s += seconds
        return self.clock.sleep(seconds)
