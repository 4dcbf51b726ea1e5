"""Paper-trading settings: contracts, the simulated broker, risk limits and the strategy's cadence.

Every number that shapes the output lives here, so a day's events are a function of
``(seed, day, PaperConfig)`` only. Money is USD; prices are index points; times are ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time


@dataclass(frozen=True)
class Contract:
    """A CME equity-index future. ``commission`` is per contract per side (all-in: broker + exchange
    + NFA fees, roughly IBKR's tiered rate for ES/NQ)."""

    symbol: str
    multiplier: float  # USD per index point
    tick: float = 0.25
    commission: float = 2.25


CONTRACTS: dict[str, Contract] = {
    "ES": Contract("ES", multiplier=50.0),
    "NQ": Contract("NQ", multiplier=20.0),
}


@dataclass(frozen=True)
class BrokerConfig:
    """Simulated execution. Entries are marketable orders: a BUY fills at the ask (a SELL at the bid)
    quoted when the order arrives (signal time + decision delay + latency), worse by 0 or more ticks of
    slippage. Protective stops fill at the touching quote plus stop slippage; targets are resting limits
    that fill at their price once the opposite quote trades through them (bid >= target for a long)."""

    latency_median_ms: float = 2.5  # order -> fill, lognormal
    latency_sigma: float = 0.45
    decision_delay_median_ms: float = 1.5  # signal -> order sent, lognormal
    slippage_prob: float = 0.12  # chance of one extra tick on an entry (more when size/volatility are high)
    stop_slippage_prob: float = 0.35  # chance of one extra tick on a stop exit


@dataclass(frozen=True)
class RiskConfig:
    """Position sizing by risk: contracts = floor(equity * risk_per_trade / (stop distance * multiplier)),
    trimmed so that portfolio heat (sum of open initial risk / equity) stays <= ``heat_cap``."""

    starting_equity: float = 250_000.0  # the paper account is reset at each day's open (see simulate)
    risk_per_trade: float = 0.005  # at full confidence; scaled down to half for the weakest signals
    heat_cap: float = 0.04
    max_contracts: int = 10
    max_positions_per_symbol: int = 1  # scale-ins in the same direction only (no hedged books)
    stop_sigma_mult: float = 1.5  # stop distance = mult * sigma of the price over ``stop_horizon_s``
    stop_horizon_s: int = 900
    min_stop_ticks: int = 6
    max_stop_ticks: int = 320
    rr_trending: float = 2.0
    rr_ranging: float = 1.5
    max_hold_s: int = 60 * 60  # time stop
    flat_before_close_s: int = 5 * 60  # everything is flattened this long before the session close
    no_entry_before_close_s: int = 15 * 60


@dataclass(frozen=True)
class StrategyConfig:
    """Signal cadence and decision thresholds of the reference strategy."""

    gap_min_s: float = 45.0  # per-symbol gap between signal snapshots ~ U(min, max): ~100 signals/hour
    gap_max_s: float = 100.0  # for two symbols, inside the guide's 50-200 snapshots/hour
    warmup_s: int = 300  # no signal before the features have 5 minutes of history
    score_threshold: float = 0.70  # |direction score| needed for BUY/SELL
    min_overall_confluence: float = 0.60
    trend_efficiency: float = 0.28  # efficiency ratio over 15 min at or above which the regime is TRENDING
    timeframe: str = "1min"


@dataclass(frozen=True)
class PaperConfig:
    """Everything ``simulate`` needs besides the seed and the days."""

    contracts: dict[str, Contract] = field(default_factory=lambda: dict(CONTRACTS))
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    # The US regular session in exchange time (09:30-16:00 ET = 13:30-20:00 UTC in summer); every
    # event of a day then falls on that day's UTC date whatever the DST offset.
    session_open_et: time = time(9, 30)
    session_minutes: int = 390
    performance_every_s: int = 300
    bar_minutes: int = 1

    def contract(self, symbol: str) -> Contract:
        try:
            return self.contracts[symbol]
        except KeyError:
            raise ValueError(f"no contract spec for symbol {symbol!r}; known: {', '.join(self.contracts)}") from None
