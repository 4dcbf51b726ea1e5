"""The Dagster instance home of a data root: ``<data>/.dagster`` with the package's ``dagster.yaml``.

Every front door (each ``mia`` command, ``make ui``, CI) derives the instance from the data root,
so the UI, the CLI and the disk always talk about the same data. No Dagster import here.
"""

from __future__ import annotations

from pathlib import Path

from mia_pipeline.layout import Layout
from mia_pipeline.storage import atomic_write_bytes

INSTANCE_CONFIG = Path(__file__).with_name("dagster.yaml")


# The code location as `make ui` names it: Dagster's own CLI (`dagster sensor start|stop ... -w`) can
# address this instance's sensors from any directory with this file.
WORKSPACE = (b"load_from:\n  - python_module:\n      module_name: mia_pipeline.definitions\n"
             b"      location_name: mia_pipeline\n")


def _write_if_changed(target: Path, wanted: bytes) -> None:
    try:
        current = target.read_bytes()
    except FileNotFoundError:
        current = None
    if current != wanted:
        atomic_write_bytes(target, wanted)


def ensure_dagster_home(layout: Layout) -> Path:
    """Create ``<data>/.dagster`` with the instance config and a workspace.yaml naming the code location
    (each rewritten only when it changed); return it."""
    home = layout.dagster_dir
    home.mkdir(parents=True, exist_ok=True)
    _write_if_changed(home / "dagster.yaml", INSTANCE_CONFIG.read_bytes())
    _write_if_changed(home / "workspace.yaml", WORKSPACE)
    return home
