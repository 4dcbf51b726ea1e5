"""The live recorder: quotes, RTVolume trades, 5-s bars (and optional tick-by-tick) into the landing zone.

``LiveRecorder(ibkr_settings, streaming_dir).run(duration_s)``:

- connects (:func:`.session.connect`), resolves each instrument (FX pair; futures front month as of
  today, rolled ``roll_days`` before expiry); an unknown or ambiguous contract is reported with IB's
  error and the others carry on;
- subscribes ``reqMktData`` (generic tick 233 = RTVolume for futures; FX has no trades),
  ``reqRealTimeBars`` (5 s: MIDPOINT for FX, TRADES for futures) and, with ``tick_by_tick``,
  ``reqTickByTickData(BidAsk)``;
- writes ``market_tick`` events (bid/ask/last with sizes; ``seq`` orders ticks of one millisecond)
  and ``market_bar`` events (timeframe ``5s``, source ``ibkr.realtime``) to
  ``ibkr_<day>.jsonl``, flushed every ``flush_every_s``;
- IB 1100 (IB↔TWS lost) opens a gap; 1101 (restored, data lost) re-issues every subscription and
  closes it; 1102 (restored, data kept) closes it. A lost socket (nightly reset, gateway restart)
  opens a gap, reconnects with backoff (same client id; the next one only when IB says the id is
  still held, error 326) and re-issues every subscription. Every closed gap is written as a
  ``performance`` event (metric ``ibkr_data_gap_s``) and ``system_status`` events show the state;
- memory stays bounded: real-time bar lists are emptied as they are read, ib_async's tick lists are
  per packet, buffered lines are flushed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mia_pipeline.sources.ibkr.contracts import ContractProblem, front_month, instruments, single
from mia_pipeline.sources.ibkr.convert import bar_event, gap_event, quote_sides, status_event, tick_event
from mia_pipeline.sources.ibkr.landing_writer import EventFile
from mia_pipeline.sources.ibkr.session import ConnectFailure, close, connect

BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
MAX_CLIENT_ID_TRIES = 5
COMPONENT = "ibkr_recorder"


@dataclass
class Stats:
    ticks: int = 0
    bars: int = 0
    reconnects: int = 0
    resubscriptions: int = 0
    gaps: int = 0
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"recorded {self.ticks:,} ticks and {self.bars:,} 5-s bars; {self.reconnects} reconnect(s), "
                f"{self.resubscriptions} resubscription(s), {self.gaps} gap(s)")


class LiveRecorder:
    def __init__(self, ibkr, out_dir: Path, *, flush_every_s: float = 1.0, clock=time.time, say=print,
                 backoff_s: tuple[float, ...] = BACKOFF_S):
        self.cfg, self.clock, self.say, self.backoff_s = ibkr, clock, say, backoff_s
        self.flush_every_s = flush_every_s
        self.file = EventFile(out_dir)
        self.stats = Stats()
        self.client_id = ibkr.client_id
        self.ib = None
        self.contracts: dict[str, object] = {}  # symbol -> qualified contract
        self.symbol_of: dict[int, str] = {}      # conId -> symbol
        self._subs: list = []
        self._gap: tuple[int, str] | None = None  # (start ms, cause)
        self._seq: tuple[str, int, int] = ("", 0, 0)
        self._lost = asyncio.Event()
        self._stopping = False

    # ------------------------------------------------------------------ connection
    async def _connect(self) -> None:
        for _ in range(MAX_CLIENT_ID_TRIES):
            try:
                self.ib = await connect(self.cfg.host, self.cfg.port, self.client_id, self.cfg.connect_timeout_s)
                break
            except ConnectFailure as exc:
                if exc.reason != "client_id_in_use":
                    raise
                self.say(f"client id {self.client_id} is still held; trying {self.client_id + 1}")
                self.client_id += 1
        else:
            raise ConnectFailure("client_id_in_use", f"client ids {self.cfg.client_id}..{self.client_id} are all in use")
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._on_disconnect
        self.ib.pendingTickersEvent += self._on_tickers
        self.ib.barUpdateEvent += self._on_bar

    async def _resolve(self) -> None:
        today = datetime.now(UTC).date()
        for inst in instruments(tuple(self.cfg.symbols), tuple(self.cfg.futures)):
            try:
                details = await self.ib.reqContractDetailsAsync(inst.request())
                if not details:
                    raise ContractProblem(f"{inst.symbol}: IB lists no contract for it")
                c = single(inst, details) if inst.kind == "fx" else front_month(details, today, self.cfg.roll_days)
            except ContractProblem as exc:
                self._problem(str(exc))
                continue
            except Exception as exc:  # RequestError: IB's code and message
                if isinstance(exc, ConnectionError):
                    raise
                self._problem(f"{inst.symbol}: IB error {getattr(exc, 'code', '?')}: {getattr(exc, 'message', exc)}")
                continue
            self.contracts[inst.symbol] = (inst, c)
            self.symbol_of[c.conId] = inst.symbol

    def _problem(self, line: str) -> None:
        if line not in self.stats.problems:
            self.stats.problems.append(line)
            self.say(f"not recorded: {line}")

    def _subscribe(self) -> None:
        ib, self._subs = self.ib, []
        for inst, c in self.contracts.values():
            self._subs.append(("mkt", c, ib.reqMktData(c, "" if inst.kind == "fx" else "233", False, False)))
            what = "MIDPOINT" if inst.kind == "fx" else "TRADES"
            self._subs.append(("rtb", c, ib.reqRealTimeBars(c, 5, what, self.cfg.market_hours_only)))
            if self.cfg.tick_by_tick:
                self._subs.append(("tbt", c, ib.reqTickByTickData(c, "BidAsk")))

    def _resubscribe(self) -> None:
        for kind, c, handle in self._subs:
            try:
                if kind == "mkt":
                    self.ib.cancelMktData(c)
                elif kind == "rtb":
                    self.ib.cancelRealTimeBars(handle)
                else:
                    self.ib.cancelTickByTickData(c, "BidAsk")
            except Exception:  # noqa: BLE001 - a subscription IB already dropped
                pass
        self._subscribe()
        self.stats.resubscriptions += 1

    # ------------------------------------------------------------------ events
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _next_seq(self, symbol: str, ms: int) -> int:
        last_symbol, last_ms, seq = self._seq
        seq = seq + 1 if (last_symbol, last_ms) == (symbol, ms) else 0
        self._seq = (symbol, ms, seq)
        return seq

    def _on_tickers(self, tickers) -> None:
        ms = self._now_ms()
        for t in tickers:
            symbol = self.symbol_of.get(t.contract.conId)
            if symbol is None:
                continue
            traded = [k for k in t.ticks if k.tickType in (4, 48, 77)] + [
                k for k in t.tickByTicks if hasattr(k, "size") and hasattr(k, "price")]
            last = traded[-1] if traded else None
            # ib_async turns a tick-by-tick quote's price or size <= 0 into an empty side: the raw quote is
            # taken instead (an empty side is one with size 0), so an anomaly reaches validation as sent
            raw = [k for k in t.tickByTicks if hasattr(k, "bidPrice")]
            quote = quote_sides(raw[-1]) if raw else (t.bid, t.ask, t.bidSize, t.askSize)
            event = tick_event(symbol, ms, self._next_seq(symbol, ms), bid=quote[0], ask=quote[1],
                               bid_size=quote[2], ask_size=quote[3], last=last.price if last else None,
                               last_size=last.size if last else None)
            if event:
                self.file.add(event)
                self.stats.ticks += 1

    def _on_bar(self, bars, has_new: bool) -> None:
        if not hasattr(bars, "realTimeBarsOptions"):
            return  # keepUpToDate historical bars are not used by the recorder
        symbol = self.symbol_of.get(bars.contract.conId)
        for b in list(bars):
            if symbol:
                ms = int(b.time.timestamp() * 1000)
                self.file.add(bar_event(symbol, ms, b.open_, b.high, b.low, b.close, b.volume, b.wap, b.count))
                self.stats.bars += 1
        del bars[:]  # read: the list would otherwise grow for the whole run

    def _on_error(self, req_id, code, message, contract) -> None:
        if code == 1100:
            self._gap_start("1100", message)
        elif code in (1101, 1102):
            resub = code == 1101
            if resub:
                self._resubscribe()
            self._gap_end(str(code), resub)
        elif code == 1300:
            self._lost.set()

    def _on_disconnect(self) -> None:
        if not self._stopping:
            self._gap_start("socket", "the connection to TWS / IB Gateway was lost")
            self._lost.set()

    def _gap_start(self, cause: str, message: str) -> None:
        if self._gap is None:
            self._gap = (self._now_ms(), cause)
        self.file.add(status_event(COMPONENT, "degraded", f"data gap: {message}", self._now_ms()))
        self.file.flush()
        self.say(f"gap started ({cause}): {message}")

    def _gap_end(self, cause: str, resubscribed: bool) -> None:
        ms = self._now_ms()
        if self._gap is not None:
            start, first_cause = self._gap
            self.file.add(gap_event(start, ms, f"{first_cause}->{cause}", resubscribed))
            self.stats.gaps += 1
            self._gap = None
        self.file.add(status_event(COMPONENT, "ok", f"data flowing again ({cause}; resubscribed: {resubscribed})", ms))
        self.file.flush()
        self.say(f"gap closed ({cause}); resubscribed: {resubscribed}")

    # ------------------------------------------------------------------ run
    async def _reconnect(self, deadline: float | None) -> bool:
        close(self.ib)
        for i in range(10**9):
            wait = self.backoff_s[min(i, len(self.backoff_s) - 1)]
            if deadline is not None and time.monotonic() + wait >= deadline:
                return False
            await asyncio.sleep(wait)
            try:
                await self._connect()
            except ConnectFailure as exc:
                self.say(f"reconnect failed ({exc.reason}); retrying")
                continue
            self.stats.reconnects += 1
            self._subscribe()
            self.stats.resubscriptions += 1
            self._gap_end("reconnected", True)
            return True
        return False

    async def run(self, duration_s: float | None = None) -> Stats:
        deadline = None if duration_s is None else time.monotonic() + duration_s
        await self._connect()
        try:
            await self._resolve()
            if not self.contracts:
                raise ConnectFailure("not_ib", "no configured contract could be resolved: "
                                     + "; ".join(self.stats.problems))
            self._subscribe()
            self.file.add(status_event(COMPONENT, "running", f"recording {', '.join(self.contracts)}", self._now_ms()))
            while deadline is None or time.monotonic() < deadline:
                left = self.flush_every_s if deadline is None else min(self.flush_every_s, deadline - time.monotonic())
                try:
                    await asyncio.wait_for(self._lost.wait(), max(left, 0.0))
                except TimeoutError:
                    pass
                self.file.flush()
                if self._lost.is_set():
                    self._lost.clear()
                    if not await self._reconnect(deadline):
                        break
        finally:
            self._stopping = True
            self.file.add(status_event(COMPONENT, "stopped", str(self.stats), self._now_ms()))
            self.file.close()
            close(self.ib)
        return self.stats


def run_recorder(ibkr, layout, *, duration_s: float | None = None, flush_every_s: float = 1.0, say=print) -> Stats:
    """Record until ``duration_s`` elapses (or Ctrl-C); returns what was recorded."""
    recorder = LiveRecorder(ibkr, layout.streaming_dir, flush_every_s=flush_every_s, say=say)
    return asyncio.run(recorder.run(duration_s))
