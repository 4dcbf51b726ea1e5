"""The paper account over one day: sizing, limits, portfolio heat, fills, exits and performance samples.

Signals are walked in time order (a few hundred per day); positions whose exit time has passed are
closed first, so sizing always sees the equity and the open risk at the signal's time.

Sizing: ``risk budget = equity * risk_per_trade * (0.5 + 0.5 * q)`` with ``q`` the signal's quality
(confidence 0.5 -> 0, 0.9+ -> 1); contracts = floor(budget / risk per contract), capped by
``max_contracts`` and by the heat cap: ``(open risk + new risk) / equity <= heat_cap`` where a
position's risk is ``|entry - stop| * contracts * multiplier`` (its initial risk; stops never move).
``position_size_pct`` is the new trade's risk / equity; ``portfolio_heat`` includes the new trade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mia_pipeline.sources.paper_trading.broker import Exit, Fill, entry_fill, find_exit, net_pnl
from mia_pipeline.sources.paper_trading.config import PaperConfig
from mia_pipeline.sources.paper_trading.market import MarketDay
from mia_pipeline.sources.paper_trading.strategy import Signals


@dataclass
class Trade:
    seq: int  # 1-based number of the trade in the day
    signal: int  # row in Signals
    symbol: str
    side: int
    qty: int
    fill: Fill
    stop: float
    target: float
    stop_ticks: int
    target_ticks: int
    risk_usd: float
    equity_at_entry: float
    position_size_pct: float
    portfolio_heat: float
    exit: Exit
    gross: float
    commissions: float
    pnl: float

    @property
    def risk_reward(self) -> float:
        return self.target_ticks / self.stop_ticks


@dataclass
class Sample:
    ts: int
    equity: float
    realized: float
    unrealized: float
    closed: int
    wins: int
    open_positions: int
    heat: float
    drawdown: float  # fraction of the peak equity of the day
    snapshots_per_hour: float
    latency_ms: float


@dataclass
class DayBook:
    executed: np.ndarray  # bool per signal
    notes: list[str]  # why a BUY/SELL was not executed ("" when executed or HOLD)
    trades: list[Trade] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)


def run_day(m: MarketDay, s: Signals, cfg: PaperConfig, rng: np.random.Generator) -> DayBook:
    risk, broker = cfg.risk, cfg.broker
    start = risk.starting_equity
    book = DayBook(executed=np.zeros(len(s), dtype=bool), notes=[""] * len(s))
    open_: list[Trade] = []
    realized = 0.0
    entry_cutoff = m.close_ms - risk.no_entry_before_close_s * 1000
    flat_at = m.close_ms - risk.flat_before_close_s * 1000
    for i in range(len(s)):
        t = int(s.ts[i])
        for tr in sorted((p for p in open_ if p.exit.ts <= t), key=lambda p: p.exit.ts):
            realized += tr.pnl
            open_.remove(tr)
        side = int(s.decision[i])
        if side == 0:
            continue
        j = int(s.sym[i])
        symbol = m.symbols[j]
        contract = cfg.contract(symbol)
        same = [p for p in open_ if p.symbol == symbol]
        equity = start + realized
        if t >= entry_cutoff:
            book.notes[i] = "no new entries in the last minutes of the session"
            continue
        if any(p.side != side for p in same):
            book.notes[i] = "opposite position open"
            continue
        if len(same) >= risk.max_positions_per_symbol:
            book.notes[i] = "max positions per symbol reached"
            continue
        price = float(m.close[s.sec[i], j])
        stop_pts = risk.stop_sigma_mult * float(s.sigma_1s[i]) * price * math.sqrt(risk.stop_horizon_s)
        stop_ticks = int(np.clip(math.ceil(stop_pts / contract.tick), risk.min_stop_ticks, risk.max_stop_ticks))
        rr = risk.rr_trending if s.trending[i] else risk.rr_ranging
        target_ticks = max(1, round(rr * stop_ticks))
        per_contract = stop_ticks * contract.tick * contract.multiplier
        quality = float(np.clip((s.confidence[i] - 0.5) / 0.4, 0.0, 1.0))
        budget = equity * risk.risk_per_trade * (0.5 + 0.5 * quality)
        open_risk = sum(p.risk_usd for p in open_)
        by_budget = min(int(budget // per_contract), risk.max_contracts)
        by_heat = int(max(risk.heat_cap * equity - open_risk, 0.0) // per_contract)
        qty = min(by_budget, by_heat)
        if qty < 1:
            book.notes[i] = ("portfolio heat cap reached" if by_heat < by_budget
                             else "risk budget below one contract")
            continue
        high_vol = m.vol_regime[s.sec[i], j] == "high"
        fill = entry_fill(m.quotes[symbol], t, side, qty, contract, high_vol, broker, rng)
        stop = fill.price - side * stop_ticks * contract.tick
        target = fill.price + side * target_ticks * contract.tick
        deadline, why = fill.ts + risk.max_hold_s * 1000, "timeout"
        if deadline >= flat_at:
            deadline, why = flat_at, "end_of_day"
        ex = find_exit(m.quotes[symbol], fill.ts, side, stop, target, deadline, why, contract, broker, rng)
        gross, commissions, pnl = net_pnl(fill.price, ex.price, qty, side, contract)
        risk_usd = per_contract * qty
        tr = Trade(len(book.trades) + 1, i, symbol, side, qty, fill, stop, target, stop_ticks, target_ticks,
                   risk_usd, equity, risk_usd / equity, (open_risk + risk_usd) / equity, ex, gross, commissions, pnl)
        book.trades.append(tr)
        open_.append(tr)
        book.executed[i] = True
    book.samples = sample_performance(m, s, book.trades, cfg)
    return book


def sample_performance(m: MarketDay, s: Signals, trades: list[Trade], cfg: PaperConfig) -> list[Sample]:
    """Account state every ``performance_every_s`` seconds of the session and at its close."""
    step = cfg.performance_every_s * 1000
    times = list(range(m.open_ms + step, m.close_ms, step)) + [m.close_ms]
    start = cfg.risk.starting_equity
    snapshot_ts = np.sort(np.concatenate([s.ts, np.array([t.fill.ts for t in trades], dtype=np.int64)]))
    peak, out = start, []
    for t in times:
        closed = [tr for tr in trades if tr.exit.ts <= t]
        live = [tr for tr in trades if tr.fill.ts <= t < tr.exit.ts]
        sec = max(int(np.searchsorted(m.sec_ms + 1000, t, side="right")) - 1, 0)
        unrealized = sum((m.close[sec, m.symbols.index(tr.symbol)] - tr.fill.price) * tr.side * tr.qty
                         * cfg.contract(tr.symbol).multiplier - tr.commissions / 2 for tr in live)
        realized = sum(tr.pnl for tr in closed)
        equity = start + realized + float(unrealized)
        peak = max(peak, equity)
        window_ms = min(3_600_000, t - m.open_ms)
        n_snap = int(np.searchsorted(snapshot_ts, t, "right") - np.searchsorted(snapshot_ts, t - window_ms, "right"))
        filled = [tr.fill.latency_ms for tr in trades if tr.fill.ts <= t]
        out.append(Sample(
            ts=t, equity=equity, realized=realized, unrealized=float(unrealized), closed=len(closed),
            wins=sum(tr.pnl > 0 for tr in closed), open_positions=len(live),
            heat=sum(tr.risk_usd for tr in live) / (start + realized), drawdown=(peak - equity) / peak,
            snapshots_per_hour=n_snap * 3_600_000 / window_ms,
            latency_ms=float(np.mean(filled)) if filled else 0.0,
        ))
    return out
