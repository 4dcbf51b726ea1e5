"""Issue 25 (3): re-ingesting is idempotent with archived days too.

A lost ingest state (reset), a copied data root (new inodes) or late lines for an archived day never
store an archived row a second time: new rows are deduplicated against the day's archived rows, and only
the day folder's own rows are rewritten. `mia check-integrity` finds rows stored twice (a day folder
repeating archived keys, an id on two days).
"""

import shutil
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mia_pipeline.collection.audit import duplicate_ids
from mia_pipeline.collection.collector import ingest_once, reset_state_files
from mia_pipeline.collection.integrity import integrity_problems
from mia_pipeline.layout import STORED_DATASETS, Layout
from mia_pipeline.lifecycle.archive import archive
from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.lifecycle._backup_data import DAYS, build, trade_lines


@pytest.fixture
def archived(layout):
    store = build(layout)
    before = rows(store)
    archive(layout, store, date(2025, 7, 1))
    assert store.days_present() == [] and rows(store) == before
    return layout, store, before


def rows(store) -> dict:
    return {(d, ds): sorted(map(str, t.to_pylist())) for d in DAYS for ds in STORED_DATASETS
            if (t := store.read(d, ds)) is not None and ds != "raw_events"} | {
        (d, "raw_events"): sorted(zip(t.column("file").to_pylist(), t.column("offset").to_pylist(), strict=True))
        for d in DAYS if (t := store.read(d, "raw_events")) is not None}


def late(day: str) -> bytes:
    return (trade_lines(day).replace(b"TRADE_", b"LATE_").replace(b'"t-', b'"lt-').replace(b'"x-', b'"lx-')
            .replace(b'"k-', b'"lk-'))


def test_a_reset_ingest_state_lands_nothing_twice(archived):
    layout, store, before = archived
    layout.ingest_state_file.write_text("{damaged")
    assert reset_state_files(layout)
    report = ingest_once(layout, store, None)
    assert report.lines == 27 and sum(report.landed.values()) == 0 and sum(report.duplicates.values()) == 27
    assert store.days_present() == [] and rows(store) == before
    assert integrity_problems(layout, store) == []


def test_a_copied_data_root_lands_nothing_twice(archived, tmp_path):
    layout, _, before = archived
    copy = Layout(tmp_path / "copy")
    shutil.copytree(layout.root, copy.root)  # new inodes: every landing file looks new
    store = PartitionStore(copy)
    ingest_once(copy, store, None)
    assert store.days_present() == [] and rows(store) == before


def test_late_lines_for_an_archived_day_are_kept_once_in_its_folder(archived):
    layout, store, before = archived
    with open(layout.streaming_dir / "late.jsonl", "ab") as fh:
        fh.write(late(DAYS[0]))
    ingest_once(layout, store, None)
    with open(layout.streaming_dir / "later.jsonl", "ab") as fh:  # a second batch: merged with the first only
        fh.write(late(DAYS[0]).replace(b"LATE_", b"LATER_").replace(b'"l', b'"ll'))
    ingest_once(layout, store, None)
    layout.ingest_state_file.write_text("{damaged")
    reset_state_files(layout)
    ingest_once(layout, store, None)  # and everything again
    assert store.days_present() == [DAYS[0]]
    assert store.read_split(DAYS[0], "trades")[1].num_rows == 6  # the folder holds the late trades only
    ids = store.read(DAYS[0], "trades").column("trade_id").to_pylist()
    assert len(ids) == len(set(ids)) == 9
    assert integrity_problems(layout, store) == []


def test_check_integrity_finds_rows_stored_twice(archived):
    layout, store, _ = archived
    raw = store.read(DAYS[1], "raw_events")  # the archived lines again, received later: a duplicate on disk
    raw = raw.set_column(raw.schema.get_field_index("received_at"), "received_at",
                         pc.add(raw.column("received_at"), pa.scalar(5, pa.duration("ms"))))
    store.write(DAYS[1], "raw_events", raw)
    trades = store.read(DAYS[0], "trades")  # a trade id of one day stored on another
    moved = trades.slice(0, 1)
    moved = moved.set_column(moved.schema.get_field_index("ts"), "ts",
                             pc.add(moved.column("ts"), pa.scalar(2 * 86_400_000, pa.duration("ms"))))
    store.write(DAYS[2], "trades", moved)
    problems = integrity_problems(layout, store)
    assert f"{DAYS[1]}/raw_events: 9 row(s) of the day folder repeat keys its archived rows hold" in problems[0]
    ids = duplicate_ids(store, list(DAYS))  # ids on two days: the audit's finding (check-integrity shows both)
    assert any(p.startswith("trades: trade_id TRADE_20250623_000 is stored on 2 days") for p in ids), ids


def test_validate_and_repair_restores_a_damaged_or_lost_archive_month(archived, monkeypatch):
    """Issue 25 (13): a damaged archived month was ignored by validate-and-repair (no command restored one)."""
    from mia_pipeline.lifecycle.backup import run_backup
    from mia_pipeline.lifecycle.recover import validate_and_repair
    from mia_pipeline_tests.lifecycle._backup_data import flip, settings_for

    layout, store, before = archived
    monkeypatch.setenv("MIA_RETENTION_DAYS", "100000")
    settings = settings_for(layout)
    run_backup(layout, settings, "full")
    month = layout.archive_month_dir("2025-06")
    flip(next(month.glob("trades*.parquet")))
    assert any(p.startswith("archive 2025-06/trades") for p in integrity_problems(layout, store))
    report = validate_and_repair(layout, settings, store)
    assert report.unrepaired == {} and "restored trades" in report.repaired["archive 2025-06"][0]
    assert integrity_problems(layout, store) == [] and rows(store) == before
    (month / "_manifest.json").write_text("{")  # damaged, then lost
    report = validate_and_repair(layout, settings, store)
    assert "the month manifest was damaged: restored" in report.repaired["archive 2025-06"][0]
    (month / "_manifest.json").unlink()
    report = validate_and_repair(layout, settings, store)
    assert "the month manifest was lost: restored" in report.repaired["archive 2025-06"][0]
    assert integrity_problems(layout, store) == [] and rows(store) == before


def test_mia_status_counts_the_rows_the_library_reads(archived):
    """Issue 25 (3): after an archive, late lines for an archived day and a reset re-ingest, `mia status` and
    the library read the same rows per dataset and day."""
    import json

    from click.testing import CliRunner

    from mia_pipeline.cli.main import cli

    layout, store, _ = archived
    with open(layout.streaming_dir / "late.jsonl", "ab") as fh:
        fh.write(late(DAYS[1]))
    ingest_once(layout, store, None)
    layout.ingest_state_file.write_text("{damaged")
    reset_state_files(layout)
    ingest_once(layout, store, None)
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "status", "--by-day", "--json"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    read = {ds: {d: t.num_rows for d in DAYS if (t := store.read(d, ds)) is not None and t.num_rows}
            for ds in ("trades", "trade_exits", "market_ticks")}
    for ds, by_day in read.items():
        assert shown["datasets"][ds]["rows"] == sum(by_day.values()), ds
        assert {d: n for d, n in shown["rows_by_day"][ds].items() if n} == by_day, ds
    assert read["trades"] == {DAYS[0]: 3, DAYS[1]: 6, DAYS[2]: 3}
