"""``simulate``: paper-trade synthetic sessions and write their events to the landing zone.

One simulated day = the US regular session of that day (09:30-16:00 ET, 390 minutes) on a synthetic
ES/NQ market. Saturdays and Sundays produce nothing (Globex is closed; no file is written);
exchange holidays are not modelled. The paper account starts each day at
``RiskConfig.starting_equity``. Prices continue: each simulated day after the first of a run opens at
the previous simulated day's close times an overnight move (``mia_pipeline.synthetic.overnight``:
weeknights 0.41 %, weekends 0.58 % sigma for ES). A day's file is a function of ``(seed, day, config)``
and of where the run started: the first day of a run (and so a day simulated alone) opens at the
generator's base prices (ES 5000, NQ 18000), a later day at its predecessor's close. Re-running the
same range rewrites identical bytes; a day re-run alone differs from the same day inside a range by
its price level (chaining it from a fixed anchor date would mean generating every day since).

Per day, ``numpy.random.SeedSequence([seed, day.toordinal()])`` seeds, independently, the choice of
scenario/leadership, the strategy's cadence and the broker's latency/slippage; the market generator is
seeded with the synthetic package's one rule, ``session_seed(seed, day, scenario)``: the seed that
``mia generate --seed SEED`` and the ``synthetic_session`` asset use for that day and scenario.

>>> from datetime import date
>>> plan_day(7, date(2025, 6, 23)).scenario in SCENARIOS
True
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from mia_pipeline.sources.paper_trading.config import PaperConfig
from mia_pipeline.sources.paper_trading.events import Event, Stamp, day_events
from mia_pipeline.sources.paper_trading.features import compute_features
from mia_pipeline.sources.paper_trading.market import GEN_SYMBOLS, MarketDay, build_market, session_bounds
from mia_pipeline.sources.paper_trading.portfolio import DayBook, run_day
from mia_pipeline.sources.paper_trading.strategy import Signals, evaluate, schedule
from mia_pipeline.sources.paper_trading.writer import encode, write_day
from mia_pipeline.synthetic import LEADERSHIPS, SCENARIOS
from mia_pipeline.synthetic.overnight import SessionClose, next_open
from mia_pipeline.synthetic.seeding import session_seed

# Day mix: mostly ordinary sessions, every MIA_IA scenario now and then.
SCENARIO_WEIGHTS = {
    "normal": 0.25, "trend_up": 0.10, "trend_down": 0.10, "chop": 0.15, "news_spike": 0.05,
    "gamma_pin": 0.07, "orderflow_accumulation": 0.07, "orderflow_distribution": 0.07,
    "confluence_breakout": 0.07, "delta_divergence": 0.07,
}
LEADERSHIP_WEIGHTS = {"NQ_leads": 0.5, "ES_leads": 0.3, "balanced": 0.2}
MAX_DAYS = 3660

ScenarioSchedule = str | Mapping | Sequence | Callable[[date], str] | None
Progress = Callable[[int, int | None, str], None]


@dataclass(frozen=True)
class DayPlan:
    day: date
    scenario: str
    leadership: str
    strength: float
    gen_seed: int
    strategy_seed: int
    broker_seed: int


@dataclass
class DayResult:
    plan: DayPlan
    market: MarketDay
    signals: Signals
    book: DayBook
    events: list[Event]


@dataclass
class SimulationSummary:
    """What a run wrote. ``pnl`` is net of commissions, summed over the days (each day starts flat)."""

    start: date
    days: int
    seed: int
    realtime: bool = False
    trading_days: list[str] = field(default_factory=list)
    skipped_days: list[str] = field(default_factory=list)  # weekends
    scenarios: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # events per kind
    trades: int = 0
    wins: int = 0
    pnl: float = 0.0
    commissions: float = 0.0
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add_day(self, res: DayResult, events: list[dict]) -> None:
        self.trading_days.append(res.plan.day.isoformat())
        self.scenarios[res.plan.day.isoformat()] = res.plan.scenario
        self.add_events(events)
        self.trades += len(res.book.trades)
        self.wins += sum(t.pnl > 0 for t in res.book.trades)
        self.pnl = round(self.pnl + sum(t.pnl for t in res.book.trades), 2)
        self.commissions = round(self.commissions + sum(t.commissions for t in res.book.trades), 2)

    def add_events(self, events: list[dict]) -> None:
        counts = Counter(self.counts)
        counts.update(e["kind"] for e in events)
        self.counts = dict(sorted(counts.items()))

    def to_dict(self) -> dict:
        return {
            "start": self.start.isoformat(), "days": self.days, "seed": self.seed, "realtime": self.realtime,
            "trading_days": self.trading_days, "skipped_days": self.skipped_days, "scenarios": self.scenarios,
            "files": [str(p) for p in self.files], "counts": self.counts, "events": self.events,
            "trades": self.trades, "wins": self.wins, "win_rate": round(self.win_rate, 4), "pnl": self.pnl,
            "commissions": self.commissions, "elapsed_s": round(self.elapsed_s, 3),
            "events_per_s": round(self.events_per_s, 1), "interrupted": self.interrupted,
        }


def check_symbols(symbols: Sequence[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(symbols))
    bad = [s for s in out if s not in GEN_SYMBOLS]
    if not out or bad:
        raise ValueError(f"symbols must be a non-empty subset of {', '.join(GEN_SYMBOLS)} (got {list(symbols)})")
    return out


def scenario_for(day: date, schedule_: ScenarioSchedule, default: str, index: int) -> str:
    """The scenario of ``day``: from the schedule if it names one, else ``default``."""
    if schedule_ is None:
        name = default
    elif isinstance(schedule_, str):
        name = schedule_
    elif callable(schedule_):
        name = schedule_(day)
    elif isinstance(schedule_, Mapping):
        name = schedule_.get(day, schedule_.get(day.isoformat(), default))
    else:
        name = list(schedule_)[index % len(schedule_)]
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r} for {day}; valid: {', '.join(SCENARIOS)}")
    return name


def plan_day(seed: int, day: date, schedule_: ScenarioSchedule = None, index: int = 0) -> DayPlan:
    root = np.random.SeedSequence([int(seed), day.toordinal()])
    choice, gen, strat, broker = root.spawn(4)
    rng = np.random.default_rng(choice)
    names = list(SCENARIO_WEIGHTS)
    drawn = names[int(rng.choice(len(names), p=np.array(list(SCENARIO_WEIGHTS.values()))))]
    lead = list(LEADERSHIP_WEIGHTS)[int(rng.choice(len(LEADERSHIP_WEIGHTS), p=list(LEADERSHIP_WEIGHTS.values())))]
    assert lead in LEADERSHIPS
    strength = round(float(rng.uniform(0.05, 0.3)), 3)
    del gen  # spawned for stable child streams; the market's seed follows the synthetic seeding rule
    scenario = scenario_for(day, schedule_, drawn, index)
    seeds = [session_seed(seed, day, scenario)] + [int(s.generate_state(1, dtype=np.uint32)[0]) for s in (strat, broker)]
    return DayPlan(day, scenario, lead, strength, *seeds)


def simulate_day(plan: DayPlan, symbols: tuple[str, ...], cfg: PaperConfig,
                 stamp_for: Callable[[MarketDay], Stamp] | None = None,
                 after: SessionClose | None = None, seed: int = 0) -> DayResult | None:
    """Run one day; ``None`` when the market is closed. ``stamp_for(market)`` gives the time map.
    ``after``: the previous simulated day's close; the day then opens at it times an overnight move
    drawn with ``seed`` (``overnight.next_open``), else at the generator's base prices."""
    if plan.day.weekday() >= 5:
        return None
    prices = None
    if after is not None:
        open_ms, _ = session_bounds(plan.day, cfg.session_open_et, cfg.session_minutes)
        prices = next_open(after, datetime.fromtimestamp(open_ms / 1000, UTC), seed)
    m = build_market(plan.day, plan.scenario, plan.leadership, plan.strength, plan.gen_seed,
                     cfg.session_open_et, cfg.session_minutes, prices)
    if m is None:
        return None
    feats = compute_features(m)
    idx = [m.symbols.index(s) for s in symbols]
    ts, sym = schedule(m, idx, cfg.strategy, np.random.default_rng(plan.strategy_seed))
    signals = evaluate(m, feats, ts, sym, cfg.strategy)
    book = run_day(m, signals, cfg, np.random.default_rng(plan.broker_seed))
    stamp = stamp_for(m) if stamp_for is not None else int
    events = day_events(m, signals, book, symbols, cfg, stamp, scenario_note=f"({plan.scenario})")
    return DayResult(plan, m, signals, book, events)


