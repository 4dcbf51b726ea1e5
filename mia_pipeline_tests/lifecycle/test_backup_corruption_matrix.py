"""Issue 25 (10): a backup-corruption matrix. Each way a backup target can be damaged or tampered with is
applied to a target holding two backups (a full one, then an incremental one), the day is lost here, and
`mia recover --restore-from-backup` runs: every case is either harmless (the day comes back with exactly
its rows) or detected (a one-line reason, exit 1 or 2, nothing half-restored, no other day touched).
Rows are compared before and after, not only exit codes.
"""

import io
import json
import os
import shutil
from dataclasses import replace

import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.lifecycle.backup import run_backup
from mia_pipeline.lifecycle.catalog import DAILY_PREFIX, encode_manifest, list_backups, target_for
from mia_pipeline_tests.lifecycle._backup_data import DAYS, build, contents, settings_for

DAY = DAYS[1]


def _newest(target):
    return list_backups(target)[0][0]


def _rewrite(target, backup, files):
    target.put_manifest(backup.kind, backup.id, encode_manifest(replace(backup, files=files)))


def _blob(target, store, dataset="trades"):
    return target.blob_path(store.entry(DAY, dataset).sha256)


def _flip(path, at=None):
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0x01
    path.write_bytes(bytes(data))


def newest_manifest_flipped(t, s, tmp):
    b = _newest(t)
    _flip(t.manifest_path(b.kind, b.id), at=40)


def newest_manifest_truncated(t, s, tmp):
    b = _newest(t)
    p = t.manifest_path(b.kind, b.id)
    p.write_bytes(p.read_bytes()[:100])


def newest_manifest_deleted(t, s, tmp):
    b = _newest(t)
    t.manifest_path(b.kind, b.id).unlink()


def newest_manifest_wrong_shape(t, s, tmp):
    b = _newest(t)
    t.manifest_path(b.kind, b.id).write_text("[]")


def every_manifest_deleted(t, s, tmp):
    for b in list_backups(t)[0]:
        t.manifest_path(b.kind, b.id).unlink()


def day_pointed_at_another_day(t, s, tmp):
    b = _newest(t)
    files = {k: v for k, v in b.files.items() if not k.startswith(f"{DAILY_PREFIX}{DAY}/")}
    files |= {k.replace(DAYS[2], DAY): v for k, v in b.files.items() if k.startswith(f"{DAILY_PREFIX}{DAYS[2]}/")}
    _rewrite(t, b, files)


def forged_day_manifest(t, s, tmp):
    b = _newest(t)
    files = dict(b.files)
    other = json.loads(t.open_blob(files[f"{DAILY_PREFIX}{DAYS[2]}/_manifest.json"].sha256).read())
    other["day"] = DAY
    sha, size, _ = t.put_stream(io.BytesIO(json.dumps(other).encode()))
    for name in ("trades.parquet", "trade_exits.parquet", "market_ticks.parquet", "raw_events.parquet"):
        files[f"{DAILY_PREFIX}{DAY}/{name}"] = files[f"{DAILY_PREFIX}{DAYS[2]}/{name}"]
    files[f"{DAILY_PREFIX}{DAY}/_manifest.json"] = replace(files[f"{DAILY_PREFIX}{DAY}/_manifest.json"], sha256=sha,
                                                          size=size)
    _rewrite(t, b, files)


def path_traversal(t, s, tmp):
    b = _newest(t)
    _rewrite(t, b, {**b.files, "../../etc/passwd": next(iter(b.files.values()))})


def impossible_day(t, s, tmp):
    b = _newest(t)
    _rewrite(t, b, {**b.files, f"{DAILY_PREFIX}9999-99-99/_manifest.json": next(iter(b.files.values()))})


def data_blob_flipped(t, s, tmp):
    _flip(_blob(t, s))


def data_blob_truncated(t, s, tmp):
    p = _blob(t, s)
    p.write_bytes(p.read_bytes()[:50])


