"""Recovery: `mia recover` restores from the newest *good* backup (a flipped byte anywhere in a backup
is detected and that backup skipped), repairs damaged files or rebuilds them from raw lines, restores
named trades without touching other rows, records what it wrote in Dagster, and turns bad input into
exit 2 / operational failures into exit 1 with nothing changed.
"""

import errno
import shutil

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.dagster_bridge import open_instance
from mia_pipeline.cli.main import cli
from mia_pipeline.lifecycle.backup import run_backup
from mia_pipeline.lifecycle.catalog import list_backups, target_for
from mia_pipeline.lifecycle.recover import validate_and_repair
from mia_pipeline.lifecycle.restore import RestoreError, RestoreInputError, restore_day
from mia_pipeline.quality.alerts import open_alerts, read_alerts
from mia_pipeline_tests.lifecycle._backup_data import DAYS, build, contents, flip, settings_for


@pytest.fixture
def data(layout, monkeypatch):
    monkeypatch.setenv("MIA_RETENTION_DAYS", "100000")
    store = build(layout)
    return layout, store, settings_for(layout)


def mia(layout, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args])


def snapshot(layout):
    return sorted((p.relative_to(layout.root).as_posix(), p.read_bytes()) for p in layout.root.rglob("*")
                  if p.is_file() and ".dagster" not in p.parts and "reports" not in p.parts)


def test_restore_skips_a_backup_with_a_flipped_byte_and_uses_the_next_good_one(data):
    layout, store, settings = data
    run_backup(layout, settings, "full")
    before = contents(store)
    store.write(DAYS[1], "market_ticks", pa.table({"x": [1]}))  # the newest backup holds another version
    run_backup(layout, settings, "incremental")
    target = target_for(layout, settings)
    flip(target.blob_path(store.entry(DAYS[1], "market_ticks").sha256))  # damage in the newest backup only
    shutil.rmtree(layout.day_dir(DAYS[1]))
    result = restore_day(layout, settings, store, DAYS[1])
    newest, older = list_backups(target)[0]
    assert result.backup_id == f"hourly/{newest.id}"  # the newest manifest of the day...
    assert result.sources["market_ticks"] == f"daily/{older.id}"  # ...its damaged file from the older backup
    assert "market_ticks.parquet" in result.skipped[f"hourly/{newest.id}"]
    assert contents(store) == before and store.verify(DAYS[1]) == []


def test_one_damaged_file_never_blocks_the_others(data):
    """Issue 25: backups share blobs, so one rotten blob is rotten in every backup; the day's other files
    are still restored, the damaged one is left as it is here and reported (exit 1)."""
    layout, store, settings = data
    run_backup(layout, settings, "full")
    run_backup(layout, settings, "incremental")
    before = contents(store)
    flip(target_for(layout, settings).blob_path(store.entry(DAYS[2], "trades").sha256))
    shutil.rmtree(layout.day_dir(DAYS[2]))
    res = mia(layout, "recover", "--restore-from-backup", "--date", DAYS[2])
    assert res.exit_code == 1 and f"NOT RESTORED {DAYS[2]}/trades: every backup's copy" in res.output
    assert "Traceback" not in res.output
    restored = {k: v for k, v in contents(store).items() if k[0] == DAYS[2]}
    assert restored == {k: v for k, v in before.items() if k[0] == DAYS[2] and k[1] != "trades"}
    assert store.verify(DAYS[2]) == []  # what is there is whole; trades is missing, and said so
    with open_instance(layout) as instance:  # the datasets written are recorded, the unrestored one is not
        for ds in ("trade_exits", "market_ticks"):
            assert instance.get_latest_materialization_event(dg.AssetKey(ds)) is not None


def test_a_flipped_byte_in_the_newest_manifest_is_never_used(data):
    layout, store, settings = data
    first = run_backup(layout, settings, "full")
    second = run_backup(layout, settings, "incremental")
    flip(target_for(layout, settings).manifest_path("hourly", second.id), at=60)
    layout.dataset_file(DAYS[0], "trades").unlink()
    result = restore_day(layout, settings, store, DAYS[0])
    assert result.backup_id == f"daily/{first.id}" and "trades" in result.datasets
    assert f"hourly/{second.id}" in result.skipped and store.verify(DAYS[0]) == []


