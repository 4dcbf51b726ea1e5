"""``--realtime``: replay paper-trading sessions paced by the wall clock, stamped with real time.

Sessions are the same synthetic RTH days as history (weekdays from today on, each from
``(seed, day)``), played back to back whatever the exchange calendar says, so the pipeline gets a
live feed at any hour. Simulation time ``v`` of a session maps to wall-clock ms
``base + (v - session open) / speed``; at ``speed == 1`` the base is aligned to the minute so bars
stay on minute boundaries (the first < 1 minute of events is written at once as a catch-up).

Events are appended, batch of complete lines by batch, to ``paper_trading_<UTC date>.jsonl`` of the
day they are emitted on. Ids are ``pt-rt<run start ms>-<seq>`` (unique per run). The run stops on
Ctrl-C (KeyboardInterrupt: the summary says ``interrupted``), after ``days`` x 24 h / ``speed`` of
wall-clock time, or after ``max_events`` events.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from mia_pipeline.sources.paper_trading.config import PaperConfig
from mia_pipeline.sources.paper_trading.engine import (
    Progress,
    ScenarioSchedule,
    SimulationSummary,
    plan_day,
    simulate_day,
    with_ids,
)
from mia_pipeline.sources.paper_trading.writer import Appender, day_file, encode

POLL_S = 0.25  # longest sleep, so Ctrl-C and the deadline are honoured promptly


def run_realtime(out_dir: Path, *, seed: int, days: int, symbols: tuple[str, ...], config: PaperConfig,
                 speed: float = 1.0, max_events: int | None = None, scenario_schedule: ScenarioSchedule = None,
                 on_progress: Progress | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> SimulationSummary:
    if not speed > 0:
        raise ValueError(f"speed must be > 0 (got {speed!r})")
    if max_events is not None and max_events < 1:
        raise ValueError(f"max_events must be >= 1 (got {max_events!r})")
    started = clock()
    run_tag = int(started * 1000)
    deadline = started + days * 86_400 / speed
    today = datetime.fromtimestamp(started, UTC).date()
    summary = SimulationSummary(start=today, days=days, seed=seed, realtime=True)
    written = 0
    virtual = today
    index = 0
    close = None
    try:
        with Appender() as appender:
            while clock() < deadline and (max_events is None or written < max_events):
                virtual = _next_weekday(virtual)
                base_ms = _base_ms(clock(), speed)
                plan = plan_day(seed, virtual, scenario_schedule, index)
                res = simulate_day(plan, symbols, config, stamp_for=lambda m, b=base_ms: _stamp(m.open_ms, b, speed),
                                   after=close, seed=seed)
                index += 1
                virtual += timedelta(days=1)
                if res is None:
                    continue
                close = res.market.last_quotes()  # the next virtual day continues from here
                summary.scenarios[plan.day.isoformat()] = plan.scenario
                events = res.events
                emits = [e[0] for e in events]
                k = 0
                while k < len(events):
                    now_ms = int(clock() * 1000)
                    if clock() >= deadline or (max_events is not None and written >= max_events):
                        break
                    end = bisect.bisect_right(emits, now_ms, lo=k)
                    if max_events is not None:
                        end = min(end, k + max_events - written)
                    if end == k:
                        sleep(min(POLL_S, max((emits[k] - now_ms) / 1000.0, 0.001)))
                        continue
                    batch = [run_unique(e, run_tag) for e in
                             with_ids(events[k:end], f"pt-rt{run_tag}", first=written + 1)]
                    _write(appender, out_dir, events[k:end], batch, summary)
                    written += len(batch)
                    k = end
                    if on_progress is not None:
                        on_progress(written, max_events, "events")
                exits = [e[2] for e in events[:k] if e[2]["kind"] == "trade_exit"]
                summary.trades += len(exits)  # closed trades, so that the win rate means something
                summary.wins += sum(e["pnl"] > 0 for e in exits)
                summary.pnl = round(summary.pnl + sum(e["pnl"] for e in exits), 2)
                # entry and exit commissions are equal (same quantity, per-side rate)
                summary.commissions = round(summary.commissions + 2 * sum(e["commission"] for e in exits), 2)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.elapsed_s = clock() - started
    return summary


ID_FIELDS = ("signal_id", "trade_id", "order_id")


def run_unique(event: dict, run_tag: int) -> dict:
    """The event with its signal, trade and order ids made unique to this realtime run.

    History is replayable (same seed and day, same ids); a live run is not: two runs that fill at the
    same wall-clock second would reuse ``TRADE_<time>_001``. A run suffix (base-36 run start in ms)
    keeps the guide's id shape and makes every run's ids its own."""
    suffix = "_R" + _base36(run_tag)
    out = {k: (f"{v}{suffix}" if k in ID_FIELDS and isinstance(v, str) else v) for k, v in event.items()}
    execution = out.get("execution")
    if isinstance(execution, dict) and isinstance(execution.get("order_id"), str):
        out["execution"] = {**execution, "order_id": execution["order_id"] + suffix}
    return out


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out.upper()


def _write(appender: Appender, out_dir: Path, raw: Sequence, batch: list[dict], summary: SimulationSummary) -> None:
    """Append ``batch`` to the files of the UTC days its events are emitted on (usually one)."""
    groups: dict[Path, list[bytes]] = {}
    for (emit, _, _), event in zip(raw, batch, strict=True):
        path = day_file(out_dir, datetime.fromtimestamp(emit / 1000, UTC).date())
        groups.setdefault(path, []).append(encode(event))
    for path, lines in groups.items():
        appender.append(path, lines)
        if path not in summary.files:
            summary.files.append(path)
            summary.trading_days.append(path.stem.removeprefix("paper_trading_"))
    summary.add_events(batch)


def _base_ms(now_s: float, speed: float) -> int:
    now_ms = int(now_s * 1000)
    return now_ms - now_ms % 60_000 if speed == 1.0 else now_ms


def _stamp(open_ms: int, base_ms: int, speed: float) -> Callable[[int], int]:
    return lambda v: base_ms + int(round((v - open_ms) / speed))


def _next_weekday(d: date) -> date:
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d
