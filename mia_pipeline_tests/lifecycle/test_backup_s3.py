"""Backups on object storage (``backup.target: s3://bucket/prefix``), against a real S3 protocol server on
127.0.0.1 (moto): the same promises as a folder target — content-addressed, verified, only complete objects
visible, damage detected, restores byte-identical — with S3's lack of rename replaced by staging + copy.
"""

import io

import pyarrow as pa
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.layout import Layout, init_tree
from mia_pipeline.lifecycle.backup import run_backup
from mia_pipeline.lifecycle.blobstore import ObjectTarget, TargetError, TargetSetupError
from mia_pipeline.lifecycle.catalog import list_backups, target_for, verified_backups
from mia_pipeline.lifecycle.restore import restore_day
from mia_pipeline.storage import sha256_file
from mia_pipeline.storage.objects import STAGING, ObjectStore, ObjectStoreError, s3_filesystem
from mia_pipeline_tests.lifecycle._backup_data import DAYS, build, settings_for


@pytest.fixture
def data(layout, s3_bucket):
    store = build(layout)
    url = f"s3://{s3_bucket}/desk1"
    return layout, store, settings_for(layout, MIA_BACKUP_TARGET=url), url


def objects(url: str) -> dict:
    return ObjectStore(url).list()


def test_a_backup_on_s3_holds_every_file_and_restores_a_day_byte_for_byte(data):
    layout, store, settings, url = data
    first = run_backup(layout, settings, "full")
    assert first.location == url and not first.damaged and first.new_blobs > 0
    target = target_for(layout, settings)
    assert isinstance(target, ObjectTarget)
    (backup,), damaged = list_backups(target)
    assert not damaged and backup.id == first.id
    keys = objects(url)
    assert f"daily/{first.id}.json" in keys and "mia-backup.json" in keys
    assert not [k for k in keys if k.startswith(STAGING)]  # nothing left half-way
    for day in DAYS:
        ref = backup.files[f"snapshots/daily/{day}/trades.parquet"]
        blob = keys[f"blobs/{ref.sha256[:2]}/{ref.sha256}"]
        assert blob.size == ref.size == layout.dataset_file(day, "trades").stat().st_size

    again = run_backup(layout, settings, "full")
    assert again.new_blobs == 0 and again.verified_blobs == again.files  # re-read from the server

    before = {ds: sha256_file(layout.dataset_file(DAYS[1], ds)) for ds in ("trades", "market_ticks", "raw_events")}
    for ds in before:
        layout.dataset_file(DAYS[1], ds).unlink()
    result = restore_day(layout, settings, store, DAYS[1])
    assert set(before) <= set(result.datasets)
    assert {ds: sha256_file(layout.dataset_file(DAYS[1], ds)) for ds in before} == before
    assert store.verify(DAYS[1]) == []


def test_an_incremental_backup_uploads_only_new_content(data):
    layout, store, settings, url = data
    run_backup(layout, settings, "full")
    n = len(objects(url))
    store.write(DAYS[0], "market_ticks", pa.table({"x": [1, 2, 3]}))
    inc = run_backup(layout, settings, "incremental")
    assert inc.kind == "hourly" and inc.new_blobs == 2  # the new partition file + that day's manifest
    assert len(objects(url)) == n + 3  # two blobs and the hourly manifest