def with_ids(events: list[Event], prefix: str, first: int = 1) -> list[dict]:
    """Events in file order with ``event_id = <prefix>-<seq>`` inserted after ``schema_version``."""
    out = []
    for n, (_, _, e) in enumerate(events, start=first):
        out.append({"kind": e["kind"], "schema_version": e["schema_version"], "event_id": f"{prefix}-{n:06d}",
                    **{k: v for k, v in e.items() if k not in ("kind", "schema_version")}})
    return out


def simulate(out_dir: Path, *, start: date, days: int, seed: int = 7, realtime: bool = False,
             symbols: Sequence[str] = GEN_SYMBOLS, scenario_schedule: ScenarioSchedule = None,
             on_progress: Progress | None = None, config: PaperConfig | None = None,
             speed: float = 1.0, max_events: int | None = None) -> SimulationSummary:
    """Paper-trade ``days`` days from ``start`` and write ``out_dir/paper_trading_<day>.jsonl``.

    History (default): each weekday's file is replaced atomically with the day's events, as fast as
    possible; re-running with the same arguments rewrites identical bytes. Event ids are
    ``pt-<YYYY-MM-DD>-<seq>`` in file order.

    ``realtime=True``: see :func:`mia_pipeline.sources.paper_trading.realtime.run_realtime` (``start``
    is ignored; ``days`` bounds the wall-clock run time, ``speed``/``max_events`` shorten it).

    ``scenario_schedule``: ``None`` (drawn per day from the seed), one scenario name for every day, a
    mapping day -> name (``date`` or ``"YYYY-MM-DD"`` keys; other days drawn), a sequence cycled over
    the days, or a callable ``day -> name``. ``on_progress(done, total, label)`` is called per day.
    Raises ``ValueError`` for days < 1, unknown symbols or scenarios.
    """
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be an integer in 1..{MAX_DAYS} (got {days!r})")
    syms = check_symbols(symbols)
    cfg = config or PaperConfig()
    out_dir = Path(out_dir)
    if realtime:
        from mia_pipeline.sources.paper_trading.realtime import run_realtime

        return run_realtime(out_dir, seed=seed, days=days, symbols=syms, config=cfg, speed=speed,
                            max_events=max_events, scenario_schedule=scenario_schedule, on_progress=on_progress)
    t0 = time.perf_counter()
    summary = SimulationSummary(start=start, days=days, seed=seed)
    plans = [plan_day(seed, start + timedelta(days=k), scenario_schedule, k) for k in range(days)]
    close = None  # each day continues from the previous day's close (overnight move in between)
    for k, plan in enumerate(plans):
        res = simulate_day(plan, syms, cfg, after=close, seed=seed)
        if res is None:
            summary.skipped_days.append(plan.day.isoformat())
        else:
            close = res.market.last_quotes()
            events = with_ids(res.events, f"pt-{plan.day.isoformat()}")
            summary.files.append(write_day(out_dir, plan.day, [encode(e) for e in events]))
            summary.add_day(res, events)
        if on_progress is not None:
            on_progress(k + 1, days, plan.day.isoformat())
    summary.elapsed_s = time.perf_counter() - t0
    return summary
