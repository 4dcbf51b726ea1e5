"""IBKR: a year's pacing-safe backfill, and the live recorder's memory over an accelerated 24 hours.

1. Backfill one year (2024) of 5-min bars for 5 contracts (EURUSD, GBPUSD, USDJPY BID_ASK; ES, NQ
   TRADES) from the fake gateway, which enforces IB's pacing rules on a fast (fake) clock shared with
   the client and lands every day in market_bars for real. Figures: requests issued vs the
   theoretical minimum (one per open day per contract), simulated time vs the least IB's
   60-per-10-minutes rule allows (BID_ASK counting double), pacing violations (IB would drop the
   socket). Baseline, same run: the same requests issued without the limiter (violations counted).
   Goal: no violation, no extra request, simulated time <= 1.05 x the minimum.
2. The recorder over 24 simulated hours of the 5 contracts (quotes + 5-s bars every 5 simulated
   seconds, ~350k messages through the real ib_async client): traced Python memory after 1 h and
   after 24 h. Baseline, same run: a plain ib_async subscriber (reqMktData + reqRealTimeBars, the
   usual recipe) over the same stream. Goal: growth from 1 h to 24 h <= 2 MB for the recorder.
"""

import asyncio
import logging
import sys
import tempfile
import threading
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mia_pipeline.layout import Layout, init_tree  # noqa: E402
from mia_pipeline.settings import load_settings  # noqa: E402
from mia_pipeline.sources.ibkr.backfill import Backfill, Unavailable, is_closed, lander  # noqa: E402
from mia_pipeline.sources.ibkr.contracts import BAR_SIZES, Instrument, Series  # noqa: E402
from mia_pipeline.sources.ibkr.pacing import FakeClock, PacingLimiter  # noqa: E402
from mia_pipeline.sources.ibkr.recorder import LiveRecorder  # noqa: E402
from mia_pipeline.sources.ibkr.session import close, connect  # noqa: E402
from mia_pipeline.storage import PartitionStore  # noqa: E402
from mia_pipeline_tests.fake_ibkr import FakeGateway  # noqa: E402

logging.getLogger("ib_async").setLevel(logging.CRITICAL)
SERIES = [Series(Instrument(s, "fx"), "5min", "BID_ASK") for s in ("EURUSD", "GBPUSD", "USDJPY")] + [
    Series(Instrument(s, "future"), "5min", "TRADES") for s in ("ES", "NQ")]
DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(366)]
STEPS_PER_HOUR = 720  # one streaming round per 5 simulated seconds


def backfill() -> bool:
    root = Path(tempfile.mkdtemp()) / "data"
    layout = Layout(root)
    init_tree(layout)
    store = PartitionStore(layout)
    clock = FakeClock(1_760_000_000)
    with FakeGateway(clock=clock) as gw:
        async def go():
            ib = await connect("127.0.0.1", gw.port, 1, 10)
            try:
                bf = Backfill(ib, PacingLimiter(clock), lander(layout, store, None),
                              Unavailable(root / "live" / "u.json"), request_timeout_s=30)
                return await bf.run(SERIES, DAYS)
            finally:
                close(ib)

        t0 = time.perf_counter()
        results = asyncio.run(go())
        wall = time.perf_counter() - t0
        issued, violations = len(gw.history_log), len(gw.violations)
        span = gw.history_log[-1][0] - gw.history_log[0][0]
    open_days = [d for d in DAYS if not is_closed(d)]
    minimum = len(open_days) * len(SERIES)
    weight = sum((2 if s.what == "BID_ASK" else 1) * len(open_days) for s in SERIES)
    least = max(0, weight - 60) / 60 * 600
    base_violations = _unpaced(open_days[:40])
    written = sum(r.status == "written" for r in results)
    ok = violations == 0 and issued == minimum and written == minimum and span <= 1.05 * least
    print(f"backfill 2024 of 5-min bars x 5 contracts: {issued:,} requests (minimum {minimum:,}), "
          f"{written:,} days landed, simulated {span / 3600:.1f} h vs least allowed {least / 3600:.1f} h "
          f"(x{span / least:.3f}), pacing violations {violations}, {wall:.0f} s wall | baseline without the limiter: "
          f"{base_violations} violations in its first {len(open_days[:40]) * len(SERIES)} requests "
          f"| goal 0 violations, no extra request, <= 1.05 x {'OK' if ok else 'MISSED'}")
    return ok