def data_blob_deleted(t, s, tmp):
    _blob(t, s).unlink()


def data_blob_grown(t, s, tmp):
    with open(_blob(t, s), "ab") as fh:
        fh.write(b"\0" * 10)


def data_blob_swapped(t, s, tmp):
    shutil.copyfile(_blob(t, s, "trade_exits"), _blob(t, s, "trades"))


def raw_blob_flipped(t, s, tmp):
    _flip(_blob(t, s, "raw_events"))


def day_manifest_blob_flipped(t, s, tmp):
    b = _newest(t)
    _flip(t.blob_path(b.files[f"{DAILY_PREFIX}{DAY}/_manifest.json"].sha256), at=5)


def blob_replaced_by_a_link(t, s, tmp):
    p = _blob(t, s)
    outside = tmp / "outside.parquet"
    outside.write_bytes(b"PAR1 not the blob")
    p.unlink()
    p.symlink_to(outside)


def marker_deleted(t, s, tmp):
    (t.root / "mia-backup.json").unlink()


def marker_damaged(t, s, tmp):
    (t.root / "mia-backup.json").write_text("{")


def hourly_folder_replaced_by_a_file(t, s, tmp):
    shutil.rmtree(t.root / "hourly")
    (t.root / "hourly").write_text("x")


def junk_in_blobs_and_kinds(t, s, tmp):
    (t.blobs_dir / "zz").mkdir(exist_ok=True)
    (t.blobs_dir / "zz" / "notablob").write_text("x")
    (t.root / "daily" / "notes.json").write_text("{}")


def shard_folder_linked_outside(t, s, tmp):
    shard = _blob(t, s).parent
    outside = tmp / "shard"
    shutil.copytree(shard, outside)
    shutil.rmtree(shard)
    os.symlink(outside, shard)


CASES = [newest_manifest_flipped, newest_manifest_truncated, newest_manifest_deleted, newest_manifest_wrong_shape,
         every_manifest_deleted, day_pointed_at_another_day, forged_day_manifest, path_traversal, impossible_day,
         data_blob_flipped, data_blob_truncated, data_blob_deleted, data_blob_grown, data_blob_swapped,
         raw_blob_flipped, day_manifest_blob_flipped, blob_replaced_by_a_link, marker_deleted, marker_damaged,
         hourly_folder_replaced_by_a_file, junk_in_blobs_and_kinds, shard_folder_linked_outside]


@pytest.mark.parametrize("corrupt", CASES, ids=[c.__name__ for c in CASES])
def test_each_corruption_is_harmless_or_detected(layout, monkeypatch, tmp_path, corrupt):
    monkeypatch.setenv("MIA_RETENTION_DAYS", "100000")
    store = build(layout)
    settings = settings_for(layout)
    run_backup(layout, settings, "full")
    run_backup(layout, settings, "incremental")
    before = contents(store)
    corrupt(target_for(layout, settings), store, tmp_path)
    shutil.rmtree(layout.day_dir(DAY))
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "recover", "--restore-from-backup", "--date", DAY])
    assert "Traceback" not in res.output, res.output
    after = contents(store)
    others = {k: v for k, v in before.items() if k[0] != DAY}
    assert {k: v for k, v in after.items() if k[0] != DAY} == others  # no other day touched
    mine = {k: v for k, v in after.items() if k[0] == DAY}
    if res.exit_code == 0:  # harmless: the day is back with exactly its rows
        assert mine == {k: v for k, v in before.items() if k[0] == DAY}, res.output
    else:  # detected: said in one line, nothing planted or half-restored
        assert res.exit_code in (1, 2) and ("Error" in res.output or "NOT RESTORED" in res.output), res.output
        assert all(v == before[k] for k, v in mine.items()), "a restored dataset differs from what was backed up"
    if layout.day_dir(DAY).exists():
        assert store.verify(DAY) == []
