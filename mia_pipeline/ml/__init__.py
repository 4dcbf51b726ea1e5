"""ML datasets: point-in-time features, labels with horizons (t0/t1), purged splits, leakage checks.

No Dagster imports here (library layer); ``mia_pipeline.defs`` and the CLI wrap these functions.
"""

from mia_pipeline.ml.builder import MLConfig, MLDatasetBuilder
from mia_pipeline.ml.errors import DatasetError
from mia_pipeline.ml.features import feature_columns
from mia_pipeline.ml.splits import (
           Normaliser,
           Split,
           normalise_split,
           purged_kfold,
           split_problems,
           walk_forward,
)

__all__ = ["MLConfig", "MLDatasetBuilder", "DatasetError", "feature_columns", "Normaliser", "Split",
           "normalise_split", "purged_kfold", "split_problems", "walk_forward"]
