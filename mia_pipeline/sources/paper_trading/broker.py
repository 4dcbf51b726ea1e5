"""Simulated broker: entry fills against L1, then the first touch of the stop or the target.

Fill model (per contract spec in ``config``):
- the order reaches the book at ``signal ts + decision delay + latency`` (both lognormal);
- a BUY lifts the ask (a SELL hits the bid) quoted at that moment, plus ``slip_ticks`` of slippage:
  one tick with probability ``slippage_prob`` (x2 for 5+ contracts, x1.5 in a high-volatility regime);
- the stop is a stop-market order: it triggers when the bid (long) / ask (short) trades through it
  and fills at that quote, one tick worse with probability ``stop_slippage_prob`` (gaps fill worse);
- the target is a resting limit: it fills at its price once the bid (long) / ask (short) reaches it;
- otherwise the position is closed at market at the time stop or the pre-close flattening.
Exits are found with array scans over the quotes after the fill (no per-tick Python loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mia_pipeline.sources.paper_trading.config import BrokerConfig, Contract
from mia_pipeline.sources.paper_trading.market import Quotes

EXIT_REASONS = ("stop_loss", "take_profit", "timeout", "end_of_day")  # schemas.contract vocabulary


@dataclass(frozen=True)
class Fill:
    ts: int  # epoch ms when the order filled
    bid: float
    ask: float
    bid_size: int
    ask_size: int
    price: float
    slippage: float  # points, >= 0 (always against us)
    latency_ms: float
    delay_ms: float  # signal -> order sent


@dataclass(frozen=True)
class Exit:
    ts: int
    price: float
    reason: str
    bid: float
    ask: float


def entry_fill(q: Quotes, signal_ts: int, side: int, qty: int, contract: Contract, high_vol: bool,
               cfg: BrokerConfig, rng: np.random.Generator) -> Fill:
    delay = float(cfg.decision_delay_median_ms * np.exp(0.35 * rng.standard_normal()))
    latency = float(cfg.latency_median_ms * np.exp(cfg.latency_sigma * rng.standard_normal()))
    ts = signal_ts + int(np.ceil(delay + latency))
    k = q.at(ts)
    p = cfg.slippage_prob * (2.0 if qty >= 5 else 1.0) * (1.5 if high_vol else 1.0)
    slip = contract.tick * int(rng.random() < p)
    quote = q.ask[k] if side > 0 else q.bid[k]
    price = quote + side * slip
    return Fill(ts, float(q.bid[k]), float(q.ask[k]), int(q.bid_size[k]), int(q.ask_size[k]), float(price),
                float(slip), round(latency, 3), round(delay, 3))


def find_exit(q: Quotes, fill_ts: int, side: int, stop: float, target: float, deadline_ms: int,
              deadline_reason: str, contract: Contract, cfg: BrokerConfig, rng: np.random.Generator) -> Exit:
    """First touch of ``stop``/``target`` in (fill_ts, deadline_ms); else a market exit at the deadline."""
    i0 = int(np.searchsorted(q.ts, fill_ts, side="right"))
    i1 = max(int(np.searchsorted(q.ts, deadline_ms, side="left")), i0)
    touch = q.bid[i0:i1] if side > 0 else q.ask[i0:i1]
    stop_hit = touch <= stop if side > 0 else touch >= stop
    target_hit = touch >= target if side > 0 else touch <= target
    first_stop = int(np.argmax(stop_hit)) if stop_hit.any() else len(touch)
    first_target = int(np.argmax(target_hit)) if target_hit.any() else len(touch)
    stop_slip = contract.tick * int(rng.random() < cfg.stop_slippage_prob)
    if first_stop < len(touch) and first_stop <= first_target:
        k = i0 + first_stop
        price = float(touch[first_stop]) - side * stop_slip
        return Exit(int(q.ts[k]), price, "stop_loss", float(q.bid[k]), float(q.ask[k]))
    if first_target < len(touch):
        k = i0 + first_target
        return Exit(int(q.ts[k]), float(target), "take_profit", float(q.bid[k]), float(q.ask[k]))
    k = q.at(deadline_ms)
    price = float(q.bid[k] if side > 0 else q.ask[k])
    return Exit(max(int(deadline_ms), fill_ts + 1), price, deadline_reason, float(q.bid[k]), float(q.ask[k]))


def net_pnl(entry: float, exit_: float, qty: int, side: int, contract: Contract) -> tuple[float, float, float]:
    """(gross, commissions for both sides, net) in USD."""
    gross = (exit_ - entry) * qty * contract.multiplier * side
    commissions = 2 * qty * contract.commission
    return gross, commissions, gross - commissions
