"""Issue 25 (2): repair and restore never discard rows that landed after the backup.

A day's raw lines stored here and in no backup are merged with the backup's, the day's datasets rebuilt
from the union, in the restore's one commit; lines here that cannot be vouched for (manifest lost and a
page checksum fails) are reported, never silently dropped nor committed as valid. Restores, repairs and
trade restores run under the ingest lock, so a collector's pass never lands between what they read and
what they write.
"""

import threading
import time

import pyarrow as pa
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.lifecycle.backup import run_backup
from mia_pipeline.lifecycle.recover import validate_and_repair
from mia_pipeline.lifecycle.restore import restore_day
from mia_pipeline.storage import StorageError
from mia_pipeline.storage.atomic import locked
from mia_pipeline.storage.partitions import read_self_checked
from mia_pipeline_tests.guide_examples import make_event, to_line
from mia_pipeline_tests.lifecycle._backup_data import DAYS, backed_up, flip, settings_for


@pytest.fixture
def data(layout, monkeypatch):
    return backed_up(layout, monkeypatch)


def later_lines(day: str, start: int, n: int) -> bytes:
    """``n`` trades (with their exits) on ``day``, ids from ``start``: events the backup does not hold."""
    out = b""
    for i in range(start, start + n):
        tid = f"LATE_{day.replace('-', '')}_{i:05d}"
        ts = f"{day}T16:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
        out += to_line(make_event("trade", event_id=f"late-t-{day}-{i}", trade_id=tid, timestamp=ts, price=1.1))
        out += to_line(make_event("trade_exit", event_id=f"late-x-{day}-{i}", trade_id=tid, timestamp=ts, pnl=1.0))
    return out


def land(layout, store, day: str, start: int, n: int, name: str = "b.jsonl") -> None:
    with open(layout.streaming_dir / name, "ab") as fh:
        fh.write(later_lines(day, start, n))
    ingest_once(layout, store, None)


def trade_ids(store, day: str) -> list[str]:
    return sorted(store.read(day, "trades").column("trade_id").to_pylist())


def test_a_lost_manifest_is_repaired_without_losing_the_rows_that_landed_after_the_backup(data):
    layout, store, _ = data
    land(layout, store, DAYS[1], 0, 300)
    before = {ds: store.read(DAYS[1], ds).num_rows for ds in ("trades", "trade_exits", "raw_events")}
    ids = trade_ids(store, DAYS[1])
    manifest = layout.manifest_file(DAYS[1])
    manifest.write_bytes(manifest.read_bytes()[:40])  # truncated: nothing vouches for the files any more
    report = validate_and_repair(layout, settings_for(layout), store)
    assert report.unrepaired == {}
    assert any("300" not in a and "600 raw line(s) stored here and in no backup kept" in a
               for a in report.repaired[DAYS[1]]), report.repaired
    assert {ds: store.read(DAYS[1], ds).num_rows for ds in before} == before
    assert trade_ids(store, DAYS[1]) == ids and store.verify(DAYS[1]) == []
    # and once more: nothing to do, nothing duplicated
    again = validate_and_repair(layout, settings_for(layout), store)
    assert again.repaired == {} and {ds: store.read(DAYS[1], ds).num_rows for ds in before} == before


def test_restore_by_date_keeps_rows_newer_than_the_backup_and_says_so(data):
    layout, store, _ = data
    land(layout, store, DAYS[0], 0, 5)
    ids = trade_ids(store, DAYS[0])
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "recover", "--restore-from-backup",
                                   "--date", DAYS[0]])
    assert res.exit_code == 0, res.output
    assert "10 raw line(s) stored here and in no backup were kept" in res.output
    assert trade_ids(store, DAYS[0]) == ids and store.verify(DAYS[0]) == []


def test_raw_lines_that_fail_their_page_checksum_are_reported_not_kept(data):
    """With the manifest lost, a flipped byte in the raw lines: the backup's version comes back, and the
    lines that could not be vouched for are named (exit 1), never committed as valid."""
    layout, store, _ = data
    backed_up = trade_ids(store, DAYS[2])
    land(layout, store, DAYS[2], 0, 40)
    layout.manifest_file(DAYS[2]).unlink()
    flip(layout.dataset_file(DAYS[2], "raw_events"))
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "recover", "--restore-from-backup",
                                   "--date", DAYS[2]])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert f"NOT KEPT {DAYS[2]}: the raw lines stored here cannot be used" in res.output
    assert trade_ids(store, DAYS[2]) == backed_up and store.verify(DAYS[2]) == []
    # offsets are never ahead of what is stored: the landing file is read again from where the backup ends
    assert "1 landing file(s) committed since the backup will be read again" in res.output
    report = ingest_once(layout, store, None)
    assert report.landed == {"trades": 40, "trade_exits": 40}
    late = [t for t in trade_ids(store, DAYS[2]) if t.startswith("LATE_")]
    assert len(late) == 40 and trade_ids(store, DAYS[2]) == sorted(backed_up + late)
    assert {d: store.read(d, "trades").num_rows for d in DAYS[:2]} == {DAYS[0]: 3, DAYS[1]: 3}  # others: once
    assert ingest_once(layout, store, None).landed == {} and store.verify(DAYS[2]) == []