def test_every_copy_damaged_is_an_error_and_changes_nothing(data):
    layout, store, settings = data
    run_backup(layout, settings, "full")
    flip(target_for(layout, settings).blob_path(store.entry(DAYS[2], "trades").sha256))
    flip(layout.dataset_file(DAYS[2], "trades"))
    before = snapshot(layout)
    with pytest.raises(RestoreError, match="every backup holding 2025-06-25 is damaged"):
        restore_day(layout, settings, store, DAYS[2])
    with pytest.raises(RestoreInputError, match="holds 2030-01-01; they hold 3 day"):
        restore_day(layout, settings, store, "2030-01-01")
    assert snapshot(layout) == before


def test_validate_and_repair_uses_backups_then_raw_lines(data):
    layout, store, settings = data
    run_backup(layout, settings, "full")
    before = contents(store)
    flip(layout.dataset_file(DAYS[0], "trades"))  # a backup holds its good copy
    rows_exits = store.read(DAYS[1], "trade_exits").num_rows
    # a file written after the last backup: only the raw lines can bring it back
    store.write(DAYS[1], "trade_exits", store.read(DAYS[1], "trade_exits"), compression="snappy")
    flip(layout.dataset_file(DAYS[1], "trade_exits"))
    layout.manifest_file(DAYS[2]).write_text("[]")  # a damaged manifest: the whole day comes back
    report = validate_and_repair(layout, settings, store)
    assert report.unrepaired == {}
    assert "restored trades from backup" in report.repaired[DAYS[0]]
    assert any("rebuilt trade_exits from the raw lines" in a for a in report.repaired[DAYS[1]])
    assert any("damaged manifest" in a for a in report.repaired[DAYS[2]])
    assert store.read(DAYS[1], "trade_exits").num_rows == rows_exits
    assert contents(store) == before
    assert all(store.verify(d) == [] for d in DAYS)


def test_restore_trades_puts_back_only_the_named_rows(data, tmp_path):
    layout, store, settings = data
    run_backup(layout, settings, "full")
    day = DAYS[1]
    trades = store.read(day, "trades")
    tid = trades.column("trade_id")[1].as_py()
    # the trade is lost and another one changed after the backup: only the named one comes back
    others = trades.filter(pc.not_equal(trades.column("trade_id"), tid))
    changed = others.set_column(others.schema.get_field_index("price"), "price", pa.array([9.9] * others.num_rows))
    store.write(day, "trades", changed)
    exits = store.read(day, "trade_exits")
    store.write(day, "trade_exits", exits.filter(pc.not_equal(exits.column("trade_id"), tid)))
    ids = tmp_path / "ids.txt"
    ids.write_text(f"# lost in the incident\n{tid}\n\n")
    res = mia(layout, "recover", "--restore-trades", "--trade-ids", str(ids))
    assert res.exit_code == 0, res.output
    now = store.read(day, "trades")
    assert sorted(now.column("trade_id").to_pylist()) == sorted(trades.column("trade_id").to_pylist())
    by_id = {r["trade_id"]: r for r in now.to_pylist()}
    assert by_id[tid] == next(r for r in trades.to_pylist() if r["trade_id"] == tid)
    assert {r["price"] for t, r in by_id.items() if t != tid} == {9.9}  # other rows untouched
    assert tid in store.read(day, "trade_exits").column("trade_id").to_pylist()
    with open_instance(layout) as instance:  # the restore is recorded in Dagster
        rec = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey("trades"),
                                                                    asset_partitions=[day]), limit=1).records[0]
        assert rec.asset_materialization.metadata["sha256"].value == store.entry(day, "trades").sha256


def test_restore_from_backup_cli_records_the_partitions_it_wrote(data):
    layout, store, settings = data
    assert mia(layout, "backup", "--full").exit_code == 0
    listed = mia(layout, "backup", "--list").output
    assert "1 backup(s)" in listed and "days 2025-06-23..2025-06-25" in listed
    shutil.rmtree(layout.day_dir(DAYS[0]))
    res = mia(layout, "recover", "--restore-from-backup", "--date", DAYS[0])
    assert res.exit_code == 0 and "restored 2025-06-23 from daily/" in res.output, res.output
    with open_instance(layout) as instance:
        for ds in ("trades", "trade_exits", "market_ticks"):
            rec = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(ds),
                                                                        asset_partitions=[DAYS[0]]), limit=1).records
            assert rec and rec[0].asset_materialization.metadata["written_at"].value == store.entry(
                DAYS[0], ds).written_at
    again = mia(layout, "recover", "--restore-from-backup", "--date", DAYS[0])
    assert again.exit_code == 0 and "nothing to restore" in again.output