def _unpaced(days) -> int:
    """The same requests issued back to back (no limiter): how many IB would refuse."""
    clock = FakeClock(1_760_000_000)
    with FakeGateway(clock=clock) as gw:
        async def go():
            ib = await connect("127.0.0.1", gw.port, 1, 10)
            try:
                for s in SERIES:
                    c = (await ib.qualifyContractsAsync(s.instrument.request()))[0] if s.instrument.kind == "fx" \
                        else (await ib.reqContractDetailsAsync(s.instrument.request()))[-1].contract
                    for d in days:
                        end = f"{(d + timedelta(days=1)).strftime('%Y%m%d')} 00:00:00 UTC"
                        try:
                            await ib.reqHistoricalDataAsync(c, end, "86400 S", BAR_SIZES[s.timeframe], s.what,
                                                            False, 2, timeout=10)
                        except Exception:  # noqa: BLE001 - the pacing refusal is what is counted
                            pass
                        await clock.sleep(0.2)  # a fast client: one request per 200 ms
            finally:
                close(ib)

        asyncio.run(go())
        return len(gw.violations)


def _memory_run(make_client) -> tuple[float, float]:
    """Traced MB after 1 simulated hour and after 24, while ``make_client(port)`` consumes the stream."""
    with FakeGateway() as gw:
        marks: list[float] = []
        done = threading.Event()

        def drive():
            time.sleep(1.0)  # connected and subscribed
            for hour in range(24):
                for _ in range(STEPS_PER_HOUR // 60):
                    gw.stream(60)
                    time.sleep(0.005)
                time.sleep(0.2)  # let the client drain its socket before measuring
                if hour in (0, 23):
                    marks.append(tracemalloc.get_traced_memory()[0] / 1e6)
            done.set()

        threading.Thread(target=drive, daemon=True).start()
        tracemalloc.start()
        asyncio.run(make_client(gw.port, done))
        tracemalloc.stop()
    return marks[0], marks[1]


def _recorder(out: Path):
    async def run(port, done):
        cfg = load_settings(env={"MIA_IBKR_PORT": str(port)}).ibkr.model_copy(update={"connect_timeout_s": 10})
        rec = LiveRecorder(cfg, out, flush_every_s=0.5, say=lambda _: None)
        task = asyncio.ensure_future(rec.run(None))
        while not done.is_set():
            await asyncio.sleep(0.1)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    return run


async def _plain_ib_async(port, done):
    ib = await connect("127.0.0.1", port, 2, 10)
    for sym in ("EURUSD", "GBPUSD", "USDJPY"):
        c = (await ib.qualifyContractsAsync(Instrument(sym, "fx").request()))[0]
        ib.reqMktData(c, "", False, False)
        ib.reqRealTimeBars(c, 5, "MIDPOINT", False)
    for sym in ("ES", "NQ"):
        c = (await ib.reqContractDetailsAsync(Instrument(sym, "future").request()))[-1].contract
        ib.reqMktData(c, "233", False, False)
        ib.reqRealTimeBars(c, 5, "TRADES", False)
    while not done.is_set():
        await asyncio.sleep(0.1)
    close(ib)


def recorder_memory() -> bool:
    out = Path(tempfile.mkdtemp())
    r1, r24 = _memory_run(_recorder(out))
    b1, b24 = _memory_run(_plain_ib_async)
    lines = sum(f.read_bytes().count(b"\n") for f in out.glob("*.jsonl"))
    ok = r24 - r1 <= 2.0
    print(f"recorder memory over 24 simulated hours ({lines:,} events written): after 1 h {r1:.1f} MB, after 24 h "
          f"{r24:.1f} MB (+{r24 - r1:.1f} MB) | baseline plain ib_async subscriber: {b1:.1f} MB -> {b24:.1f} MB "
          f"(+{b24 - b1:.1f} MB) | goal growth <= 2 MB {'OK' if ok else 'MISSED'}")
    return ok


if __name__ == "__main__":
    results = [backfill(), recorder_memory()]
    sys.exit(0 if all(results) else 1)
