"""Archive: archived days read back exactly as their daily files did — through the library reader, the
DuckDB views and the ML builder — and the month files are verified, incremental, idempotent, folded
with late data, and never built on damage. Also guards that `mia status` and `mia check-integrity`
report archived days as stored (not missing, not damaged), and that bad `mia archive` input is exit 2.
"""

import json
import shutil
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.collection.integrity import integrity_problems
from mia_pipeline.layout import RAW_EVENTS
from mia_pipeline.lifecycle.archive import ArchiveError, archive, archive_month, content_digest
from mia_pipeline.ml import MLDatasetBuilder
from mia_pipeline.storage import PartitionStore, refresh_views
from mia_pipeline.storage.archive_index import read_month_manifest
from mia_pipeline_tests.lifecycle._archive_data import DAYS, rows, view_rows


def _ml(store):
    features, labels = MLDatasetBuilder(store).build_features_dataset(DAYS[0], DAYS[-1])
    return features, labels


def test_archived_days_read_identically_through_reader_views_and_ml_builder(lay):
    store = PartitionStore(lay)
    before, before_views, (f0, l0) = rows(store), view_rows(lay), _ml(store)
    days_before = {ds: store.days(ds) for ds in before}

    reports = archive(lay, store, date(2025, 7, 3))

    assert [r.month for r in reports] == ["2025-06", "2025-07"]
    assert lay.days_present() == []  # every day folder went, after verification
    assert rows(store) == before
    assert view_rows(lay) == before_views
    assert {ds: store.days(ds) for ds in before} == days_before
    f1, l1 = _ml(store)
    assert f1.equals(f0) and l1.equals(l0)
    assert store.read(DAYS[1], RAW_EVENTS).num_rows > 0  # raw lines archived too: a day stays rebuildable
    assert integrity_problems(lay, store) == []


def test_month_manifest_records_rows_content_hash_and_file_sha(lay):
    store = PartitionStore(lay)
    daily = pq.read_table(store.committed_file(DAYS[1], "signals"))
    archive_month(lay, store, "2025-07")
    entry = read_month_manifest(lay, "2025-07")["datasets"]["signals"]
    meta = entry["days"][DAYS[1]]
    assert meta["rows"] == daily.num_rows
    assert meta["content_hash"] == content_digest(daily)
    assert pq.ParquetFile(lay.archive_month_dir("2025-07") / entry["file"]).metadata.row_group(0).column(0) \
        .compression == "ZSTD"


def test_content_digest_ignores_order_but_not_values():
    t = pa.table({"a": [1, 2, 3], "b": ["x", "y", None]})
    assert content_digest(t) == content_digest(t.take([2, 0, 1]))
    assert content_digest(t) != content_digest(pa.table({"a": [1, 2, 4], "b": ["x", "y", None]}))
    assert content_digest(t) != content_digest(t.slice(0, 2))


def test_a_later_day_joins_an_existing_month_and_rerunning_changes_nothing(lay):
    store = PartitionStore(lay)
    before = rows(store)
    first = archive_month(lay, store, "2025-07", [DAYS[1]])
    assert first.days == [DAYS[1]] and lay.days_present() == [DAYS[0], DAYS[2]]
    assert rows(store) == before  # half archived, half daily: the same rows
    second = archive_month(lay, store, "2025-07")
    assert second.days == [DAYS[2]]
    man = read_month_manifest(lay, "2025-07")
    assert man["generation"] == 2 and sorted(man["datasets"]["trades"]["days"]) == [DAYS[1], DAYS[2]]
    month_dir = lay.archive_month_dir("2025-07")
    files = sorted(p.name for p in month_dir.glob("*.parquet"))
    assert all(".2." in name for name in files)  # generation 1 removed once nothing referred to it
    assert rows(store) == before
    assert archive_month(lay, store, "2025-07").days == []
    archive(lay, store, date(2025, 7, 3))  # June too
    assert all(r.days == [] and r.removed == [] for r in archive(lay, store, date(2025, 7, 3)))
    assert sorted(p.name for p in month_dir.glob("*.parquet")) == files


def test_a_leftover_day_folder_of_an_interrupted_archive_is_ignored_then_removed(lay, tmp_path):
    store = PartitionStore(lay)
    before, before_views = rows(store), view_rows(lay)
    shutil.copytree(lay.day_dir(DAYS[2]), tmp_path / "copy")
    archive_month(lay, store, "2025-07")
    shutil.copytree(tmp_path / "copy", lay.day_dir(DAYS[2]))  # as if killed after the commit point
    refresh_views(lay)
    assert rows(store) == before  # not doubled
    assert view_rows(lay) == before_views
    assert integrity_problems(lay, store) == []
    report = archive_month(lay, store, "2025-07")
    assert report.days == [] and report.removed == [DAYS[2]]
    assert rows(store) == before


