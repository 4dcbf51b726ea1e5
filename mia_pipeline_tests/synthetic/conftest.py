"""Fixtures of the synthetic-generator tests: ``gen`` and ``cfg`` exactly as in the seed's first example."""

from __future__ import annotations

import pytest
from synth_helpers import US_OPEN

from mia_pipeline.synthetic import GenConfig, MIA_IA_DataGenerator


@pytest.fixture
def gen() -> MIA_IA_DataGenerator:
    return MIA_IA_DataGenerator(seed=42)


@pytest.fixture
def cfg() -> GenConfig:
    """2 hours from 2025-08-21 13:30 UTC (09:30 ET)."""
    return GenConfig(start=US_OPEN, minutes=120)
