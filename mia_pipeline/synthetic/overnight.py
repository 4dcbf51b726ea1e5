"""Consecutive sessions continue: each day opens at the previous close times an overnight move.

The move covers the time between the previous session's last quote and the next session's start
that was not simulated (log units; ES, and NQ correlated like the intraday common factor)::

    g_ES = sigma * z_1,   g_NQ = k * sigma * (sqrt(c) z_1 + sqrt(1 - c) z_2)
    sigma^2 = open_minutes * (overnight_vol_ratio * es_sigma_1min)^2 + closed_hours * closed_sigma_per_hour^2

``z`` are Student-t(``t_nu``) draws at unit variance, clipped to +-``overnight_z_max``; ``c`` and
``k`` are the model's ES-NQ shock correlation and NQ/ES volatility ratio. ``open_minutes`` counts the
Globex-open minutes in the gap (the overnight session that a US-session day does not simulate);
``closed_hours`` the hours Globex is closed (the daily 17:00-18:00 ET halt, weekends, holidays), so
weekends and holidays are wider. With the defaults: US session to US session on a weeknight
(990 open minutes, 1 h halt) sigma = 0.41 % (ES ~21 points at 5000), over a weekend (49 h closed)
0.58 %, over a Monday holiday 0.66 %; 23-h Globex days back to back (the halt only) 0.06 %.

The draw is seeded by ``session_seed(base_seed, <ET date of the next start>, "overnight")``: the same
run gives the same bytes. Only a run chains: its first day starts at the configured prices, and a day
generated alone is that first day. Chaining a lone day from a fixed anchor date would mean generating
every day since the anchor (the close depends on the whole path), so it is not done.

>>> from datetime import datetime, timezone
>>> fri = SessionClose(int(datetime(2025, 8, 22, 20, tzinfo=timezone.utc).timestamp() * 1000), 5000.0, 18000.0)
>>> mon = datetime(2025, 8, 25, 13, 30, tzinfo=timezone.utc)
>>> tue_close, wed = fri.ts_ms - 3 * 86_400_000, datetime(2025, 8, 20, 13, 30, tzinfo=timezone.utc)
>>> round(gap_sigma(fri.ts_ms, mon) * 100, 2), round(gap_sigma(tue_close, wed) * 100, 2)  # percent
(0.58, 0.41)
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import numpy as np

from mia_pipeline.synthetic.columns import Table, col, rows_by_value
from mia_pipeline.synthetic.model import DEFAULT_MODEL, MarketModel
from mia_pipeline.synthetic.schedule import open_intervals
from mia_pipeline.synthetic.seeding import session_seed
from mia_pipeline.synthetic.volatility import student_t


class SessionClose(NamedTuple):
    """Where a session ended: its last quote's time (epoch ms) and mid-prices."""

    ts_ms: int
    es: float
    nq: float


def session_close(l1: Table, es: str = "ES", nq: str = "NQ") -> SessionClose | None:
    """The last L1 quote of each symbol (``None`` for an empty session)."""
    rows = rows_by_value(l1)
    if es not in rows or nq not in rows or not len(rows[es]) or not len(rows[nq]):
        return None
    ts = col(l1, "ts", np.int64)
    bid, ask = col(l1, "bid", np.float64), col(l1, "ask", np.float64)
    i, j = rows[es][-1], rows[nq][-1]
    return SessionClose(int(max(ts[i], ts[j])), float((bid[i] + ask[i]) / 2), float((bid[j] + ask[j]) / 2))


def gap_sigma(prev_ms: int, start: datetime, model: MarketModel = DEFAULT_MODEL) -> float:
    """ES log sigma of the move from ``prev_ms`` (epoch ms) to ``start`` (tz-aware)."""
    end_ms = int(round(start.timestamp() * 1000))
    if end_ms <= prev_ms:
        return 0.0
    open_ms = sum(iv.close_ms - iv.open_ms for iv in open_intervals(prev_ms, end_ms))
    open_min, closed_h = open_ms / 60_000, (end_ms - prev_ms - open_ms) / 3_600_000
    per_min = model.overnight_vol_ratio * model.es_sigma_1min
    return float(np.sqrt(open_min * per_min**2 + closed_h * model.closed_sigma_per_hour**2))


def overnight_move(base_seed: int, prev_ms: int, start: datetime, model: MarketModel = DEFAULT_MODEL) -> np.ndarray:
    """The (ES, NQ) log moves from ``prev_ms`` to ``start``, drawn from the model above."""
    rng = np.random.default_rng(session_seed(base_seed, start, "overnight"))
    z = np.clip(student_t(rng, model.t_nu, 2), -model.overnight_z_max, model.overnight_z_max)
    c = model.es_nq_corr
    sigma = gap_sigma(prev_ms, start, model)
    return sigma * np.array([z[0], model.nq_vol_ratio * (np.sqrt(c) * z[0] + np.sqrt(1 - c) * z[1])])


def next_open(close: SessionClose, start: datetime, base_seed: int,
              model: MarketModel = DEFAULT_MODEL) -> tuple[float, float]:
    """(ES, NQ) start prices of the session starting at ``start`` after ``close``."""
    g = overnight_move(base_seed, close.ts_ms, start, model)
    return float(close.es * np.exp(g[0])), float(close.nq * np.exp(g[1]))


__all__ = ["SessionClose", "gap_sigma", "next_open", "overnight_move", "session_close"]