BAD_ARGS = [
    (["recover"], "choose one of"),
    (["recover", "--validate-and-repair", "--restore-from-backup"], "got --validate-and-repair and"),
    (["recover", "--restore-from-backup"], "needs the day"),
    (["recover", "--restore-from-backup", "--date", "2025-13-01"], "invalid date"),
    (["recover", "--restore-from-backup", "--date", "../../etc"], "invalid date"),
    (["recover", "--restore-from-backup", "--date", "2031-01-01"], "holds 2031-01-01; they hold 3 day(s)"),
    (["recover", "--restore-trades"], "needs --trade-ids"),
    (["recover", "--restore-trades", "--trade-ids", "{tmp}/nope.txt"], "does not exist"),
    (["recover", "--restore-trades", "--trade-ids", "{tmp}/bad.txt"], "line 2: 'a b'"),
    (["recover", "--restore-trades", "--trade-ids", "{tmp}/binary.txt"], "not UTF-8"),
    (["recover", "--restore-trades", "--trade-ids", "{tmp}/empty.txt"], "lists no trade id"),
    (["recover", "--restore-trades", "--trade-ids", "{tmp}/unknown.txt"], "1 trade id(s) are in no good backup: "
                                                                          "TRADE_NOPE; nothing was restored"),
    (["backup"], "say which backup"),
    (["backup", "--list", "--full"], "--list lists backups"),
    (["backup", "--full", "--incremental"], "choose one kind of backup, not --incremental and --full"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_input_is_exit_2_and_changes_nothing(data, tmp_path, args, message):
    layout, store, settings = data
    run_backup(layout, settings, "full")
    (tmp_path / "bad.txt").write_text("TRADE_20250624_000\na b\n")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    (tmp_path / "unknown.txt").write_text("TRADE_20250624_000\nTRADE_NOPE\n")
    before = snapshot(layout)
    res = mia(layout, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert res.exit_code == 2, (res.output, res.exception)
    assert message in res.output and "Traceback" not in res.output
    assert snapshot(layout) == before


def test_a_backup_target_that_is_missing_full_or_read_only_is_exit_1_with_an_alert(data, tmp_path, monkeypatch):
    layout, store, settings = data
    monkeypatch.setenv("MIA_BACKUP_TARGET", str(tmp_path / "unmounted"))
    res = mia(layout, "backup", "--incremental")
    assert res.exit_code == 1 and "does not exist: mount the backup disk" in res.output
    assert read_alerts(layout)[-1]["level"] == "WARNING" and "unmounted" in read_alerts(layout)[-1]["message"]
    res = mia(layout, "recover", "--restore-from-backup", "--date", DAYS[0])
    assert res.exit_code == 1 and "does not exist" in res.output

    disk = tmp_path / "disk"
    disk.mkdir()
    monkeypatch.setenv("MIA_BACKUP_TARGET", str(disk))
    assert mia(layout, "backup", "--full").exit_code == 0
    kept = sorted(p.relative_to(disk) for p in disk.rglob("*") if p.is_file())
    store.write(DAYS[0], "market_ticks", pa.table({"x": [1]}))  # new content to write
    from mia_pipeline.lifecycle import blobstore

    for code, words in ((errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only")):
        def refuse(self, *a, code=code, **kw):
            raise OSError(code, "refused", str(disk / "blobs"))

        monkeypatch.setattr(blobstore.LocalTarget, "put_stream", refuse)
        res = mia(layout, "backup", "--full")
        assert res.exit_code == 1 and words in res.output and "previous backups are intact" in res.output
        assert res.output.count("\n") == 1 and "Traceback" not in res.output
        # one alert per incident: the first failure of --full fires backup_failed, the next updates it
        (incident,) = [a for a in open_alerts(layout) if a["name"] == "backup_failed" and a["key"] == "full"]
        assert words in incident.get("last_message", incident["message"])
        assert sorted(p.relative_to(disk) for p in disk.rglob("*") if p.is_file()) == kept