def test_late_data_for_an_archived_day_is_read_then_folded_in(lay):
    store = PartitionStore(lay)
    archive_month(lay, store, "2025-07")
    archived = store.read(DAYS[1], "trades")
    late = pa.concat_tables([archived.slice(0, 2), archived.slice(0, 1).set_column(
        archived.schema.get_field_index("trade_id"), "trade_id", pa.array(["LATE-1"]))])
    store.write(DAYS[1], "trades", late)  # one re-delivered trade, one new
    assert store.read(DAYS[1], "trades").num_rows == archived.num_rows + 3
    report = archive_month(lay, store, "2025-07")
    assert report.days == [DAYS[1]] and lay.days_present() == [DAYS[0]]
    folded = store.read(DAYS[1], "trades")
    assert folded.num_rows == archived.num_rows + 1
    assert folded.column("trade_id").to_pylist()[-1] == "LATE-1"


def test_a_damaged_day_stops_its_month_and_nothing_changes(lay):
    store = PartitionStore(lay)
    path = store.committed_file(DAYS[1], "signals")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="repair these days first"):
        archive_month(lay, store, "2025-07")
    assert lay.days_present() == list(DAYS)
    assert not (lay.archive_month_dir("2025-07") / "_manifest.json").exists()


def test_a_damaged_month_file_is_reported_and_never_built_upon(lay):
    store = PartitionStore(lay)
    archive_month(lay, store, "2025-07", [DAYS[1]])
    month_file = lay.archive_month_dir("2025-07") / read_month_manifest(lay, "2025-07")["datasets"]["trades"]["file"]
    data = bytearray(month_file.read_bytes())
    data[len(data) // 3] ^= 1
    month_file.write_bytes(bytes(data))
    assert any("archive 2025-07/trades" in p for p in integrity_problems(lay, store))
    with pytest.raises(ArchiveError, match="restore the month from a backup"):
        archive_month(lay, store, "2025-07")
    assert DAYS[2] in lay.days_present()


def test_mia_archive_status_and_check_integrity_after_archiving(lay):
    runner = CliRunner()
    status_before = json.loads(runner.invoke(cli, ["status", "--json"]).output)["datasets"]
    dry = runner.invoke(cli, ["archive", "--before", "2025-07-02", "--dry-run"])
    assert dry.exit_code == 0 and "would archive 2 day(s)" in dry.output
    assert lay.days_present() == list(DAYS)
    res = runner.invoke(cli, ["archive", "--before", "2025-07-02"])
    assert res.exit_code == 0, res.output
    assert "archived 2 day(s) before 2025-07-02" in res.output and lay.days_present() == [DAYS[2]]
    status = json.loads(runner.invoke(cli, ["status", "--json"]).output)["datasets"]
    for ds, s in status.items():
        assert (s["days"], s["rows"], s["first_day"], s["last_day"]) == (
            status_before[ds]["days"], status_before[ds]["rows"], status_before[ds]["first_day"],
            status_before[ds]["last_day"])
    unbacked = runner.invoke(cli, ["check-integrity"])  # the archive is the only copy: it must be backed up
    assert unbacked.exit_code == 1 and "archive 2025-06: " in unbacked.output and "not in any verified backup" \
        in unbacked.output, unbacked.output
    assert runner.invoke(cli, ["backup", "--full"]).exit_code == 0
    check = runner.invoke(cli, ["check-integrity"])
    assert check.exit_code == 0 and "0 problem(s)" in check.output and "2 archived day(s)" in check.output, check.output


@pytest.mark.parametrize("args, message", [
    (["--before", "2025-13-01"], "invalid date"),
    (["--before", "../../etc"], "invalid date"),
    (["--before", "2090-01-01"], "is in the future"),
    (["--before", "0001-01-01"], "days from 1970-01-02"),
])
def test_bad_archive_input_is_exit_2_and_changes_nothing(lay, args, message):
    res = CliRunner().invoke(cli, ["archive", *args])
    assert res.exit_code == 2 and message in res.output, res.output
    assert lay.days_present() == list(DAYS) and not any(lay.archive_dir.glob("*/_manifest.json"))
