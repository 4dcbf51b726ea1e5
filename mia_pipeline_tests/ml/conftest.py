from datetime import date

import pytest

from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.layout import Layout, init_tree
from mia_pipeline.ml import MLDatasetBuilder
from mia_pipeline.sources.paper_trading import simulate
from mia_pipeline.storage.partitions import PartitionStore

START, END = "2025-06-23", "2025-06-25"


def simulated_store(root, start: date, days: int) -> PartitionStore:
    """``days`` simulated paper-trading days from ``start`` landed into daily partitions under ``root``."""
    lay = Layout(root / "data")
    init_tree(lay)
    simulate(lay.streaming_dir, start=start, days=days, seed=7)
    store = PartitionStore(lay)
    ingest_once(lay, store, None)
    return store


@pytest.fixture(scope="session")
def sim_store(tmp_path_factory) -> PartitionStore:
    """Three simulated paper-trading days landed into daily partitions (built once, read-only)."""
    return simulated_store(tmp_path_factory.mktemp("ml"), date(2025, 6, 23), 3)


@pytest.fixture(scope="session")
def built(sim_store):
    """(builder, snapshots, features, labels) for the three days."""
    builder = MLDatasetBuilder(sim_store)
    features, labels = builder.build_features_dataset(START, END)
    return builder, builder.load_snapshots(START, END), features, labels


@pytest.fixture(scope="session")
def two_weeks_store(tmp_path_factory) -> PartitionStore:
    """Simulated days on both sides of a week boundary: Thu 2025-06-26, Fri 27 (week of Sunday
    2025-06-22) and Mon 2025-06-30, Tue 07-01 (week of Sunday 2025-06-29)."""
    return simulated_store(tmp_path_factory.mktemp("ml_two_weeks"), date(2025, 6, 26), 6)
