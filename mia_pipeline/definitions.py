"""Code location: everything under ``mia_pipeline/defs/`` (assets, checks, jobs, schedules, sensors, resources)."""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
