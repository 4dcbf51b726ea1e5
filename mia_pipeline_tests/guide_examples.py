"""The guide's two §2.2 snapshot examples as events, and a factory of valid events for tests.

``TRADE_EXAMPLE`` and ``SIGNAL_EXAMPLE`` are the guide's JSON verbatim plus the envelope
(kind, schema_version, event_id, source). They must round-trip through parse → Parquet → export
with every value equal.

A test aid (the wheel ships the product only): the tests and benchmarks import it from here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from mia_pipeline.schemas.contract import CURRENT_SCHEMA_VERSION, EVENT_KINDS

TRADE_EXAMPLE: dict[str, Any] = {
    "kind": "trade",
    "schema_version": 1,
    "event_id": "evt-trade-20250623-143015-001",
    "source": "paper_trading",
    "timestamp": "2025-06-23T14:30:15.123Z",
    "trade_id": "TRADE_20250623_143015_001",
    "symbol": "EURUSD",
    "action": "BUY",
    "quantity": 10000,
    "price": 1.0891,
    "battle_navale": {
        "signal_type": "VIKINGS_ATTACK",
        "pattern": "elite_pattern_2",
        "confluence_score": 0.87,
        "features": {
            "feature_1": 0.65, "feature_2": -0.23, "feature_3": 1.42, "feature_4": 0.78,
            "feature_5": -0.91, "feature_6": 2.15, "feature_7": 0.33, "feature_8": -1.67,
        },
        "market_regime": "TRENDING",
        "strength": "HIGH",
    },
    "market_context": {"bid": 1.0890, "ask": 1.0892, "spread": 0.0002, "volume": 1250000, "volatility": 0.0145},
    "execution": {"order_id": "ORD_12345", "fill_price": 1.0891, "slippage": 0.0001, "latency_ms": 2.3,
                  "commission": 0.50},
    "risk_management": {"position_size_pct": 0.015, "stop_loss": 1.0851, "take_profit": 1.0931,
                        "risk_reward_ratio": 2.0, "portfolio_heat": 0.045},
}

SIGNAL_EXAMPLE: dict[str, Any] = {
    "kind": "signal",
    "schema_version": 1,
    "event_id": "evt-signal-20250623-142945-001",
    "source": "battle_navale",
    "timestamp": "2025-06-23T14:29:45.678Z",
    "signal_id": "SIG_20250623_142945_001",
    "symbol": "EURUSD",
    "timeframe": "5min",
    "battle_navale_analysis": {
        "primary_pattern": "elite_pattern_2",
        "secondary_patterns": ["support_pattern_a"],
        "confluence_levels": {"technical": 0.85, "fundamental": 0.72, "sentiment": 0.91, "overall": 0.83},
        "vikings_defenseurs": {"mode": "VIKINGS_DOMINANT", "strength": 8.5, "momentum": "INCREASING"},
    },
    "features_snapshot": {
        "calculation_timestamp": "2025-06-23T14:29:45.100Z",
        "raw_features": [0.65, -0.23, 1.42, 0.78, -0.91, 2.15, 0.33, -1.67],
        "normalized_features": [0.52, -0.18, 1.15, 0.63, -0.74, 1.75, 0.27, -1.35],
        "feature_importance": [0.15, 0.08, 0.22, 0.18, 0.12, 0.09, 0.07, 0.09],
    },
    "decision": {
        "action": "BUY",
        "confidence": 0.87,
        "reasoning": "High confluence + Elite pattern 2 + Vikings dominance",
        "executed": True,
        "execution_delay_ms": 1.8,
    },
}

_BASE: dict[str, dict[str, Any]] = {
    "trade": TRADE_EXAMPLE,
    "signal": SIGNAL_EXAMPLE,
    "trade_exit": {
        "kind": "trade_exit", "source": "paper_trading", "timestamp": "2025-06-23T15:02:10.500Z",
        "trade_id": "TRADE_20250623_143015_001", "symbol": "EURUSD", "action": "SELL", "quantity": 10000,
        "exit_price": 1.0931, "entry_price": 1.0891, "entry_timestamp": "2025-06-23T14:30:15.123Z",
        "pnl": 40.0, "pnl_pct": 0.0037, "commission": 0.5, "slippage": 0.0, "holding_time_s": 1915.377,
        "reason": "take_profit", "order_id": "ORD_12346",
    },
    "market_bar": {
        "kind": "market_bar", "source": "sierra", "timestamp": "2025-06-23T14:30:00.000Z",
        "symbol": "ES", "timeframe": "1min", "open": 6021.25, "high": 6023.0, "low": 6020.5, "close": 6022.75,
        "volume": 1843.0, "vwap": 6021.9, "bid_volume": 902.0, "ask_volume": 941.0, "trade_count": 611,
    },
    "market_tick": {
        "kind": "market_tick", "source": "ibkr", "timestamp": "2025-06-23T14:30:15.125Z",
        "symbol": "ES", "seq": 1, "bid": 6022.5, "ask": 6022.75, "last": 6022.75,
        "bid_size": 12.0, "ask_size": 9.0, "last_size": 2.0,
    },
    "market_depth": {
        "kind": "market_depth", "source": "sierra", "timestamp": "2025-06-23T14:30:15.125Z",
        "symbol": "ES", "seq": 0, "command": "add_bid", "price": 6022.5, "quantity": 31, "num_orders": 7,
        "end_of_batch": True,
    },
    "performance": {
        "kind": "performance", "source": "mia_ia", "timestamp": "2025-06-23T15:00:00.000Z",
        "metric": "win_rate", "value": 0.58, "unit": "ratio",
        "tags": {"strategy": "battle_navale", "symbol": "ES"},
    },
    "system_status": {
        "kind": "system_status", "source": "collector", "timestamp": "2025-06-23T15:00:00.000Z",
        "component": "ibkr_recorder", "status": "running", "message": "connected",
        "metrics": {"cpu_pct": 12.5, "memory_mb": 310.0, "latency_ms": 1.9, "queue_depth": 0.0},
    },
}


def make_event(kind: str, /, **overrides: Any) -> dict[str, Any]:
    """A valid event of ``kind`` (a deep copy), with top-level ``overrides`` applied.

    An override of ``None`` removes the key (to build "missing field" cases), e.g.
    ``make_event("market_tick", seq=None)``; ``kind=`` may be overridden too (unknown-kind cases).
    ``event_id`` defaults to ``"evt-<kind>-1"``.
    """
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(EVENT_KINDS)}")
    event = copy.deepcopy(_BASE[kind])
    event.setdefault("schema_version", CURRENT_SCHEMA_VERSION)
    event.setdefault("event_id", f"evt-{kind}-1")
    for key, value in overrides.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def to_line(event: dict[str, Any]) -> bytes:
    """One JSONL line (compact, UTF-8, ending with a newline) — the writers' format."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
