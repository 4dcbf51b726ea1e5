"""The seed's own test examples, run against this package (``gen`` and ``cfg`` from conftest)."""

from datetime import datetime, timezone

import pytest

from mia_pipeline.synthetic import GenConfig, MIA_IA_DataGenerator


def test_shapes_and_invariants():
    """Test des formes et invariants critiques"""
    gen = MIA_IA_DataGenerator(seed=1)
    cfg = GenConfig(start=datetime(2025, 8, 21, 13, 30, tzinfo=timezone.utc), minutes=30)  # noqa: UP017 (seed verbatim)
    data = gen.generate_realistic_session(cfg, scenario="confluence_breakout")

    # Vérification des colonnes
    assert "ts" in data["l1"].columns
    assert "symbol" in data["bars"].columns

    # Vérification des invariants
    assert (data["l1"]["ask"] > data["l1"]["bid"]).all()
    assert (data["bars"]["high"] >= data["bars"]["low"]).all()


@pytest.mark.parametrize("scenario, label", [("orderflow_accumulation", "long_bias"),
                                             ("delta_divergence", "divergence_warning")])
def test_scenario_patterns(gen, cfg, scenario, label):
    """Test des patterns de scénarios (the seed's loop, one case per scenario it checks a label of)"""
    data = gen.generate_realistic_session(cfg, scenario=scenario)

    # Vérification des labels
    assert label in data["ground_truth"]["label"].values


def test_quick_start_and_validation_examples(gen, cfg):
    """The seed's usage and "Validation des données" snippets."""
    data = gen.generate_realistic_session(cfg, scenario="normal")
    l1_data, bars_data, gt_data = data["l1"], data["bars"], data["ground_truth"]
    assert (l1_data["ask"] > l1_data["bid"]).all()
    assert (bars_data["high"] >= bars_data["low"]).all()
    assert (gt_data.loc[gt_data["label"] == "long_bias", "side"] == 1).all()
    advanced = gen.generate_realistic_session(cfg, scenario="confluence_breakout", leadership="NQ_leads",
                                              strength=0.18, options_context=True, include_labels=True)
    assert set(advanced) == {"l1", "l2", "bars", "footprint", "context", "leadership_features", "ground_truth"}
