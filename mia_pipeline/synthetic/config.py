"""Session configuration (the seed's ``GenConfig``), the scenario/leadership vocabularies and labels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SCENARIOS: tuple[str, ...] = (
    "normal",
    "trend_up",
    "trend_down",
    "chop",
    "news_spike",
    "gamma_pin",
    "orderflow_accumulation",
    "orderflow_distribution",
    "confluence_breakout",
    "delta_divergence",
)

SCENARIO_DESCRIPTIONS: dict[str, str] = {
    "normal": "balanced market, standard volatility (the realism battery's reference)",
    "trend_up": "sustained uptrend: net rise of about 4 session sigmas",
    "trend_down": "sustained downtrend: net fall of about 4 session sigmas",
    "chop": "range-bound, mean-reverting, low volatility",
    "news_spike": "volatility burst at an event: jump, wider spreads, thinner book, volume surge",
    "gamma_pin": "price pinned to a strike (midpoint of the walls), low realized volatility",
    "orderflow_accumulation": "ask-side aggression absorbed under a resistance, then upside breakout",
    "orderflow_distribution": "bid-side aggression absorbed above a support, then downside flush",
    "confluence_breakout": "consolidation at VWAP, then a clean breakout led by the leader",
    "delta_divergence": "30-60 s episodes: price makes a new high while cumulative delta falls",
}

LEADERSHIPS: tuple[str, ...] = ("NQ_leads", "ES_leads", "balanced")

STRENGTH_RANGE: tuple[float, float] = (0.0, 0.4)

# Ground-truth label -> side. A label always carries the same side (the invariant checks this).
LABEL_SIDE: dict[str, int] = {
    "neutral": 0,
    "long_bias": 1,
    "short_bias": -1,
    "divergence_warning": -1,  # bearish divergence: new high on falling delta, reversal expected
    "volatility_event": 0,
}
LABELS: tuple[str, ...] = tuple(LABEL_SIDE)


@dataclass
class GenConfig:
    """One synthetic ES/NQ session: fields and defaults are the seed's.

    ``start`` must be timezone-aware (it is converted to UTC; timestamps are epoch ms UTC).
    Rows exist only while CME Globex is open (Sunday 18:00 - Friday 17:00 ET, halt 17:00-18:00 ET).
    """

    start: datetime
    minutes: int = 120
    symbol_es: str = "ES"
    symbol_nq: str = "NQ"
    tick_size: float = 0.25
    es_start_price: float = 5000.0
    nq_start_price: float = 18000.0
    l1_interval_ms: int = 200
    l2_interval_ms: int = 100
    bar_tf_s: int = 1
    book_levels: int = 10
    base_size_mean: int = 3
    base_size_std: int = 2
    vix_start: float = 15.0

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError(
                f"GenConfig.start must be timezone-aware (got naive {self.start!r}); "
                "pass e.g. datetime(..., tzinfo=timezone.utc)"
            )
        positive = {
            "minutes": self.minutes,
            "tick_size": self.tick_size,
            "es_start_price": self.es_start_price,
            "nq_start_price": self.nq_start_price,
            "l1_interval_ms": self.l1_interval_ms,
            "l2_interval_ms": self.l2_interval_ms,
            "bar_tf_s": self.bar_tf_s,
            "book_levels": self.book_levels,
            "vix_start": self.vix_start,
        }
        bad = [f"{k}={v!r}" for k, v in positive.items() if not v > 0]
        if bad:
            raise ValueError(f"GenConfig fields must be > 0: {', '.join(bad)}")
        if self.symbol_es == self.symbol_nq:
            raise ValueError("symbol_es and symbol_nq must differ")

    @property
    def start_ms(self) -> int:
        return int(round(self.start.timestamp() * 1000))

    @property
    def end_ms(self) -> int:
        """Exclusive end of the session window."""
        return self.start_ms + int(self.minutes) * 60_000


def validate_choice(scenario: str, leadership: str, strength: float) -> None:
    """Raise ``ValueError`` naming the valid values when an argument is out of vocabulary."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; valid: {', '.join(SCENARIOS)}")
    if leadership not in LEADERSHIPS:
        raise ValueError(f"unknown leadership {leadership!r}; valid: {', '.join(LEADERSHIPS)}")
    lo, hi = STRENGTH_RANGE
    if not lo <= float(strength) <= hi:
        raise ValueError(f"strength {strength!r} outside [{lo}, {hi}]")
