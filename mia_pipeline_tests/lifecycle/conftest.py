"""Fixtures of the lifecycle tests (archive, cleanup, optimise, Dagster wrappers)."""

import pytest

from mia_pipeline_tests.lifecycle._archive_data import data_root


@pytest.fixture
def lay(tmp_path_factory, tmp_path, monkeypatch):
    """A fresh copy of the simulated data root, named by MIA_DATA_DIR (no mia.yaml, no backup target)."""
    layout = data_root(tmp_path_factory, tmp_path)
    monkeypatch.setenv("MIA_DATA_DIR", str(layout.root))
    monkeypatch.delenv("MIA_CONFIG", raising=False)
    monkeypatch.delenv("MIA_BACKUP_TARGET", raising=False)
    return layout