def test_a_blob_damaged_on_the_server_is_detected_and_rewritten_by_the_next_full(data):
    layout, store, settings, url = data
    run_backup(layout, settings, "full")
    (backup,), _ = list_backups(target_for(layout, settings))
    ref = backup.files[f"snapshots/daily/{DAYS[0]}/trades.parquet"]
    key = f"blobs/{ref.sha256[:2]}/{ref.sha256}"
    bucket_store = ObjectStore(url)
    rotten = bytearray(bucket_store.get_bytes(key))
    rotten[len(rotten) // 2] ^= 0xFF
    bucket_store.put_bytes(key, bytes(rotten))  # same size: only a re-read finds it
    assert verified_backups(layout, settings, deep=False)  # sizes still match
    assert verified_backups(layout, settings, deep=True) == []  # the re-hash does not
    run_backup(layout, settings, "full")
    assert bucket_store.get_bytes(key) != bytes(rotten)
    assert target_for(layout, settings).verify_blob(ref.sha256)


def test_a_failed_upload_publishes_nothing_and_leaves_no_staging_object(data):
    layout, store, settings, url = data
    run_backup(layout, settings, "full")
    target = target_for(layout, settings)
    before = set(objects(url))

    class Breaks(io.RawIOBase):
        """A source that fails after 3 MB (a disk error while reading the file being backed up)."""
        sent = 0

        def readinto(self, buf):
            if self.sent >= 3 << 20:
                raise OSError(5, "Input/output error")
            n = min(len(buf), 1 << 20)
            buf[:n] = b"x" * n
            self.sent += n
            return n

    with pytest.raises(OSError, match="Input/output"):
        target.put_stream(Breaks())
    assert set(objects(url)) == before  # no blob, no staging object


def test_a_backup_that_dies_before_its_manifest_leaves_the_previous_ones_and_its_blobs_are_collected(data, monkeypatch):
    layout, store, settings, url = data
    first = run_backup(layout, settings, "full")
    store.write(DAYS[0], "market_ticks", pa.table({"x": [7, 8, 9]}))

    def dies(*args, **kwargs):
        raise KeyboardInterrupt  # the process is stopped just before the commit point
    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(ObjectTarget, "put_manifest", dies)
        run_backup(layout, settings, "full")
    good, damaged = list_backups(target_for(layout, settings))
    assert [b.id for b in good] == [first.id] and not damaged
    orphans = target_for(layout, settings).blob_shas() - {r.sha256 for r in good[0].files.values()}
    assert len(orphans) == 2  # uploaded, named by no manifest
    # Seen from another data root, these are the blobs of a backup in flight (S3 has no lock to say so):
    # a rotation keeps them while they are young...
    other = Layout(layout.root.parent / "other")
    init_tree(other)
    build(other)
    run_backup(other, settings_for(other, MIA_BACKUP_TARGET=url), "full")
    assert orphans <= target_for(layout, settings).blob_shas()
    # ...and collects them once they are older than the grace period
    monkeypatch.setattr("mia_pipeline.lifecycle.blobstore.GC_GRACE_S", 0.0)
    settings_one = settings_for(layout, MIA_BACKUP_TARGET=url, MIA_BACKUP_KEEP_DAILY="1")
    run_backup(layout, settings_one, "full")
    (last,), _ = list_backups(target_for(layout, settings_one))
    assert target_for(layout, settings_one).blob_shas() == {r.sha256 for r in last.files.values()}


def test_keys_under_blobs_that_are_not_blobs_are_ignored(data, monkeypatch):
    layout, store, settings, url = data
    run_backup(layout, settings, "full")
    bucket_store = ObjectStore(url)
    stray = {"blobs/zz/" + "Z" * 64: b"not a blob", "blobs/" + "a" * 64: b"misplaced", "blobs/ab/" + "c" * 64: b"x"}
    for key, body in stray.items():
        bucket_store.put_bytes(key, body)
    monkeypatch.setattr("mia_pipeline.lifecycle.blobstore.GC_GRACE_S", 0.0)
    result = run_backup(layout, settings, "full")
    assert not result.damaged and result.removed_blobs == 0
    assert set(stray) <= set(objects(url))  # not ours to delete, and never taken for a blob


def test_a_target_prefix_must_be_empty_or_a_backup_target_and_the_bucket_must_exist(layout, s3_bucket):
    ObjectStore(f"s3://{s3_bucket}/other").put_bytes("notes.txt", b"someone else's")
    with pytest.raises(TargetSetupError, match="not empty and is not a mia backup target"):
        run_backup(layout, settings_for(layout, MIA_BACKUP_TARGET=f"s3://{s3_bucket}/other"), "full")
    assert list(objects(f"s3://{s3_bucket}/other")) == ["notes.txt"]
    with pytest.raises(TargetError, match="does not exist; create it"):
        run_backup(layout, settings_for(layout, MIA_BACKUP_TARGET="s3://no-such-bucket-here/x"), "full")
    with pytest.raises(TargetError, match="holds no backup yet"):
        restore_day(layout, settings_for(layout, MIA_BACKUP_TARGET=f"s3://{s3_bucket}/empty"), build(layout), DAYS[0])


def test_the_cli_backs_up_lists_and_restores_through_s3_and_says_plainly_when_the_server_is_down(data, monkeypatch):
    layout, store, settings, url = data
    monkeypatch.setenv("MIA_BACKUP_TARGET", url)
    runner = CliRunner()
    out = runner.invoke(cli, ["backup", "--full"])
    assert out.exit_code == 0, out.output
    listed = runner.invoke(cli, ["backup", "--list"])
    assert listed.exit_code == 0 and f"backup target {url}: 1 backup(s)" in listed.output
    layout.dataset_file(DAYS[2], "trades").unlink()
    restored = runner.invoke(cli, ["recover", "--restore-from-backup", "--date", DAYS[2]])
    assert restored.exit_code == 0, restored.output
    assert store.verify(DAYS[2]) == []

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    down = runner.invoke(cli, ["backup", "--full"])
    assert down.exit_code == 1 and "Traceback" not in down.output
    assert "backup failed: backup target s3://" in down.output and "check AWS_ENDPOINT_URL" in down.output
    listed = runner.invoke(cli, ["backup", "--list"])
    assert listed.exit_code == 1 and "Traceback" not in listed.output and "cannot be reached" in listed.output


@pytest.mark.parametrize("bad, says", [
    ("s3://Upper/x", "not a bucket name"),
    ("s3://bkt/../x", "segments"),
    ("s3://key:secret@bkt/x", "names a bucket and a prefix only"),
    ("s3:/bkt/x", "is not an s3:// URL"),
    ("s3://bkt/" + "/".join(["p" * 200] * 5), "keep it under 768"),
])
def test_a_malformed_s3_target_is_refused_with_how_to_write_it(layout, monkeypatch, bad, says):
    monkeypatch.setenv("MIA_BACKUP_TARGET", bad)
    out = CliRunner().invoke(cli, ["backup", "--full"])
    assert out.exit_code == 2 and says in out.output and "Traceback" not in out.output
    assert "secret" not in out.output  # credentials pasted into the URL are never echoed


def test_object_store_errors_are_oserrors_naming_the_location():
    fs = s3_filesystem({"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "a",
                        "AWS_SECRET_ACCESS_KEY": "b"})
    with pytest.raises(ObjectStoreError, match="s3://bkt/p: the bucket cannot be reached") as caught:
        ObjectStore("s3://bkt/p", fs=fs).check_bucket()
    assert isinstance(caught.value, OSError)


@pytest.mark.parametrize("value", ["127.0.0.1:9000", "ftp://host", "http://host/path", "http://h:99999",
                                   "http://[::1", "http://key:topsecret@h:9000"])
def test_a_malformed_endpoint_is_refused_without_echoing_credentials(value):
    with pytest.raises(ValueError, match="is not a server URL") as caught:
        s3_filesystem({"AWS_ENDPOINT_URL": value})
    assert "topsecret" not in str(caught.value)


def test_commands_say_plainly_when_the_endpoint_is_malformed_or_the_server_fails(data, monkeypatch):
    layout, store, settings, url = data
    monkeypatch.setenv("MIA_BACKUP_TARGET", url)
    runner = CliRunner()
    assert runner.invoke(cli, ["backup", "--full"]).exit_code == 0
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://key:topsecret@127.0.0.1:1")
    out = runner.invoke(cli, ["backup", "--full"])
    assert out.exit_code == 2 and "holds a user or password" in out.output
    assert "topsecret" not in out.output and "Traceback" not in out.output
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens there
    for args in (["health"], ["cleanup", "--older-than", "30d", "--dry-run"]):
        out = runner.invoke(cli, args)
        assert out.exception is None or isinstance(out.exception, SystemExit), (args, out.output)
        assert "Traceback" not in out.output
    health = runner.invoke(cli, ["health"])
    assert "the backup target cannot be read" in health.output


def test_health_tells_a_missing_bucket_from_no_backup_yet(layout, s3_bucket, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("MIA_BACKUP_TARGET", f"s3://{s3_bucket}/fresh")
    fresh = runner.invoke(cli, ["health", "--json"])
    assert "no backup yet" in fresh.output
    monkeypatch.setenv("MIA_BACKUP_TARGET", "s3://no-such-bucket-here/x")
    missing = runner.invoke(cli, ["health", "--json"])
    assert "does not exist; create it" in missing.output and "no backup yet" not in missing.output
