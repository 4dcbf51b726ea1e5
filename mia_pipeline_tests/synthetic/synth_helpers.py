"""Helpers of the synthetic-generator tests (a module with a unique name: tests import it directly)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
import pandas as pd

from mia_pipeline.synthetic import GenConfig, MIA_IA_DataGenerator

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
