"""A fake TWS / IB Gateway on 127.0.0.1 speaking the real socket protocol to the real ib_async client.

It does what the recorder and the backfill meet in production: the version handshake, managed
accounts and next valid id, the start-up sync replies (positions, orders, account, executions),
contract details with several futures expiries, historical bars with IB's pacing rules enforced
(violations answered with error 162, as IB does), streaming quotes with RTVolume, 5-second real-time
bars, tick-by-tick, status codes 1100/1101/1102 and farm messages, errors 162/200/326, dropping every
socket and restarting on the same port. It also misbehaves on request: ``mode="silent"`` accepts and
never answers, ``"garbage"`` answers bytes that are not the protocol, ``"http"`` answers like a web
server (a port that is not IB).

The gateway runs its own event loop in a thread; every public method is thread-safe and bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mia_pipeline_tests.fake_ibkr.handlers import Handlers
from mia_pipeline_tests.fake_ibkr.market import FakeMarket
from mia_pipeline_tests.fake_ibkr.wire import WireError, frame, read_hello, read_message

CALL_TIMEOUT_S = 10.0


class GatewayError(RuntimeError):
    """The fake gateway could not do what a test asked (e.g. it did not start)."""


@dataclass
class Subscription:
    kind: str  # "mkt" | "rtb" | "tbt"
    req_id: int
    contract: object  # market.Listed
    detail: str = ""  # generic ticks, whatToShow or tick-by-tick type


@dataclass
class Session:
    """One client connection."""

    writer: asyncio.StreamWriter
    client_id: int | None = None
    subs: dict[int, Subscription] = field(default_factory=dict)

    def send(self, *fields) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame(*fields))


class FakeGateway:
    """``with FakeGateway() as gw: IB().connect("127.0.0.1", gw.port, clientId=1)``."""

    def __init__(self, market: FakeMarket | None = None, *, server_version: int = 176,
                 accounts: tuple[str, ...] = ("DU1234567",), clock: Callable[[], float] = time.time,
                 mode: str = "normal"):
        self.market = market or FakeMarket()
        self.server_version = server_version
        self.accounts = accounts
        self.clock = clock
        self.mode = mode
        self.held_client_ids: set[int] = set()   # ids "still held" by a ghost session: answered with 326
        self.farms_broken = False                 # connect-time farm messages say broken (2103/2105/2157)
        self.enforce_pacing = True
        self.script: dict[tuple[str, str], deque] = {}  # (symbol, whatToShow) -> "empty"|"hang"|(code, msg)
        self.unavailable = {("CASH", "TRADES"), ("CASH", "HISTORICAL_VOLATILITY")}
        self.history_log: list[tuple[float, tuple]] = []  # (clock time, request key) of each historical request
        self.violations: list[str] = []
        self.connections = 0
        self.sim_time = int(self.clock())  # streaming time (advances 5 s per step)
        self.sessions: list[Session] = []
        self.port = 0
        self.handlers = Handlers(self)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-ib-gateway", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._stream_task: asyncio.Task | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> FakeGateway:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=CALL_TIMEOUT_S)

    def __enter__(self) -> FakeGateway:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def restart(self, down_s: float = 0.0) -> None:
        """Close the listener and every socket (a gateway restart / IB's nightly reset), then listen
        again on the same port after ``down_s`` seconds."""
        self._call(self._shutdown())
        if down_s:
            time.sleep(down_s)
        self._call(self._listen())

    def drop_clients(self) -> None:
        """Close every client socket; keep listening (a network blip)."""
        self._call(self._drop())

    def status(self, code: int, message: str = "") -> None:
        """Send a connectivity message (1100/1101/1102, farm codes) to every client, reqId -1."""
        self._run(lambda: [s.send(4, 2, -1, code, message or STATUS_TEXT.get(code, ""), "") for s in self.sessions])

    def stream(self, steps: int = 1) -> None:
        """Emit ``steps`` rounds of data to every subscription (quotes, RTVolume, 5-s bars, tick-by-tick)."""
        self._run(lambda: [self.handlers.stream_step() for _ in range(steps)])

    def send_to(self, kind: str, *fields) -> int:
        """Send one raw message to every ``kind`` subscription ("mkt", "rtb", "tbt"), ``"{req}"`` in
        ``fields`` standing for its request id: odd or hostile values exactly as the wire would carry them.
        Returns how many subscriptions got it."""
        def go():
            subs = [(s, sub) for s in self.sessions for sub in s.subs.values() if sub.kind == kind]
            for s, sub in subs:
                s.send(*(sub.req_id if f == "{req}" else f for f in fields))
            return len(subs)
        return self._run(go)

    def stream_every(self, interval_s: float | None) -> None:
        """Stream one round every ``interval_s`` seconds in the background (None stops)."""
        self._call(self._set_streaming(interval_s))

    def subscriptions(self) -> list[Subscription]:
        return self._call(self._subs())

    def fail_next(self, symbol: str, what: str, *outcomes) -> None:
        """Script the next historical answers for (symbol, whatToShow): ``"empty"``, ``"hang"``,
        ``"garbage"`` (undecodable fields), ``(code, message)`` or ``{bar index: (open, high, low, close, volume,
        wap, count)}`` (the normal answer with those bars replaced, values as the wire carries them); normal
        answers resume once the script is used up."""
        self.script.setdefault((symbol, what), deque()).extend(outcomes)

    # ------------------------------------------------------------------ loop side
    def _call(self, coro):
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=CALL_TIMEOUT_S)
        except TimeoutError as exc:
            raise GatewayError("the fake gateway did not answer in time") from exc

    def _run(self, fn):
        async def go():
            return fn()
        return self._call(go())

    async def _subs(self):
        return [sub for s in self.sessions for sub in s.subs.values()]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _drop(self) -> None:
        for s in list(self.sessions):
            s.writer.close()
        self.sessions.clear()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._drop()

    async def _set_streaming(self, interval_s: float | None) -> None:
        if self._stream_task is not None:
            self._stream_task.cancel()
            self._stream_task = None
        if interval_s:
            async def pump():
                while True:
                    await asyncio.sleep(interval_s)
                    self.handlers.stream_step()
            self._stream_task = asyncio.ensure_future(pump())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        session = Session(writer)
        try:
            await read_hello(reader)
            if self.mode == "silent":
                await reader.read()  # accept, read, never answer
                return
            if self.mode == "http":
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            if self.mode == "garbage":
                writer.write(b"\x00\x00\x00\x09\xff\xfegarbage\x00" * 3)
                await writer.drain()
                await reader.read()
                return
            stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y%m%d %H:%M:%S UTC")
            session.send(self.server_version, stamp)
            self.sessions.append(session)
            while True:
                fields = await read_message(reader)
                if fields and not self.handlers.handle(session, fields):
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, WireError, ValueError):
            return
        finally:
            if session in self.sessions:
                self.sessions.remove(session)
            writer.close()


STATUS_TEXT = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and TWS has been restored- data lost.",
    1102: "Connectivity between IB and TWS has been restored- data maintained.",
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2106: "HMDS data farm connection is OK:ushmds",
    2157: "Sec-def data farm connection is broken:secdefil",
    2158: "Sec-def data farm connection is OK:secdefil",
}
