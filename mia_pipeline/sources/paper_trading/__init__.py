"""Paper trading: the embedded source that makes the pipeline run without a broker.

A reference Battle Navale strategy trades synthetic ES/NQ regular sessions through a simulated
broker and writes ``trade``, ``trade_exit``, ``signal``, ``market_bar``, ``performance`` (and
``system_status``) events to the landing zone as ``paper_trading_<YYYY-MM-DD>.jsonl``.

Modules, in data-flow order: ``market`` (synthetic session -> per-second arrays), ``features`` (the
8 features, regime), ``strategy`` (cadence, scores, confluence, decisions), ``broker`` (fills,
stops/targets), ``portfolio`` (sizing, heat, performance samples), ``events`` (guide-shaped
payloads), ``writer`` (atomic files, appends), ``engine`` (``simulate``), ``realtime``.

>>> from datetime import date
>>> from pathlib import Path
>>> summary = simulate(Path("data/live/streaming"), start=date(2025, 6, 23), days=1)  # doctest: +SKIP
"""

from mia_pipeline.sources.paper_trading.config import (
    CONTRACTS,
    BrokerConfig,
    Contract,
    PaperConfig,
    RiskConfig,
    StrategyConfig,
)
from mia_pipeline.sources.paper_trading.engine import SimulationSummary, plan_day, simulate
from mia_pipeline.sources.paper_trading.events import SOURCE
from mia_pipeline.sources.paper_trading.features import FEATURE_NAMES
from mia_pipeline.sources.paper_trading.writer import day_file

__all__ = [
    "CONTRACTS",
    "FEATURE_NAMES",
    "SOURCE",
    "BrokerConfig",
    "Contract",
    "PaperConfig",
    "RiskConfig",
    "SimulationSummary",
    "StrategyConfig",
    "day_file",
    "plan_day",
    "simulate",
]
