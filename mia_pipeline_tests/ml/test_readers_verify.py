"""Issue 25 (4): readers verify before they serve.

A flipped byte in a day's partition (or in an archive month file) is never read as rows: `mia export`,
`mia validate --day`, the ML builder and DuckDB relations stop with one line naming the file (exit 1);
lineage records the very files the build read.
"""

import shutil
from datetime import date

import duckdb
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.layout import Layout
from mia_pipeline.lifecycle.archive import archive
from mia_pipeline.ml.bundle import build_bundle
from mia_pipeline.storage import PartitionStore, StorageError
from mia_pipeline_tests.lifecycle._backup_data import flip

DAY = "2025-06-24"


@pytest.fixture
def root(sim_store, tmp_path, monkeypatch):
    monkeypatch.delenv("MIA_CONFIG", raising=False)
    monkeypatch.delenv("MIA_DATA_DIR", raising=False)
    dst = tmp_path / "data"
    shutil.copytree(sim_store.layout.root, dst)
    return Layout(dst)


def mia(layout, *args):
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args])
    assert "Traceback" not in res.output, res.output
    return res


def test_a_flipped_byte_in_a_partition_stops_every_reader(root):
    store = PartitionStore(root)
    flip(root.dataset_file(DAY, "signals"))
    with pytest.raises(StorageError, match=f"{DAY}/signals: .*signals.parquet"):
        store.read(DAY, "signals")
    with pytest.raises(StorageError, match="does not match the sha256"):
        store.relation(duckdb.connect(), "signals", DAY, DAY)
    res = mia(root, "export")
    assert res.exit_code == 1 and f"{DAY}/signals" in res.output and "check-integrity" in res.output
    assert not (root.ml_ready_dir / "exports").exists() or not any((root.ml_ready_dir / "exports").iterdir())
    res = mia(root, "validate", "--day", DAY)
    assert res.exit_code == 1 and f"{DAY}/signals" in res.output


def test_a_partition_with_other_rows_than_its_manifest_is_refused(root):
    store = PartitionStore(root)
    other = PartitionStore(root).read("2025-06-23", "signals")
    path = root.dataset_file(DAY, "signals")
    import pyarrow.parquet as pq
    pq.write_table(other, path)  # a well-formed file, but not the one the manifest vouches for
    with pytest.raises(StorageError, match=f"{DAY}/signals"):
        store.read(DAY, "signals")


def test_a_flipped_byte_in_an_archive_month_file_is_never_served(root):
    store = PartitionStore(root)
    archive(root, store, date(2025, 7, 1))
    assert store.read(DAY, "signals").num_rows > 0
    month = next(root.archive_month_dir("2025-06").glob("signals*.parquet"))
    flip(month)
    with pytest.raises(StorageError, match="archived"):
        store.read(DAY, "signals")
    assert mia(root, "export").exit_code == 1


def test_lineage_records_what_the_build_read(root):
    store = PartitionStore(root)
    meta = build_bundle(store, "2025-06-23", "2025-06-25").metadata
    served = {(p["dataset"], p["day"]): p["sha256"] for p in meta["source_partitions"]}
    assert served[("signals", DAY)] == store.entry(DAY, "signals").sha256
    with store.recording_reads() as log:
        store.read(DAY, "signals")
    assert log == [{"dataset": "signals", "day": DAY, "rows": store.entry(DAY, "signals").rows,
                    "sha256": store.entry(DAY, "signals").sha256}]