def test_a_gone_landing_file_is_named_as_lost(data):
    layout, store, _ = data
    land(layout, store, DAYS[2], 0, 4, name="gone.jsonl")
    layout.manifest_file(DAYS[2]).unlink()
    flip(layout.dataset_file(DAYS[2], "raw_events"))
    (layout.streaming_dir / "gone.jsonl").unlink()
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "recover", "--restore-from-backup",
                                   "--date", DAYS[2]])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "1 landing file(s) committed since the backup are gone, what they held after it is lost: gone.jsonl" \
        in res.output


def test_files_written_by_the_store_check_each_page(data, tmp_path):
    layout, store, _ = data
    path = layout.dataset_file(DAYS[0], "raw_events")
    assert read_self_checked(path).num_rows == store.read(DAYS[0], "raw_events").num_rows
    flip(path)
    with pytest.raises(StorageError, match="is damaged"):
        read_self_checked(path)
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"x": [1]}), tmp_path / "old.parquet")
    with pytest.raises(StorageError, match="no page checksums"):
        read_self_checked(tmp_path / "old.parquet")


def test_the_ingest_lock_is_reentrant_in_a_thread_and_exclusive_across_threads(tmp_path):
    lock = tmp_path / ".lock"
    order = []
    with locked(lock):
        with locked(lock):  # a repair that restores a day: no deadlock on its own lock
            order.append("nested")
        t = threading.Thread(target=lambda: (locked(lock).__enter__(), order.append("other")))
        t.start()
        time.sleep(0.3)
        order.append("released")
    t.join(5)
    assert order == ["nested", "released", "other"]


def test_restores_beside_a_running_collector_lose_and_duplicate_nothing(data):
    """A collector lands 20 batches on the day while it is restored (by date) and repaired again and again:
    every event is there exactly once at the end."""
    layout, store, settings = data
    stop = threading.Event()
    errors = []

    def collector():
        try:
            for batch in range(20):
                land(layout, store, DAYS[1], batch * 10, 10, name="c.jsonl")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=collector)
    thread.start()
    rounds = 0
    while not stop.is_set() or rounds < 2:
        restore_day(layout, settings, store, DAYS[1])
        validate_and_repair(layout, settings, store)
        rounds += 1
    thread.join(60)
    assert errors == []
    ingest_once(layout, store, None)
    ids = store.read(DAYS[1], "trades").column("trade_id").to_pylist()
    late = [i for i in ids if i.startswith("LATE_")]
    assert len(late) == 200 and len(set(ids)) == len(ids)
    assert store.read(DAYS[1], "raw_events").num_rows == 3 * 3 + 400


def test_cleanup_beside_a_running_collector_loses_and_duplicates_nothing(data):
    """Late lines keep landing on old days while backups and `cleanup` run again and again: every event is
    either stored exactly once or held by a backup cleanup relied on (it deleted only what was backed up)."""
    import pyarrow.parquet as pq

    from mia_pipeline.collection.integrity import integrity_problems
    from mia_pipeline.lifecycle.catalog import list_backups, target_for
    from mia_pipeline.lifecycle.retention import cleanup

    layout, store, _ = data
    settings = settings_for(layout, MIA_BACKUP_KEEP_HOURLY="100000")  # every backup kept: the oracle below
    stop = threading.Event()
    errors = []

    def collector():
        try:
            for batch in range(15):
                land(layout, store, DAYS[batch % 3], batch * 10, 10, name="c.jsonl")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(repr(exc))
        finally:
            stop.set()

    thread = threading.Thread(target=collector)
    thread.start()
    removed = 0
    while not stop.is_set():
        run_backup(layout, settings, "incremental")
        removed += len(cleanup(layout, settings, 30).removed)
    thread.join(60)
    assert errors == []
    assert removed > 0
    ingest_once(layout, store, None)
    stored = [i for d in store.days_present() for i in store.read(d, "trades").column("trade_id").to_pylist()]
    assert len(stored) == len(set(stored))  # nothing twice
    target = target_for(layout, settings)
    backed = set()
    for backup in list_backups(target)[0]:
        for rel, ref in backup.files.items():
            if rel.endswith("/trades.parquet"):
                with target.open_blob(ref.sha256) as fh:
                    backed.update(pq.read_table(fh, columns=["trade_id"]).column("trade_id").to_pylist())
    landed = {f"LATE_{DAYS[b % 3].replace('-', '')}_{i:05d}" for b in range(15) for i in range(b * 10, b * 10 + 10)}
    assert landed <= set(stored) | backed  # nothing lost
    assert not [p for p in integrity_problems(layout, store) if "stored twice" in p or "stored on" in p]


