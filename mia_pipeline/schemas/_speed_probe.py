"""Speed probe (not a test): ``parse_lines`` vs ``json.loads`` per line + ``pandas.DataFrame``.

    python -m mia_pipeline.schemas._speed_probe [n_events] [repeats]

Builds ``n_events`` mixed events (60% ticks, 25% bars, 7% signals, 4% trades, rest exits,
performance, status), then times both on the same bytes (best of ``repeats``, interleaved) and prints events/s and
the ratio, by wall clock and by CPU time (the CPU ratio is less sensitive to a shared machine).
The formal benchmark lives in ``benchmarks/``.
"""

from __future__ import annotations

import json
import random
import sys
import time

import pandas as pd

from mia_pipeline.schemas import parse_lines
from mia_pipeline.schemas.guide_examples import make_event, to_line
from mia_pipeline.schemas.timestamps import format_ms

MIX = ["market_tick"] * 60 + ["market_bar"] * 25 + ["signal"] * 7 + ["trade"] * 4 + ["trade_exit"] * 2 + [
    "performance", "system_status"]
T0 = 1_750_689_015_123


def mixed_events(n: int, seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = rnd.choice(MIX)
        e = make_event(kind, event_id=f"evt-{i:08d}", timestamp=format_ms(T0 + 3 * i))
        p = round(6000 + rnd.random() * 50, 2)
        if kind == "market_tick":
            e.update(bid=p, ask=p + 0.25, last=p, seq=i, bid_size=float(rnd.randint(1, 50)))
        elif kind == "market_bar":
            e.update(open=p, high=p + 2, low=p - 1, close=p + 0.5, volume=float(rnd.randint(100, 5000)))
        elif kind == "signal":
            e["signal_id"] = f"SIG_{i:08d}"
        elif kind == "trade":
            e.update(trade_id=f"TRADE_{i:08d}", price=round(1.08 + rnd.random() / 100, 5))
        out.append(to_line(e))
    return b"".join(out)


def baseline(data: bytes) -> int:
    return len(pd.DataFrame([json.loads(line) for line in data.splitlines() if line.strip()]))


def _timed(fn) -> tuple[float, float]:
    """(wall, cpu) seconds of one call; cpu counts every thread of the process."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main(n: int = 200_000, repeats: int = 3) -> None:
    """Best of ``repeats`` for both, interleaved so that both see the same machine load."""
    data = mixed_events(n)
    now = T0 + 3 * n + 1000
    r = parse_lines(data, now_ms=now)  # warm-up (imports, caches)
    ours, base = [], []
    for _ in range(repeats):
        ours.append(_timed(lambda: parse_lines(data, now_ms=now)))
        base.append(_timed(lambda: baseline(data)))
    (ow, oc), (bw, bc) = (min(x[0] for x in ours), min(x[1] for x in ours)), (
        min(x[0] for x in base), min(x[1] for x in base))
    rows = sum(t.num_rows for t in r.tables.values())
    print(f"{n} events, {len(data) / 1e6:.1f} MB, rows={rows}, rejects={len(r.rejects)}, best of {repeats}")
    print(f"parse_lines:            wall {ow:.3f} s = {n / ow:>11,.0f} events/s   cpu {oc:.3f} s")
    print(f"json.loads + DataFrame: wall {bw:.3f} s = {n / bw:>11,.0f} events/s   cpu {bc:.3f} s")
    print(f"ratio: {bw / ow:.1f}x wall, {bc / oc:.1f}x cpu")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
