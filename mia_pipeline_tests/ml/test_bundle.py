"""A dataset bundle on disk: written whole, read back identical, byte-stable across re-runs, and a
folder or file that is not a dataset is refused with a message (never half-read)."""

import json

import pandas as pd
import pytest
from conftest import END, START

from mia_pipeline.ml import DatasetError
from mia_pipeline.ml.bundle import (
    FEATURES_FILE,
    LABELS_FILE,
    META_FILE,
    SPLITS_FILE,
    SplitConfig,
    build_bundle,
    read_bundle,
    write_bundle,
)
from mia_pipeline.ml.splits import split_problems


@pytest.fixture(scope="module")
def bundle(sim_store):
    return build_bundle(sim_store, START, END)


def test_bundle_round_trips_and_is_byte_stable(bundle, sim_store, tmp_path):
    folder = write_bundle(bundle, tmp_path / bundle.name)
    assert folder.name == f"{START}_{END}"
    back = read_bundle(folder)
    pd.testing.assert_frame_equal(back.features, bundle.features)
    pd.testing.assert_frame_equal(back.labels, bundle.labels)
    assert read_bundle(folder / FEATURES_FILE).features.shape == bundle.features.shape
    first = {f: (folder / f).read_bytes() for f in (FEATURES_FILE, LABELS_FILE, SPLITS_FILE)}
    write_bundle(build_bundle(sim_store, START, END), folder)   # a re-run of the same window
    assert {f: (folder / f).read_bytes() for f in first} == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name], "no temp or old folder left"


def test_bundle_metadata_names_its_sources_and_splits(bundle):
    meta = bundle.metadata
    assert meta["window"] == {"start": START, "end": END} and meta["rows"] == len(bundle.features)
    days = {p["day"] for p in meta["source_partitions"] if p["dataset"] == "signals"}
    assert days == {"2025-06-23", "2025-06-24", "2025-06-25"}
    assert all(len(p["sha256"]) == 64 for p in meta["source_partitions"])
    assert meta["splits"]["folds"] == {"purged_kfold": 5, "walk_forward": 4}


@pytest.mark.parametrize("scheme", ["purged_kfold", "walk_forward"])
def test_shipped_splits_are_purged_and_embargoed(bundle, scheme):
    labels = bundle.labels
    pos = pd.Series(range(len(labels)), index=labels.index)
    from mia_pipeline.ml.splits import Split

    s = bundle.splits[bundle.splits["scheme"] == scheme]
    splits = [Split(int(f), pos[g.loc[g["role"] == "train", "signal_id"]].to_numpy(),
                    pos[g.loc[g["role"] == "test", "signal_id"]].to_numpy()) for f, g in s.groupby("fold")]
    assert splits and all(len(x.test) for x in splits)
    assert split_problems(labels["t0"].to_numpy(), labels["t1"].to_numpy(), splits,
                          SplitConfig().embargo_td) == []


def test_not_a_dataset_is_refused(bundle, tmp_path):
    with pytest.raises(DatasetError, match="no such dataset"):
        read_bundle(tmp_path / "nope")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="not a dataset"):
        read_bundle(tmp_path / "x.csv")
    folder = write_bundle(bundle, tmp_path / "d")
    (folder / META_FILE).write_text("[1, 2]")
    with pytest.raises(DatasetError, match="not a dataset description"):
        read_bundle(folder)
    (folder / META_FILE).write_text(json.dumps(bundle.metadata))
    (folder / LABELS_FILE).write_bytes(b"PAR1 garbage")
    with pytest.raises(DatasetError, match="not a readable Parquet"):
        read_bundle(folder)
    (folder / LABELS_FILE).unlink()
    with pytest.raises(DatasetError, match="missing labels_dataset.parquet"):
        read_bundle(folder)


def test_split_ids_are_categories_in_dataset_order(bundle, tmp_path):
    """A reader maps split rows to dataset rows by code (no string hashing): the categories written are
    the dataset's rows in order, and the codes read back equal a hash lookup."""
    from mia_pipeline.quality.ml_checks import _positions

    back = read_bundle(write_bundle(bundle, tmp_path / "d"))
    ids = back.splits["signal_id"]
    assert list(ids.cat.categories) == list(back.labels.index)
    assert (_positions(ids, back.labels.index) == back.labels.index.get_indexer(ids.astype(str))).all()
    renamed = ids.cat.rename_categories(list(reversed(ids.cat.categories)))  # categories not the rows' order
    assert (_positions(renamed, back.labels.index) == back.labels.index.get_indexer(renamed.astype(str))).all()
