"""The partition store: atomic writes with manifests, staged commits rolled forward, closed-interval
reads, schema widening, verification against the manifest."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mia_pipeline.storage import PartitionStore, StorageError, connect_readonly, refresh_views
from mia_pipeline.storage.atomic import sha256_file


def _trades(n, start=0):
    return pa.table({"trade_id": [f"T{i}" for i in range(start, start + n)], "price": [1.0 + i for i in range(n)]})


def test_write_then_read_roundtrip_with_manifest(layout):
    store = PartitionStore(layout)
    entry = store.write("2025-06-23", "trades", _trades(5))
    assert entry.rows == 5 and entry.compression == "zstd" and entry.staged is None
    assert store.read("2025-06-23", "trades").equals(_trades(5))
    manifest = json.loads(layout.manifest_file("2025-06-23").read_text())
    rec = manifest["datasets"]["trades"]
    assert rec["rows"] == 5
    assert rec["sha256"] == sha256_file(layout.dataset_file("2025-06-23", "trades"))
    assert rec["schema_version"] == 1 and manifest["created_at"] and manifest["day"] == "2025-06-23"
    assert store.verify("2025-06-23") == []


def test_rewrite_replaces_exactly_that_partition(layout):
    store = PartitionStore(layout)
    store.write("2025-06-23", "trades", _trades(5))
    store.write("2025-06-23", "signals", pa.table({"signal_id": ["S1"]}))
    store.write("2025-06-24", "trades", _trades(2, 100))
    store.write("2025-06-23", "trades", _trades(3, 50))
    assert store.read("2025-06-23", "trades").column("trade_id").to_pylist() == ["T50", "T51", "T52"]
    assert store.read("2025-06-23", "signals").num_rows == 1
    assert store.read("2025-06-24", "trades").num_rows == 2
    assert not list(layout.day_dir("2025-06-23").glob(".*.tmp"))


@pytest.mark.parametrize("compression", ["zstd", "snappy", "gzip", "lz4", "none"])
def test_compressions_selectable(layout, compression):
    store = PartitionStore(layout, compression=compression)
    store.write("2025-06-23", "trades", _trades(10))
    codec = pq.ParquetFile(layout.dataset_file("2025-06-23", "trades")).metadata.row_group(0).column(0).compression
    assert codec.lower().startswith({"none": "uncompressed", "lz4": "lz4"}.get(compression, compression))


def test_unknown_compression_is_an_error(layout):
    with pytest.raises(StorageError, match="unknown compression 'brotli'; choose one of"):
        PartitionStore(layout, compression="brotli")


def test_read_window_closed_interval_and_schema_evolution(layout):
    store = PartitionStore(layout)
    store.write("2025-06-23", "trades", _trades(2))
    store.write("2025-06-25", "trades", _trades(1, 9).append_column("venue", pa.array(["CME"])), schema_version=2)
    store.write("2025-06-26", "trades", _trades(1, 20))
    t = store.read_window("trades", "2025-06-22", "2025-06-25")
    assert t.column("trade_id").to_pylist() == ["T0", "T1", "T9"]
    assert t.column("venue").to_pylist() == [None, None, "CME"]  # old partitions widen, not break
    assert store.read_window("trades", "2025-07-01", "2025-07-02").num_rows == 0
    with pytest.raises(StorageError, match="before start"):
        store.read_window("trades", "2025-06-25", "2025-06-23")


def test_empty_partition_is_kept_and_counted(layout):
    store = PartitionStore(layout)
    store.write("2025-06-23", "trades", _trades(0))
    assert store.days("trades") == ["2025-06-23"]
    assert store.read("2025-06-23", "trades").num_rows == 0


def test_duckdb_relation_over_window(layout):
    import duckdb

    store = PartitionStore(layout)
    store.write("2025-06-23", "trades", _trades(2))
    store.write("2025-06-24", "trades", _trades(3, 10))
    with duckdb.connect() as con:
        rel = store.relation(con, "trades", "2025-06-23", "2025-06-24")
        assert rel.aggregate("count(*) AS n, sum(price) AS s").fetchall() == [(5, 1 + 2 + 1 + 2 + 3)]
        assert store.relation(con, "trades", "2025-01-01", "2025-01-02") is None


def test_warehouse_views_and_readonly_readers(layout):
    store = PartitionStore(layout)
    store.write("2025-06-23", "trades", _trades(2))
    assert refresh_views(layout) == {"trades": 2}
    store.write("2025-06-24", "trades", _trades(4, 10))  # views read live: no refresh needed
    with connect_readonly(layout) as con:
        assert con.execute("SELECT count(*) FROM trades").fetchone() == (6,)
        with pytest.raises(Exception, match="read-only"):
            con.execute("CREATE TABLE x (a INT)")


def test_verify_detects_tampering(layout):
    store = PartitionStore(layout)
    store.write("2025-06-23", "trades", _trades(5))
    path = layout.dataset_file("2025-06-23", "trades")
    pq.write_table(_trades(4), path)
    assert any("sha256" in p for p in store.verify("2025-06-23"))
    path.unlink()
    assert any("missing" in p for p in store.verify("2025-06-23"))


def test_staged_commit_is_rolled_forward(layout):
    """A writer killed after the manifest commit point but before the rename: readers see the new version."""
    store = PartitionStore(layout)
    store.write("2025-06-23", "trades", _trades(5))
    day_dir = layout.day_dir("2025-06-23")
    staged = day_dir / ".trades.parquet.abc.tmp"
    pq.write_table(_trades(2, 70), staged)
    manifest = json.loads(layout.manifest_file("2025-06-23").read_text())
    manifest["datasets"]["trades"].update(staged=staged.name, rows=2, sha256=sha256_file(staged),
                                          bytes=staged.stat().st_size)
    layout.manifest_file("2025-06-23").write_text(json.dumps(manifest))
    assert store.read("2025-06-23", "trades").column("trade_id").to_pylist() == ["T70", "T71"]
    store.recover("2025-06-23")
    assert not staged.exists()
    assert store.read("2025-06-23", "trades").column("trade_id").to_pylist() == ["T70", "T71"]
    assert store.verify("2025-06-23") == []
