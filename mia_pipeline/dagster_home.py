"""The Dagster instance home of a data root: ``<data>/.dagster`` with the package's ``dagster.yaml``.

Every front door (each ``mia`` command, ``make ui``, CI) derives the instance from the data root,
so the UI, the CLI and the disk always talk about the same data. No Dagster import here.
"""

from __future__ import annotations

from pathlib import Path

from mia_pipeline.layout import Layout
from mia_pipeline.storage import atomic_write_bytes

INSTANCE_CONFIG = Path(__file__).with_name("dagster.yaml")


def ensure_dagster_home(layout: Layout) -> Path:
    """Create ``<data>/.dagster`` with the instance config (rewritten only when it changed); return it."""
    home = layout.dagster_dir
    home.mkdir(parents=True, exist_ok=True)
    wanted = INSTANCE_CONFIG.read_bytes()
    target = home / "dagster.yaml"
    try:
        current = target.read_bytes()
    except FileNotFoundError:
        current = None
    if current != wanted:
        atomic_write_bytes(target, wanted)
    return home
