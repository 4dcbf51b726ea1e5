"""Synthetic ES/NQ futures sessions with ground truth (the seed's ``MIA_IA_DataGenerator``).

Pure numpy/pandas/pyarrow; no Dagster. Public API:

- ``GenConfig``, ``MIA_IA_DataGenerator`` (``generate_realistic_session``, ``export_to_parquet``)
- ``SCENARIOS``, ``LEADERSHIPS``, ``TABLES``
- ``generate_session_to_dir`` (generate + check + atomic write + meta.json)
- ``check_invariants`` / ``InvariantResult`` / ``CHECK_NAMES`` (one result per invariant)
- ``OfflineFeed`` (replay exported sessions as one time-ordered stream)
- ``mia_pipeline.synthetic.realism`` (stylized-facts battery)
"""

from mia_pipeline.synthetic.config import LABEL_SIDE, LEADERSHIPS, SCENARIO_DESCRIPTIONS, SCENARIOS, GenConfig
from mia_pipeline.synthetic.feed import FeedEvent, OfflineFeed
from mia_pipeline.synthetic.frames import SCHEMAS, TABLES
from mia_pipeline.synthetic.generator import MIA_IA_DataGenerator
from mia_pipeline.synthetic.invariants import (
    CHECK_DESCRIPTIONS,
    CHECK_NAMES,
    InvariantResult,
    InvariantViolation,
    assert_invariants,
    check_invariants,
)
from mia_pipeline.synthetic.model import DEFAULT_MODEL, GAUSSIAN_WALK, MarketModel
from mia_pipeline.synthetic.session_dir import generate_session_to_dir

__all__ = [
    "CHECK_DESCRIPTIONS",
    "CHECK_NAMES",
    "DEFAULT_MODEL",
    "GAUSSIAN_WALK",
    "LABEL_SIDE",
    "LEADERSHIPS",
    "SCENARIOS",
    "SCENARIO_DESCRIPTIONS",
    "SCHEMAS",
    "TABLES",
    "FeedEvent",
    "GenConfig",
    "InvariantResult",
    "InvariantViolation",
    "MIA_IA_DataGenerator",
    "MarketModel",
    "OfflineFeed",
    "assert_invariants",
    "check_invariants",
    "generate_session_to_dir",
]
