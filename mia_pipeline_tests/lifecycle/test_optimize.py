"""`mia optimize --compress --index`: partitions rewritten sorted by (symbol, ts) with sort metadata,
statistics and a Bloom filter on trade_id, the same rows (content hash) and a manifest whose sha256 and
row counts match the new file; re-running skips; a concurrent writer is never undone; no switch is
exit 2."""

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.layout import DATASETS
from mia_pipeline.lifecycle.archive import content_digest
from mia_pipeline.lifecycle.optimize import optimize, optimize_partition
from mia_pipeline.storage import PartitionStore, StorageError
from mia_pipeline_tests.lifecycle._archive_data import DAYS


def _digests(store):
    return {(d, ds): content_digest(store.read(d, ds)) for d in DAYS for ds in DATASETS if store.entry(d, ds)}


def test_optimize_sorts_indexes_and_keeps_every_row(lay):
    store = PartitionStore(lay)
    before = _digests(store)
    report = optimize(lay, store, days=list(DAYS), measure=True)
    assert len(report.rewritten) == len(before) and report.query["symbol"]
    assert _digests(store) == before
    for day in DAYS:
        assert store.verify(day) == []  # sha256 and rows of the manifest match the new files
    bars = store.read(DAYS[1], "market_bars")
    keys = list(zip(bars.column("symbol").to_pylist(), bars.column("ts").to_pylist(), strict=True))
    assert keys == sorted(keys)
    path = store.committed_file(DAYS[1], "trades")
    rg = pq.ParquetFile(path).metadata.row_group(0)
    names = pq.read_schema(path).names
    assert [names[c.column_index] for c in rg.sorting_columns] == ["symbol", "ts"]
    assert rg.column(names.index("ts")).statistics.has_min_max
    bloom = duckdb.sql(f"SELECT bloom_filter_length FROM parquet_metadata('{path}') "
                       "WHERE path_in_schema = 'trade_id'").fetchall()
    assert bloom and bloom[0][0] > 0


def test_rerunning_skips_what_is_already_optimized(lay):
    store = PartitionStore(lay)
    optimize(lay, store, days=list(DAYS))
    shas = {d: store.manifest(d) for d in DAYS}
    again = optimize(lay, store, days=list(DAYS))
    assert again.rewritten == [] and again.skipped == len(_digests(store))
    assert {d: store.manifest(d) for d in DAYS} == shas


def test_a_partition_that_changed_meanwhile_is_not_overwritten(lay, monkeypatch):
    store = PartitionStore(lay)
    table = store.read(DAYS[1], "trades")
    real_write = store.write_many

    def ingest_sneaks_in(day, tables, **kw):
        if "expect_sha256" in kw:  # a concurrent writer commits between optimize's read and its write
            real_write(day, {"trades": table.slice(0, 1)})
        return real_write(day, tables, **kw)

    monkeypatch.setattr(store, "write_many", ingest_sneaks_in)
    with pytest.raises(StorageError, match="changed while it was being rewritten"):
        optimize_partition(store, DAYS[1], "trades")
    assert store.read(DAYS[1], "trades").num_rows == 1  # the concurrent write stands


def test_a_damaged_partition_is_not_optimized(lay):
    store = PartitionStore(lay)
    path = store.committed_file(DAYS[0], "signals")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="check-integrity"):
        optimize_partition(store, DAYS[0], "signals")
    assert bytes(data) == path.read_bytes()


def test_mia_optimize_reports_sizes_and_query_times(lay):
    res = CliRunner().invoke(cli, ["optimize", "--compress", "--index", "--date", DAYS[1]])
    assert res.exit_code == 0, res.output
    assert "rewrote 5 partition(s)" in res.output and "ms before" in res.output
    symbols = PartitionStore(lay).read(DAYS[1], "signals").column("symbol")
    assert pc.count_distinct(symbols).as_py() >= 1


@pytest.mark.parametrize("args, message", [
    ([], "pass --compress, --index or both"),
    (["--index", "--date", "2025-02-30"], "invalid date"),
    (["--index", "--date", "2024-01-01"], "no day folder 2024-01-01"),
])
def test_bad_optimize_input_is_exit_2(lay, args, message):
    res = CliRunner().invoke(cli, ["optimize", *args])
    assert res.exit_code == 2 and message in res.output, res.output


@pytest.mark.parametrize("month", ["2026-11", "2025-02", "2024-02"])
def test_the_query_probe_covers_months_of_any_length(lay, month):
    """Regression: the probe asked for day 31 of every month (`mia optimize` exited 2 in November)."""
    from mia_pipeline.lifecycle.optimize import probe_query

    assert probe_query(PartitionStore(lay), "market_bars", "ES", month, repeat=1) >= 0.0
