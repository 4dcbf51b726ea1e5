"""Helpers of the synthetic-generator tests (a module with a unique name: tests import it directly)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
import pandas as pd

from mia_pipeline.synthetic import GenConfig, MIA_IA_DataGenerator, realism

# 09:30 ET on a Thursday (the seed's example start) and 12:00 ET (quieter midday).
US_OPEN = datetime(2025, 8, 21, 13, 30, tzinfo=UTC)
MIDDAY = datetime(2025, 8, 21, 16, 0, tzinfo=UTC)


@lru_cache(maxsize=64)
def session(scenario: str = "normal", *, seed: int = 7, minutes: int = 60, start: datetime = US_OPEN,
            leadership: str = "NQ_leads", strength: float = 0.15, options: bool = True) -> dict[str, pd.DataFrame]:
    """A generated session, cached across tests (treat as read-only)."""
    gen = MIA_IA_DataGenerator(seed=seed)
    return gen.generate_realistic_session(GenConfig(start=start, minutes=minutes), scenario=scenario,
                                          leadership=leadership, strength=strength, options_context=options)


def quotes(data: dict[str, pd.DataFrame], symbol: str = "ES") -> pd.DataFrame:
    """L1 rows of one symbol with a ``mid`` column."""
    l1 = data["l1"]
    rows = l1[l1["symbol"] == symbol].reset_index(drop=True)
    return rows.assign(mid=(rows["bid"] + rows["ask"]) / 2.0)


def minute_mids(data: dict[str, pd.DataFrame], symbol: str = "ES") -> np.ndarray:
    """Mid at the last L1 row of each minute."""
    q = quotes(data, symbol)
    return q.groupby(q["ts"] // 60_000)["mid"].last().to_numpy()


def second_returns(data: dict[str, pd.DataFrame], symbol: str) -> np.ndarray:
    """1-s log mid returns, winsorised at 6 RMS (a few jumps must not decide a correlation)."""
    q = quotes(data, symbol)
    r = np.diff(np.log(q.groupby(q["ts"] // 1000)["mid"].last().to_numpy()))
    lim = 6 * np.sqrt(np.mean(r**2))
    return np.clip(r, -lim, lim)


# The scheduled release times of issue 11 (ET): US data at 08:30 and 10:00, the cash open at 09:30.
RELEASE_HOURS = (8.5, 9.5, 10.0)


def near_release(et_hour: np.ndarray, minutes: int = 2) -> np.ndarray:
    """True for the minutes (by their ET start hour) within +-``minutes`` of a release time."""
    minute = np.rint(np.nan_to_num(et_hour, nan=-1.0) * 60.0)
    return np.min(np.abs(minute[:, None] - np.array(RELEASE_HOURS)[None] * 60.0), axis=1) <= minutes


def seed_set(k: int, leadership: str = "NQ_leads") -> tuple[dict, dict, list[dict]]:
    """Seed set ``k`` of the realism battery (20 consecutive 23-h `normal` Globex days from 2025-06-01,
    base seed 0), generated once per test run: ``(measurements, moves, half_moves)`` with the
    deseasonalised moves of the 20 days and of each 10-day half deseasonalised on its own."""
    return _seed_set(k, leadership)


@lru_cache(maxsize=16)
def _seed_set(k: int, leadership: str) -> tuple[dict, dict, list[dict]]:
    per = realism.summarise(realism.seed_set_sessions(k, 0, leadership=leadership))
    half = len(per) // 2
    return (realism.measure(summaries=per), realism.deseasonalised_moves(summaries=per),
            [realism.deseasonalised_moves(summaries=part) for part in (per[:half], per[half:])])
