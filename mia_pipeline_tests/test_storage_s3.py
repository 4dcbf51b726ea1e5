"""Daily partitions on object storage (``MIA_STORAGE_URL=s3://bucket/prefix``), against a real S3 protocol
server on 127.0.0.1 (moto): the same promises as partitions under the data root — one commit per day,
readers see the previous day or the new one, damage detected, nothing lost — with content-named objects and
the manifest as the commit point instead of renames; DuckDB views, `mia` and Dagster read them there."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.layout import Layout
from mia_pipeline.settings import SettingsError, load_settings
from mia_pipeline.storage import (
    StorageError,
    connect_readonly,
    object_partitions,
    partition_store,
    refresh_views,
)
from mia_pipeline.storage.object_partitions import ObjectPartitionStore
from mia_pipeline.storage.objects import STAGING, ObjectStore
from mia_pipeline_tests.guide_examples import TRADE_EXAMPLE, to_line

DAY = "2025-06-23"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def url(s3_bucket, monkeypatch) -> str:
    url = f"s3://{s3_bucket}/desk1"
    monkeypatch.setenv("MIA_STORAGE_URL", url)
    return url


@pytest.fixture
def s3_layout(layout, url) -> Layout:
    return Layout(layout.root, store=url)


@pytest.fixture
def s3_store(s3_layout) -> ObjectPartitionStore:
    store = partition_store(s3_layout)
    assert isinstance(store, ObjectPartitionStore)
    return store


def keys(url: str, rel: str = "") -> dict:
    return ObjectStore(url).list(rel)


def trades(*ids: str) -> pa.Table:
    return pa.table({"trade_id": list(ids), "px": [float(i) for i in range(len(ids))]})


def test_a_day_is_committed_as_content_named_objects_and_a_manifest(s3_store, s3_layout, url):
    entry = s3_store.write(DAY, "trades", trades("a", "b"))
    assert entry.file == f"trades.{entry.sha256[:16]}.parquet" and entry.staged is None
    objs = keys(url, f"daily/{DAY}")
    assert set(objs) == {f"daily/{DAY}/_manifest.json", f"daily/{DAY}/{entry.file}"}
    assert objs[f"daily/{DAY}/{entry.file}"].size == entry.bytes
    assert not keys(url, STAGING)  # nothing left half-way
    manifest = json.loads(ObjectStore(url).get_bytes(f"daily/{DAY}/_manifest.json"))
    assert manifest["datasets"]["trades"]["file"] == entry.file
    assert not s3_layout.day_dir(DAY).exists()  # nothing of the day under the local root
    # read back through every reader of the store
    assert s3_store.days_present() == [DAY] and s3_store.days("trades") == [DAY]
    assert s3_store.read(DAY, "trades").column("trade_id").to_pylist() == ["a", "b"]
    assert s3_store.read_window("trades", "2025-06-01", "2025-06-30").num_rows == 2
    with duckdb.connect() as con:
        assert s3_store.relation(con, "trades", DAY, DAY).aggregate("count(*)").fetchall()[0][0] == 2
    assert s3_store.verify(DAY) == []


def test_a_rewrite_names_new_objects_and_the_previous_ones_go_after_the_grace_period(s3_store, url, monkeypatch):
    old = s3_store.write(DAY, "trades", trades("a", "b"))
    new = s3_store.write(DAY, "trades", trades("c"))
    assert new.file != old.file
    day = {k.rsplit("/", 1)[-1] for k in keys(url, f"daily/{DAY}")}
    assert day == {"_manifest.json", old.file, new.file}  # a reader holding the previous manifest still reads
    assert s3_store.read(DAY, "trades").column("trade_id").to_pylist() == ["c"]
    assert s3_store.verify(DAY) == []  # a previous version waiting for its grace period is not damage
    monkeypatch.setattr(object_partitions, "GRACE_S", 0.0)
    time.sleep(1.1)  # object times have a one-second grain
    s3_store.recover(DAY)
    assert {k.rsplit("/", 1)[-1] for k in keys(url, f"daily/{DAY}")} == {"_manifest.json", new.file}


def test_several_datasets_of_a_day_are_one_commit_a_failed_upload_changes_nothing(s3_store, url, monkeypatch):
    s3_store.write_many(DAY, {"trades": trades("a"), "signals": pa.table({"signal_id": ["s1"]})})
    before = ObjectStore(url).get_bytes(f"daily/{DAY}/_manifest.json")
    real = ObjectStore.put_stream
    calls = []

    def second_upload_fails(self, rel, src):
        calls.append(rel)
        if len(calls) == 2:
            raise OSError("connection reset by peer")
        return real(self, rel, src)

    monkeypatch.setattr(ObjectStore, "put_stream", second_upload_fails)
    with pytest.raises(OSError, match="reset"):
        s3_store.write_many(DAY, {"trades": trades("x", "y"), "signals": pa.table({"signal_id": ["s2"]})})
    monkeypatch.setattr(ObjectStore, "put_stream", real)
    assert ObjectStore(url).get_bytes(f"daily/{DAY}/_manifest.json") == before  # the commit point never moved
    assert s3_store.read(DAY, "trades").column("trade_id").to_pylist() == ["a"]
    assert s3_store.read(DAY, "signals").column("signal_id").to_pylist() == ["s1"]
    assert s3_store.verify(DAY) == []
    s3_store.write(DAY, "trades", trades("z"))  # the next writer is not blocked by the leftovers
    assert s3_store.read(DAY, "trades").column("trade_id").to_pylist() == ["z"]


def test_damage_on_the_server_is_detected_never_read_as_valid(s3_store, s3_layout, url):
    entry = s3_store.write(DAY, "trades", trades("a", "b"))
    ObjectStore(url).put_bytes(f"daily/{DAY}/{entry.file}", b"PAR1 not parquet PAR1")
    problems = s3_store.verify(DAY)
    assert len(problems) == 1 and "sha256" in problems[0] and "does not match manifest" in problems[0]
    fresh = ObjectPartitionStore(Layout(s3_layout.root / "other-host", store=url))  # no local copy there
    with pytest.raises(StorageError, match="does not match its manifest"):
        fresh.read(DAY, "trades")
    assert not list((s3_layout.root / "other-host").rglob("*.parquet"))  # nothing damaged kept as a copy


def test_a_damaged_local_copy_is_dropped_by_verification_and_read_again(s3_store):
    s3_store.write(DAY, "trades", trades("a", "b"))
    cached = s3_store.committed_file(DAY, "trades")
    cached.write_bytes(b"bit rot")
    assert s3_store.verify(DAY) == []  # the store's object is fine
    assert not cached.exists()
    assert s3_store.read(DAY, "trades").num_rows == 2


def test_a_local_copy_replaced_by_another_file_is_never_served(s3_store):
    s3_store.write(DAY, "trades", trades("a", "b"))
    s3_store.write("2025-06-24", "trades", trades("x", "y", "z"))
    mine, other = s3_store.committed_file(DAY, "trades"), s3_store.committed_file("2025-06-24", "trades")
    mine.write_bytes(other.read_bytes())
    assert s3_store.read(DAY, "trades").column("trade_id").to_pylist() == ["a", "b"]


def test_a_manifest_copied_from_another_day_is_damage(s3_store, url):
    s3_store.write(DAY, "trades", trades("a"))
    objects = ObjectStore(url)
    for key in keys(url, f"daily/{DAY}"):
        objects.put_bytes(key.replace(DAY, "2025-06-24"), objects.get_bytes(key))
    (problem,) = s3_store.verify("2025-06-24")
    assert f"its manifest describes '{DAY}', not this day" in problem


def test_a_day_whose_manifest_is_lost_keeps_its_objects_and_refuses_writes(s3_store, url, monkeypatch):
    entry = s3_store.write(DAY, "trades", trades("a"))
    ObjectStore(url).delete(f"daily/{DAY}/_manifest.json")
    monkeypatch.setattr(object_partitions, "GRACE_S", 0.0)
    time.sleep(1.1)
    s3_store.recover(DAY)
    assert s3_store.orphan_files(DAY) == [entry.file]  # reported, never swept
    assert "without a manifest" in s3_store.verify(DAY)[0]
    with pytest.raises(StorageError, match="without a manifest"):
        s3_store.write(DAY, "trades", trades("b"))


def test_a_damaged_manifest_is_reported_with_its_url(s3_store, url):
    s3_store.write(DAY, "trades", trades("a"))
    ObjectStore(url).put_bytes(f"daily/{DAY}/_manifest.json", b"{not json")
    (problem,) = s3_store.verify(DAY)
    assert f"{url}/daily/{DAY}/_manifest.json is damaged" in problem
    assert s3_store.readable_manifests()[1].keys() == {DAY}


def test_duckdb_views_read_the_partitions_on_the_server(s3_store, s3_layout, url):
    s3_store.write(DAY, "trades", trades("a", "b"))
    s3_store.write("2025-06-24", "trades", trades("c"))
    assert refresh_views(s3_layout) == {"trades": 3}
    with connect_readonly(s3_layout) as con:
        rows = con.execute("SELECT trade_id, filename FROM trades ORDER BY trade_id").fetchall()
    assert [r[0] for r in rows] == ["a", "b", "c"]
    assert all(r[1].startswith(f"{url}/daily/") for r in rows)  # read from the server, not a local copy
    s3_store.write(DAY, "trades", trades("d"))
    refresh_views(s3_layout)
    with connect_readonly(s3_layout) as con:
        assert sorted(r[0] for r in con.execute("SELECT trade_id FROM trades").fetchall()) == ["c", "d"]


def test_a_writer_killed_mid_commit_leaves_the_previous_day_or_the_new_one(s3_layout, s3_store, url):
    child = subprocess.Popen([sys.executable, str(REPO / "mia_pipeline_tests" / "_kill_writer.py"),
                              str(s3_layout.root), "1", url], stdout=subprocess.PIPE, env=os.environ.copy())
    assert child.stdout.readline().strip() == b"ready"
    seen = set()
    try:
        for delay in (0.3, 0.55, 0.8, 1.1, 1.4):
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
            child.wait()
            table = s3_store.read(DAY, "trades")
            version = set(table.column("version").to_pylist())
            assert len(version) == 1  # one whole version, never a mix
            (v,) = version
            from mia_pipeline_tests._kill_writer import rows
            assert table.num_rows == rows(v)
            assert s3_store.verify(DAY) == []
            seen.add(v)
            child = subprocess.Popen([sys.executable, str(REPO / "mia_pipeline_tests" / "_kill_writer.py"),
                                      str(s3_layout.root), str(v + 1), url], stdout=subprocess.PIPE,
                                     env=os.environ.copy())
            assert child.stdout.readline().strip() == b"ready"
    finally:
        child.kill()
        child.wait()
    assert len(seen) >= 3


# --- settings and the `mia` command ---------------------------------------------------------------


def test_the_setting_names_an_s3_url_or_is_refused(layout, monkeypatch):
    monkeypatch.setenv("MIA_STORAGE_URL", "s3://Bad_Bucket/x")
    with pytest.raises(SettingsError, match="MIA_STORAGE_URL"):
        load_settings()
    monkeypatch.setenv("MIA_STORAGE_URL", "/mnt/partitions")
    with pytest.raises(SettingsError, match="not an s3:// URL"):
        load_settings()
    monkeypatch.setenv("MIA_STORAGE_URL", "s3://mia-desk/a/")
    assert load_settings().layout.store.url == "s3://mia-desk/a"
    monkeypatch.delenv("MIA_STORAGE_URL")
    assert load_settings().layout.store is None


def mia(layout, *args, code=0):
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args])
    assert code is None or res.exit_code == code, res.output
    assert "Traceback" not in res.output
    return res.output


def test_mia_imports_checks_and_reports_partitions_on_the_server(layout, url, tmp_path):
    lines = tmp_path / "events.jsonl"
    lines.write_bytes(to_line(TRADE_EXAMPLE))
    mia(layout, "import", str(lines))
    store = ObjectPartitionStore(load_settings().layout)
    (day,) = store.days_present()
    assert not list(layout.daily_dir.glob("*/*.parquet"))  # nothing stored under the local root
    status = mia(layout, "status")
    assert "trades" in status and day in status
    assert "checked 1 day(s) and the range across them: 0 problem(s)" in mia(layout, "check-integrity")
    entry = store.entry(day, "trades")
    ObjectStore(url).put_bytes(f"daily/{day}/{entry.file}", b"damaged")
    out = mia(layout, "check-integrity", code=1)
    assert "does not match manifest" in out


def test_backup_restore_repair_and_cleanup_work_on_partitions_on_the_server(layout, url, tmp_path, monkeypatch):
    """The whole lifecycle through `mia`, partitions on S3 and backups in a folder: a backup holds every object
    (and the archive's), a lost day comes back byte for byte, a damaged object is repaired from the backup,
    trades come back by id, cleanup deletes only what is backed up."""
    from mia_pipeline.lifecycle.catalog import list_backups, target_for
    from mia_pipeline_tests.lifecycle._backup_data import DAYS, trade_lines

    (tmp_path / "backups").mkdir()
    monkeypatch.setenv("MIA_BACKUP_TARGET", str(tmp_path / "backups"))
    monkeypatch.setenv("MIA_RETENTION_DAYS", "100000")
    lines = tmp_path / "events.jsonl"
    lines.write_bytes(b"".join(trade_lines(d) for d in DAYS))
    mia(layout, "import", str(lines))
    store = ObjectPartitionStore(load_settings().layout)
    assert store.days_present() == list(DAYS)
    before = everything(store)
    mia(layout, "archive", "--before", "2025-06-24")  # 06-23 into the month files on the server
    assert store.days_present() == list(DAYS[1:])
    mia(layout, "backup", "--full")
    assert "no backup yet" not in mia(layout, "health", code=None)  # the backup just made is the one shown
    (backup,), _ = list_backups(target_for(layout, load_settings()))
    assert not backup.damaged
    entry = store.entry(DAYS[1], "trades")
    assert backup.files[f"snapshots/daily/{DAYS[1]}/{entry.file}"].sha256 == entry.sha256
    assert any(rel.startswith("snapshots/archive/2025-06/trades.") for rel in backup.files)

    # a day lost on the server comes back, byte for byte, from the backup
    objects = ObjectStore(url)
    day_objects = {k: objects.get_bytes(k) for k in keys(url, f"daily/{DAYS[2]}")}
    for k in day_objects:
        objects.delete(k)
    mia(layout, "recover", "--restore-from-backup", "--date", DAYS[2])
    assert {k: objects.get_bytes(k) for k in keys(url, f"daily/{DAYS[2]}")} == day_objects
    # a damaged object is repaired from the backup
    objects.put_bytes(f"daily/{DAYS[1]}/{entry.file}", b"damaged")
    mia(layout, "check-integrity", code=1)
    mia(layout, "recover", "--validate-and-repair")
    assert store.verify(DAYS[1]) == [] and everything(store) == before
    # trades by id
    ids = tmp_path / "ids.txt"
    tid = before[(DAYS[2], "trades")][0]["trade_id"]
    ids.write_text(tid + "\n")
    store.write(DAYS[2], "trades", pa.table({"trade_id": ["OTHER"]}))
    mia(layout, "recover", "--restore-trades", "--trade-ids", str(ids))
    assert tid in store.read(DAYS[2], "trades").column("trade_id").to_pylist()
    # cleanup: days and months past retention go only when backed up
    out = mia(layout, "cleanup", "--older-than", "30d", code=1)  # 1: something past retention was kept
    assert DAYS[2] in out  # rewritten after the backup: not backed up, kept
    assert DAYS[2] in store.days_present() and DAYS[1] not in store.days_present()
    assert not [k for k in keys(url) if k.startswith("archive/2025-06/")]  # the month, backed up, is gone
    mia(layout, "check-integrity")


def test_optimize_rewrites_partitions_on_the_server_with_the_same_rows(s3_layout, url):
    from mia_pipeline.lifecycle.optimize import optimize

    store, days = archived_root(s3_layout)
    before = everything(store)
    report = optimize(s3_layout, store, compress=True, index=True, days=list(days))
    assert report.rewritten and store.verify(days[0]) == []
    assert {k: sorted(map(str, v)) for k, v in everything(store).items()} == \
        {k: sorted(map(str, v)) for k, v in before.items()}


@pytest.mark.parametrize(("env", "code", "said"), [
    ({"MIA_STORAGE_URL": "s3://mia-no-such-bucket/p"}, 1, "bucket 'mia-no-such-bucket' does not exist"),
    ({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, 1, "check AWS_ENDPOINT_URL, the credentials and the network"),
    ({"AWS_ENDPOINT_URL": "nonsense"}, 2, "set it like http://127.0.0.1:9000"),
])
def test_a_store_that_cannot_be_used_is_a_clear_error_never_an_empty_one(layout, url, monkeypatch, env, code, said):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for command in (["status"], ["check-integrity"]):
        res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *command])
        assert res.exit_code == code, res.output
        assert said in res.output and "Traceback" not in res.output


def test_local_partitions_left_behind_are_reported_then_moved_to_the_store(layout, url, tmp_path, monkeypatch):
    from mia_pipeline_tests.lifecycle._backup_data import DAYS, trade_lines

    lines = tmp_path / "events.jsonl"
    lines.write_bytes(b"".join(trade_lines(d) for d in DAYS))
    monkeypatch.delenv("MIA_STORAGE_URL")
    mia(layout, "import", str(lines))
    mia(layout, "archive", "--before", "2025-06-24")  # 06-23 in a local archive month
    local = partition_store(layout)
    before = everything(local)
    monkeypatch.setenv("MIA_STORAGE_URL", url)
    out = mia(layout, "check-integrity", code=1)
    assert "2 day folder(s) (2025-06-24 .. 2025-06-25), 1 archive month(s) (2025-06 .. 2025-06)" in out
    assert "`mia move-partitions` moves them there" in out
    assert "not counted: 2 day folder(s)" in mia(layout, "status")
    assert "local partitions" in mia(layout, "health", code=None)
    # a day the store holds with other content is never overwritten
    store = ObjectPartitionStore(load_settings().layout)
    store.write(DAYS[2], "trades", pa.table({"trade_id": ["OTHER"]}))
    out = mia(layout, "move-partitions", code=1)
    assert f"KEPT {DAYS[2]}: {DAYS[2]} already holds other data" in out
    assert f"moved {DAYS[1]}" in out and "moved 2025-06" in out
    assert layout.day_dir(DAYS[2]).is_dir() and not layout.day_dir(DAYS[1]).exists()
    assert not layout.archive_month_dir("2025-06").exists()
    store.drop_day(DAYS[2])
    mia(layout, "move-partitions")
    assert not layout.day_dir(DAYS[2]).exists()
    assert everything(store) == before  # every row, archived or not, now read from the server
    out = mia(layout, "check-integrity", code=1)
    assert "1 problem(s)" in out and "not in any verified backup" in out  # the one left: no backup made here
    assert "0 item(s)" in mia(layout, "move-partitions")  # nothing left: idempotent


def test_move_partitions_without_a_store_exits_2_saying_what_to_set(layout, monkeypatch):
    monkeypatch.delenv("MIA_STORAGE_URL", raising=False)
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "move-partitions"])
    assert res.exit_code == 2 and "set MIA_STORAGE_URL" in res.output


# --- Dagster -------------------------------------------------------------------------------------


def test_a_daily_backfill_in_dagster_writes_and_records_partitions_on_the_server(layout, url):
    from mia_pipeline.defs.collection import daily_datasets, landing_zone
    from mia_pipeline.defs.resources import MiaResource

    (layout.streaming_dir / "a.jsonl").write_bytes(to_line(TRADE_EXAMPLE))
    res = {"mia": MiaResource(data_dir=str(layout.root))}
    assert dg.materialize([landing_zone], resources=res).success
    store = ObjectPartitionStore(load_settings().layout)
    (day,) = store.days("trades")
    tags = {"dagster/asset_partition_range_start": day, "dagster/asset_partition_range_end": day}
    result = dg.materialize([daily_datasets], resources=res, tags=tags)
    assert result.success
    mats = {(m.asset_key.to_user_string(), m.materialization.partition): m.materialization.metadata
            for m in result.get_asset_materialization_events()}
    trades_meta = mats[("trades", day)]
    entry = store.entry(day, "trades")
    assert trades_meta["path"].value == f"{url}/daily/{day}/{entry.file}"
    assert trades_meta["manifest"].value == f"{url}/daily/{day}/_manifest.json"
    assert trades_meta["sha256"].value == entry.sha256
    assert all(c.passed for c in result.get_asset_check_evaluations())
    assert store.verify(day) == []


# --- the archive on object storage --------------------------------------------------------------


def archived_root(s3_layout):
    from mia_pipeline.collection.collector import ingest_once
    from mia_pipeline_tests.lifecycle._backup_data import DAYS, trade_lines

    with open(s3_layout.streaming_dir / "a.jsonl", "ab") as fh:
        for day in DAYS:
            fh.write(trade_lines(day))
    store = partition_store(s3_layout)
    ingest_once(s3_layout, store, None)
    return store, DAYS


def everything(store) -> dict:
    from mia_pipeline.layout import STORED_DATASETS

    return {(d, ds): t.to_pylist() for d in ("2025-06-23", "2025-06-24", "2025-06-25") for ds in STORED_DATASETS
            if (t := store.read(d, ds)) is not None}


def test_archiving_on_object_storage_compacts_months_and_reads_back_the_same_rows(s3_layout, url):
    from mia_pipeline.collection.integrity import archive_problems, integrity_problems
    from mia_pipeline.lifecycle.archive import archive_month

    store, days = archived_root(s3_layout)
    before = everything(store)
    refresh_views(s3_layout)
    report = archive_month(s3_layout, store, "2025-06")
    assert report.days == list(days) and report.removed == list(days)
    objs = keys(url)
    assert not [k for k in objs if k.startswith("daily/")]  # the archived days are gone from daily/
    month = {k.rsplit("/", 1)[-1] for k in objs if k.startswith("archive/2025-06/")}
    assert "_manifest.json" in month and "trades.1.parquet" in month and "raw_events.1.parquet" in month
    assert not [k for k in objs if k.startswith(STAGING)]
    assert everything(store) == before  # same rows, same order, read with range requests from the month files
    assert archive_problems(s3_layout) == [] and integrity_problems(s3_layout, store) == []
    with connect_readonly(s3_layout) as con:  # the views now read the month files on the server
        files = {r[0] for r in con.execute("SELECT DISTINCT filename FROM trades").fetchall()}
    assert files == {f"{url}/archive/2025-06/trades.1.parquet"}
    # idempotent, and late data is read after the archived rows, then folded in by the next archive
    assert archive_month(s3_layout, store, "2025-06").days == []
    late = pa.table({"trade_id": ["LATE"]})
    store.write(days[0], "trades", late)
    assert store.read(days[0], "trades").num_rows == len(before[(days[0], "trades")]) + 1
    again = archive_month(s3_layout, store, "2025-06")
    assert again.days == [days[0]] and again.removed == [days[0]]
    assert {k.rsplit("/", 1)[-1] for k in keys(url, "archive/2025-06")} >= {"trades.2.parquet"}
    assert "trades.1.parquet" not in {k.rsplit("/", 1)[-1] for k in keys(url, "archive/2025-06")}
    assert store.read(days[0], "trades").num_rows == len(before[(days[0], "trades")]) + 1


def test_damage_in_an_archive_month_on_the_server_is_reported(s3_layout, url):
    from mia_pipeline.collection.integrity import archive_problems
    from mia_pipeline.lifecycle.archive import ArchiveError, archive_month

    store, _ = archived_root(s3_layout)
    archive_month(s3_layout, store, "2025-06")
    ObjectStore(url).put_bytes("archive/2025-06/trades.1.parquet", b"PAR1 damaged PAR1")
    ObjectStore(url).put_bytes("archive/2025-07/stray.1.parquet", b"x")
    problems = archive_problems(s3_layout)
    assert any("trades.1.parquet does not match the sha256" in p for p in problems)
    assert any("archive 2025-07: Parquet files without a month manifest" in p for p in problems)
    store.write("2025-06-23", "trades", pa.table({"trade_id": ["LATE"]}))
    with pytest.raises(ArchiveError, match="does not match its sha256"):
        archive_month(s3_layout, store, "2025-06")  # damage stops the month before anything is written


def test_an_interrupted_day_removal_reads_as_removed_and_is_finished_next_time(s3_layout, url, monkeypatch):
    from mia_pipeline.lifecycle.archive import archive_month

    store, days = archived_root(s3_layout)
    before = everything(store)
    real = ObjectStore.delete
    count = []

    def crash_on_second_daily_file(self, rel):
        if rel.startswith("daily/") and rel.endswith(".parquet"):
            count.append(rel)
            if len(count) == 2:
                raise OSError("killed")
        return real(self, rel)

    monkeypatch.setattr(ObjectStore, "delete", crash_on_second_daily_file)
    with pytest.raises(OSError, match="killed"):
        archive_month(s3_layout, store, "2025-06")
    monkeypatch.setattr(ObjectStore, "delete", real)
    manifest = json.loads(ObjectStore(url).get_bytes(f"daily/{days[0]}/_manifest.json"))
    assert manifest["removing"] is True  # the removal's commit point was reached, the objects half deleted
    assert everything(store) == before and store.verify(days[0]) == []
    archive_month(s3_layout, store, "2025-06")
    assert not [k for k in keys(url) if k.startswith("daily/")]
    assert everything(store) == before


def test_validate_and_repair_restores_an_archived_month_on_the_server(layout, url, tmp_path, monkeypatch):
    """Issue 25 (13): a damaged month object, then a lost month manifest, come back from the backup (they were
    reported as unsupported on object storage)."""
    from mia_pipeline.collection.integrity import archive_problems

    (tmp_path / "backups").mkdir()
    monkeypatch.setenv("MIA_BACKUP_TARGET", str(tmp_path / "backups"))
    monkeypatch.setenv("MIA_RETENTION_DAYS", "100000")
    s3_layout = Layout(layout.root, store=url)
    store, _ = archived_root(s3_layout)
    before = everything(store)
    mia(layout, "archive", "--before", "2025-06-25")
    mia(layout, "backup", "--full")
    objects = ObjectStore(url)
    month = {k: objects.get_bytes(k) for k in keys(url, "archive/2025-06")}
    trades_object = next(k for k in month if "/trades." in k)
    objects.put_bytes(trades_object, b"damaged")
    assert "does not match the sha256" in mia(layout, "check-integrity", code=1)
    assert "archive 2025-06" in mia(layout, "recover", "--validate-and-repair")
    assert {k: objects.get_bytes(k) for k in keys(url, "archive/2025-06")} == month
    objects.delete("archive/2025-06/_manifest.json")
    objects.delete(trades_object)
    assert "the month manifest was lost: restored with its" in mia(layout, "recover", "--validate-and-repair")
    assert {k: objects.get_bytes(k) for k in keys(url, "archive/2025-06")} == month
    assert archive_problems(s3_layout) == [] and everything(store) == before
    mia(layout, "check-integrity")