def test_a_day_lost_with_its_manifest_and_raw_lines_is_re_landed_from_the_landing_zone(data):
    """Nothing here to merge (manifest and raw lines gone): the backup's day comes back, and the landing file
    committed since is read again, so the rows that landed after the backup come back too."""
    layout, store, _ = data
    land(layout, store, DAYS[1], 0, 7)
    ids = trade_ids(store, DAYS[1])
    layout.manifest_file(DAYS[1]).unlink()
    layout.dataset_file(DAYS[1], "raw_events").unlink()
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "recover", "--validate-and-repair"])
    assert res.exit_code == 0, res.output
    assert "the raw lines stored here were lost with the day's manifest: " in res.output
    assert "landing file(s) committed since the backup will be read again" in res.output
    assert ingest_once(layout, store, None).landed == {"trades": 7, "trade_exits": 7}
    assert trade_ids(store, DAYS[1]) == ids and store.verify(DAYS[1]) == []
    assert ingest_once(layout, store, None).landed == {}


def lose(layout, day: str) -> None:
    layout.manifest_file(day).unlink()
    layout.dataset_file(day, "raw_events").unlink()


def test_a_later_backup_that_only_carried_the_day_does_not_hide_the_lines_to_read_again(data):
    """The hourly backup after the loss carries the day's old files forward: the lines to read again are
    those committed since the backup that first held them, not since the one restored from."""
    layout, store, _ = data
    land(layout, store, DAYS[1], 0, 7)
    lose(layout, DAYS[1])
    time.sleep(2.5)  # past the rewind's margin of committed_at's one-second grain
    assert DAYS[1] in str(run_backup(layout, settings_for(layout), "incremental").damaged)
    result = restore_day(layout, settings_for(layout), store, DAYS[1])
    assert "landing file(s) committed since the backup will be read again" in result.reread
    assert ingest_once(layout, store, None).landed == {"trades": 7, "trade_exits": 7}
    assert len([t for t in trade_ids(store, DAYS[1]) if t.startswith("LATE_")]) == 7


def test_a_gone_landing_file_after_a_lost_day_is_not_a_success(data):
    layout, store, _ = data
    land(layout, store, DAYS[2], 0, 4, name="gone.jsonl")
    lose(layout, DAYS[2])
    (layout.streaming_dir / "gone.jsonl").unlink()
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "recover", "--validate-and-repair"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert f"NOT REPAIRED {DAYS[2]}: 1 landing file(s) committed since the backup are gone" in res.output


def test_a_settled_last_line_is_read_again_from_the_files_own_end(layout, monkeypatch):
    """A writer that died before its last newline, then appended again: the offset goes back to the file's
    end as it was (the stored line has one added newline), so the next line is not cut."""
    from mia_pipeline.collection import landing
    from mia_pipeline.collection.quarantine import counts_by_reason
    from mia_pipeline.storage import PartitionStore
    from mia_pipeline_tests.lifecycle._backup_data import trade_lines

    store = PartitionStore(layout)
    path = layout.streaming_dir / "ibkr_x.jsonl"
    path.write_bytes(trade_lines(DAYS[1]).rstrip(b"\n"))
    monkeypatch.setattr(landing, "TAIL_SETTLE_SECONDS", 0.0)
    ingest_once(layout, store, None)
    assert landing.load_state(layout)["files"][path.name]["offset"] == path.stat().st_size
    run_backup(layout, settings_for(layout), "full")
    time.sleep(2.5)
    with open(path, "ab") as fh:
        fh.write(later_lines(DAYS[1], 0, 3))
    ingest_once(layout, store, None)
    lose(layout, DAYS[1])
    restore_day(layout, settings_for(layout), store, DAYS[1])
    report = ingest_once(layout, store, None)
    assert report.landed == {"trades": 3, "trade_exits": 3} and report.quarantined == {}
    assert len(trade_ids(store, DAYS[1])) == 6 and counts_by_reason(layout) == {}


def test_a_line_quarantined_on_the_day_it_arrived_is_not_quarantined_again_on_a_later_day(layout):
    from datetime import datetime

    from mia_pipeline.collection.ingest import ingest_landing_zone
    from mia_pipeline.collection.quarantine import counts_by_reason
    from mia_pipeline.storage import PartitionStore

    def ms(day):
        return int(datetime.fromisoformat(day + "T20:00:00+00:00").timestamp() * 1000)

    store = PartitionStore(layout)
    (layout.streaming_dir / "p.jsonl").write_bytes(later_lines(DAYS[1], 0, 2) + b'{"kind":"trade", oops\n')
    assert dict(ingest_landing_zone(layout, store, now_ms=ms(DAYS[1])).quarantined) == {"malformed_json": 1}
    layout.ingest_state_file.unlink()  # read everything again, on a later day
    again = ingest_landing_zone(layout, store, now_ms=ms(DAYS[2]))
    assert dict(again.quarantined) == {} and sum(again.landed.values()) == 0
    assert {d: dict(c) for d, c in counts_by_reason(layout).items()} == {DAYS[1]: {"malformed_json": 1}}
