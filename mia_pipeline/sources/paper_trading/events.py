"""Landing-zone events of one simulated day, in the guide's snapshot shapes (``mia_pipeline.schemas``).

Each event is returned with the time it is *emitted* (when a live system would write it), which
orders the file: a 1-min bar is emitted at its close but stamped with its start (the bar key).
``stamp`` maps simulation epoch ms to the ms written in the events (identity for history; wall
clock for ``--realtime``); ids that embed a time (``TRADE_20250623_143015_001``) use stamped times.

Kinds and their payloads:
- ``signal``: every snapshot of the strategy (BUY/SELL/HOLD), guide §2.2 Signal Snapshot;
- ``trade``: every executed entry, guide §2.2 Trade Snapshot; ``price`` is the fill price;
- ``trade_exit``: one per trade; ``commission`` is the exit side's, ``pnl`` is net of both sides'
  commissions, ``pnl_pct`` the side-signed price return, ``slippage`` the exit's (points);
- ``market_bar``: 1-min OHLCV per symbol from the 1-s bars; ``vwap`` is the bar's own VWAP and
  bid/ask volume the aggressor sell/buy volume, both from the footprint;
- ``performance``: account metrics every ``performance_every_s`` and at the close (see ``METRICS``);
- ``system_status``: the paper trader opening and closing its session.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from mia_pipeline.sources.paper_trading.config import PaperConfig
from mia_pipeline.sources.paper_trading.market import MarketDay
from mia_pipeline.sources.paper_trading.portfolio import DayBook, Sample, Trade
from mia_pipeline.sources.paper_trading.strategy import (
    ACTIONS,
    SIGNAL_TYPES,
    Signals,
    patterns,
    strength_label,
    vikings_defenseurs,
)

SOURCE = "paper_trading"
STRATEGY = "battle_navale_reference"
SCHEMA_VERSION = 1
RTH_SECONDS = 23_400  # volatility is quoted per regular session: 1-s sigma * sqrt(23 400)
# Emission order of events sharing a millisecond.
KIND_ORDER = {"system_status": 0, "market_bar": 1, "signal": 2, "trade": 3, "trade_exit": 4, "performance": 5}
METRICS = (  # (metric, unit)
    ("equity", "usd"), ("daily_pnl", "usd"), ("realized_pnl", "usd"), ("unrealized_pnl", "usd"),
    ("win_rate", "ratio"), ("trades_closed", "count"), ("open_positions", "count"),
    ("portfolio_heat", "ratio"), ("drawdown", "ratio"), ("snapshots_per_hour", "per_hour"),
    ("latency_ms", "ms"),
)

Stamp = Callable[[int], int]
Event = tuple[int, int, dict]  # (emit ms, kind order, event without its event_id)


def iso_ms(ms: int) -> str:
    """Epoch ms -> ``2025-06-23T14:30:15.123Z``."""
    sec, milli = divmod(int(ms), 1000)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{milli:03d}Z"


def _compact(ms: int) -> str:
    return datetime.fromtimestamp(int(ms) // 1000, UTC).strftime("%Y%m%d_%H%M%S")


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd) + 0.0  # + 0.0 turns -0.0 into 0.0


def _envelope(kind: str, ts_ms: int) -> dict:
    return {"kind": kind, "schema_version": SCHEMA_VERSION, "source": SOURCE, "timestamp": iso_ms(ts_ms)}


def day_events(m: MarketDay, s: Signals, book: DayBook, symbols: tuple[str, ...], cfg: PaperConfig,
               stamp: Stamp = int, scenario_note: str = "") -> list[Event]:
    """All events of the day, sorted by emission time (then kind, then creation order)."""
    events: list[Event] = []
    trade_of_signal = {t.signal: t for t in book.trades}
    open_ms, close_ms = stamp(m.open_ms), stamp(m.close_ms)
    events.append((open_ms, 0, {**_envelope("system_status", open_ms), "component": "paper_trading",
                                "status": "running", "message": f"session open {scenario_note}".strip()}))
    events += market_bar_events(m, symbols, cfg, stamp)
    for i in range(len(s)):
        ts = stamp(int(s.ts[i]))
        events.append((ts, KIND_ORDER["signal"], signal_event(m, s, i, book, trade_of_signal.get(i), ts, stamp,
                                                                 cfg.strategy.timeframe)))
    for tr in book.trades:
        fill_ts, exit_ts = stamp(tr.fill.ts), stamp(tr.exit.ts)
        events.append((fill_ts, KIND_ORDER["trade"], trade_event(s, tr, cfg, fill_ts)))
        events.append((exit_ts, KIND_ORDER["trade_exit"], trade_exit_event(tr, cfg, fill_ts, exit_ts)))
    for sample in book.samples:
        ts = stamp(sample.ts)
        events += [(ts, KIND_ORDER["performance"], e) for e in performance_events(sample, ts)]
    events.append((close_ms, 9, {**_envelope("system_status", close_ms), "component": "paper_trading",
                                 "status": "stopped", "message": "session closed"}))
    events.sort(key=lambda e: (e[0], e[1]))  # stable: creation order breaks the remaining ties
    return events


def signal_event(m: MarketDay, s: Signals, i: int, book: DayBook, trade: Trade | None, ts: int,
                 stamp: Stamp, timeframe: str = "1min") -> dict:
    primary, secondary = patterns(s, i)
    action = ACTIONS[int(s.decision[i])]
    conf = float(s.confidence[i])
    vd = vikings_defenseurs(s, i)
    return {
        **_envelope("signal", ts),
        "signal_id": f"SIG_{_compact(ts)}_{i + 1:03d}",
        "symbol": m.symbols[int(s.sym[i])],
        "timeframe": timeframe,
        "battle_navale_analysis": {
            "primary_pattern": primary,
            "secondary_patterns": secondary,
            "confluence_levels": {"technical": _r(s.technical[i]), "fundamental": _r(s.fundamental[i]),
                                  "sentiment": _r(s.sentiment[i]), "overall": _r(s.overall[i])},
            "vikings_defenseurs": vd,
        },
        "features_snapshot": {
            "calculation_timestamp": iso_ms(stamp(int(s.calc_ts[i]))),
            "raw_features": [_r(x) for x in s.raw[i]],
            "normalized_features": [_r(x) for x in s.normalized[i]],
            "feature_importance": [_r(x) for x in s.importance[i]],
        },
        "decision": {
            "action": action,
            "confidence": _r(conf),
            "reasoning": reasoning(s, i, primary, vd["mode"], book.notes[i]),
            "executed": trade is not None,
            "execution_delay_ms": trade.fill.delay_ms if trade is not None else None,
        },
    }


def reasoning(s: Signals, i: int, primary: str, mode: str, note: str) -> str:
    level = "High" if s.overall[i] >= 0.7 else "Moderate" if s.overall[i] >= 0.55 else "Low"
    regime = "trend" if s.trending[i] else "range"
    text = f"{level} confluence + {primary.replace('_', ' ')} ({regime}) + {mode.split('_')[0].capitalize()}"
    if s.decision[i] == 0:
        return text + "; below threshold, hold"
    return text + (f"; not executed: {note}" if note else "")


def trade_event(s: Signals, tr: Trade, cfg: PaperConfig, ts: int) -> dict:
    i, f = tr.signal, tr.fill
    contract = cfg.contract(tr.symbol)
    return {
        **_envelope("trade", ts),
        "trade_id": trade_id(tr, ts),
        "symbol": tr.symbol,
        "action": ACTIONS[tr.side],
        "quantity": tr.qty,
        "price": f.price,
        "battle_navale": {
            "signal_type": SIGNAL_TYPES[(bool(s.trending[i]), tr.side)],
            "pattern": patterns(s, i)[0],
            "confluence_score": _r(s.overall[i]),
            "features": {f"feature_{k + 1}": _r(x) for k, x in enumerate(s.raw[i])},
            "market_regime": "TRENDING" if s.trending[i] else "RANGING",
            "strength": strength_label(float(s.confidence[i])),
        },
        "market_context": {
            "bid": f.bid, "ask": f.ask, "spread": _r(f.ask - f.bid, 6),
            "volume": int(s.session_volume[i]),
            "volatility": _r(s.sigma_1s[i] * np.sqrt(RTH_SECONDS), 6),
        },
        "execution": {
            "order_id": order_id(tr, ts, entry=True),
            "fill_price": f.price,
            "slippage": f.slippage,
            "latency_ms": f.latency_ms,
            "commission": _r(tr.qty * contract.commission, 2),
        },
        "risk_management": {
            "position_size_pct": _r(tr.position_size_pct, 6),
            "stop_loss": tr.stop,
            "take_profit": tr.target,
            "risk_reward_ratio": _r(tr.risk_reward, 4),
            "portfolio_heat": _r(tr.portfolio_heat, 6),
        },
    }


def trade_id(tr: Trade, fill_ts_stamped: int) -> str:
    return f"TRADE_{_compact(fill_ts_stamped)}_{tr.seq:03d}"


def order_id(tr: Trade, fill_ts_stamped: int, entry: bool) -> str:
    day = _compact(fill_ts_stamped)[:8]
    return f"ORD_{day}_{2 * tr.seq - (1 if entry else 0):04d}"


def trade_exit_event(tr: Trade, cfg: PaperConfig, fill_ts: int, exit_ts: int) -> dict:
    contract = cfg.contract(tr.symbol)
    ex = tr.exit
    quote = ex.bid if tr.side > 0 else ex.ask
    exit_slippage = max(0.0, (quote - ex.price) * tr.side) if ex.reason == "stop_loss" else 0.0
    return {
        **_envelope("trade_exit", exit_ts),
        "trade_id": trade_id(tr, fill_ts),
        "symbol": tr.symbol,
        "action": ACTIONS[-tr.side],
        "quantity": tr.qty,
        "exit_price": ex.price,
        "entry_price": tr.fill.price,
        "entry_timestamp": iso_ms(fill_ts),
        "pnl": _r(tr.pnl, 2),
        "pnl_pct": _r((ex.price - tr.fill.price) / tr.fill.price * tr.side, 6),
        "commission": _r(tr.qty * contract.commission, 2),
        "slippage": exit_slippage,
        "holding_time_s": _r((exit_ts - fill_ts) / 1000.0, 3),
        "reason": ex.reason,
        "order_id": order_id(tr, fill_ts, entry=False),
    }


def performance_events(p: Sample, ts: int) -> list[dict]:
    values = {
        "equity": _r(p.equity, 2), "daily_pnl": _r(p.realized + p.unrealized, 2),
        "realized_pnl": _r(p.realized, 2), "unrealized_pnl": _r(p.unrealized, 2),
        "win_rate": _r(p.wins / p.closed, 4) if p.closed else 0.0, "trades_closed": float(p.closed),
        "open_positions": float(p.open_positions), "portfolio_heat": _r(p.heat, 6),
        "drawdown": _r(p.drawdown, 6), "snapshots_per_hour": _r(p.snapshots_per_hour, 1),
        "latency_ms": _r(p.latency_ms, 3),
    }
    tags = {"strategy": STRATEGY, "account": "paper", "session": "rth", "component": "paper_trading"}
    return [{**_envelope("performance", ts), "metric": name, "value": values[name], "unit": unit, "tags": tags}
            for name, unit in METRICS]


def market_bar_events(m: MarketDay, symbols: tuple[str, ...], cfg: PaperConfig, stamp: Stamp) -> list[Event]:
    """1-min bars (``cfg.bar_minutes``) per symbol; only minutes with at least one trade."""
    tf_ms = cfg.bar_minutes * 60_000
    timeframe = f"{cfg.bar_minutes}min"
    out: list[Event] = []
    for sym in symbols:
        j = m.symbols.index(sym)
        rows = np.flatnonzero(m.has_bar[:, j])
        if len(rows) == 0:
            continue
        minute = m.sec_ms[rows] // tf_ms * tf_ms
        start = np.flatnonzero(np.concatenate([[True], minute[1:] != minute[:-1]]))
        end = np.concatenate([start[1:], [len(rows)]]) - 1
        q = m.quotes[sym]
        traded = q.last_size > 0
        counts = dict(zip(*np.unique(q.ts[traded] // tf_ms * tf_ms, return_counts=True), strict=True))
        cols = {
            "open": m.open_[rows][start, j], "high": np.maximum.reduceat(m.high[rows, j], start),
            "low": np.minimum.reduceat(m.low[rows, j], start), "close": m.close[rows][end, j],
            "volume": np.add.reduceat(m.volume[rows, j], start),
            "vwap": np.add.reduceat(m.price_volume[rows, j], start) / np.maximum(np.add.reduceat(m.volume[rows, j], start), 1),
            "bid_volume": np.add.reduceat(m.sell_volume[rows, j], start),
            "ask_volume": np.add.reduceat(m.buy_volume[rows, j], start),
        }
        for b, t0 in enumerate(minute[start]):
            ts = stamp(int(t0))
            emit = stamp(int(min(t0 + tf_ms, m.close_ms)))
            out.append((emit, KIND_ORDER["market_bar"], {
                **_envelope("market_bar", ts), "symbol": sym, "timeframe": timeframe,
                "open": float(cols["open"][b]), "high": float(cols["high"][b]), "low": float(cols["low"][b]),
                "close": float(cols["close"][b]), "volume": float(cols["volume"][b]),
                "vwap": _r(cols["vwap"][b]), "bid_volume": float(cols["bid_volume"][b]),
                "ask_volume": float(cols["ask_volume"][b]), "trade_count": int(counts.get(int(t0), 0)),
            }))
    return out
