"""Storage core: atomic files, daily Parquet partitions with manifests, DuckDB views."""

from mia_pipeline.storage.atomic import atomic_write, atomic_write_bytes, atomic_write_json, sha256_file
from mia_pipeline.storage.object_partitions import partition_store
from mia_pipeline.storage.partitions import DatasetEntry, PartitionStore, StorageError
from mia_pipeline.storage.warehouse import connect_readonly, refresh_views

__all__ = [
    "DatasetEntry",
    "PartitionStore",
    "StorageError",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "connect_readonly",
    "partition_store",
    "refresh_views",
    "sha256_file",
]
