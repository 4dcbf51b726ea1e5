"""Damage never spreads: a stored file that no longer matches its manifest is repaired from the day's
raw lines or left for recovery (its landing lines wait), never merged and re-committed as valid; a
lost manifest, a manifest naming paths outside its day, damaged quarantine and state files are all
reported by `mia check-integrity` (exit 1), never a traceback."""

import json

import pytest
from click.testing import CliRunner
from conftest import SYMBOLS, append, tick

from mia_pipeline.cli.main import cli
from mia_pipeline.collection.ingest import ingest_landing_zone
from mia_pipeline.collection.integrity import integrity_problems

DAY = "2025-06-23"


def ingest(layout, store):
    return ingest_landing_zone(layout, store, known_symbols=SYMBOLS)


def flip_a_byte(path, at=-40):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def check_integrity(layout) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "check-integrity"])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_a_damaged_dataset_file_is_repaired_from_raw_lines_before_a_late_event_is_merged(layout, store):
    append(layout, "a.jsonl", tick(1) + tick(2))
    ingest(layout, store)
    flip_a_byte(layout.dataset_file(DAY, "market_ticks"))
    assert any("sha256" in p for p in integrity_problems(layout, store))
    append(layout, "a.jsonl", tick(3))  # a late event for the damaged day
    report = ingest(layout, store)
    assert report.repaired == {DAY: ["market_ticks"]} and not report.damaged
    assert sorted(store.read(DAY, "market_ticks").column("seq").to_pylist()) == [1, 2, 3]
    assert integrity_problems(layout, store) == []


def test_damaged_raw_lines_stop_that_day_only_and_its_lines_wait(layout, store):
    append(layout, "a.jsonl", tick(1))
    ingest(layout, store)
    raw = layout.dataset_file(DAY, "raw_events")
    good = raw.read_bytes()
    flip_a_byte(raw)
    before = store.manifest(DAY)
    append(layout, "a.jsonl", tick(2))                                   # the damaged day
    append(layout, "b.jsonl", tick(3, ts="2025-06-24T10:00:00.000Z"))    # another day, another file
    report = ingest(layout, store)
    assert DAY in report.damaged and "sha256" in report.damaged[DAY]
    assert report.held_files == {"a.jsonl"}
    assert store.manifest(DAY) == before                                 # nothing re-committed
    assert store.read("2025-06-24", "market_ticks").num_rows == 1        # other days go on
    raw.write_bytes(good)                                                # restored (e.g. from a backup)
    report = ingest(layout, store)
    assert not report.damaged
    assert sorted(store.read(DAY, "market_ticks").column("seq").to_pylist()) == [1, 2]


def test_a_lost_manifest_is_reported_and_the_day_is_never_overwritten(layout, store):
    append(layout, "a.jsonl", tick(1))
    ingest(layout, store)
    layout.manifest_file(DAY).unlink()
    code, out = check_integrity(layout)
    assert code == 1 and "data files without a manifest" in out
    kept = layout.dataset_file(DAY, "market_ticks").read_bytes()
    append(layout, "a.jsonl", tick(2))
    report = ingest(layout, store)
    assert DAY in report.damaged
    assert layout.dataset_file(DAY, "market_ticks").read_bytes() == kept
    assert not layout.manifest_file(DAY).exists()


def test_a_manifest_naming_a_path_outside_its_day_is_refused(layout, store, tmp_path):
    append(layout, "a.jsonl", tick(1))
    ingest(layout, store)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    manifest = json.loads(layout.manifest_file(DAY).read_text())
    manifest["datasets"]["market_ticks"]["staged"] = "../../../../victim"
    layout.manifest_file(DAY).write_text(json.dumps(manifest))
    code, out = check_integrity(layout)
    assert code == 1 and "outside its own file" in out
    assert victim.read_text() == "keep me"  # never moved in


def test_unexpected_files_damaged_quarantine_and_state_files_are_problems(layout, store):
    append(layout, "a.jsonl", tick(1) + b"{oops\n")
    ingest(layout, store)
    (layout.day_dir(DAY) / "stray.parquet").write_bytes(b"x")
    (qday,) = layout.quarantine_days()  # a line without a timestamp: quarantined under today
    quarantine = layout.quarantine_file(qday)
    quarantine.write_bytes(quarantine.read_bytes()[:20])
    layout.ingest_state_file.write_text("{not json")
    code, out = check_integrity(layout)
    assert code == 1
    assert "unexpected file stray.parquet" in out
    assert f"quarantine {qday}: rejects.parquet is not readable Parquet" in out
    assert "ingest_state.json: not readable JSON" in out


def test_check_integrity_runs_on_a_clean_tree(layout, store):
    append(layout, "a.jsonl", tick(1))
    ingest(layout, store)
    code, out = check_integrity(layout)
    assert code == 0 and "0 problem(s)" in out, out


def test_the_collector_says_which_day_was_not_written_and_exits_1(layout, store):
    append(layout, "a.jsonl", tick(1))
    ingest(layout, store)
    flip_a_byte(layout.dataset_file(DAY, "raw_events"))
    append(layout, "a.jsonl", tick(2))
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "collect", "start", "--once"])
    assert result.exit_code == 1
    assert f"NOT WRITTEN {DAY}" in result.output and "left for recovery" in result.output


def run_cli(layout, *args):
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.mark.parametrize("damage", [b"{bad", b"", b"[]", b'{"datasets": []}', b'{"datasets": {"market_ticks": 1}}'])
def test_a_damaged_manifest_stops_its_day_only_and_every_command_says_so(layout, store, damage):
    append(layout, "a.jsonl", tick(1))
    append(layout, "b.jsonl", tick(2, ts="2025-06-24T10:00:00.000Z"))
    assert run_cli(layout, "collect", "start", "--once").exit_code == 0
    layout.manifest_file(DAY).write_bytes(damage)
    append(layout, "a.jsonl", tick(3))                                   # for the damaged day
    append(layout, "c.jsonl", tick(4, ts="2025-06-25T10:00:00.000Z"))    # for a new day
    result = run_cli(layout, "collect", "start", "--once")
    assert result.exit_code == 1 and f"NOT WRITTEN {DAY}" in result.output
    assert store.read("2025-06-25", "market_ticks").num_rows == 1         # other days go on
    assert layout.manifest_file(DAY).read_bytes() == damage               # never re-committed
    status = run_cli(layout, "status", "--by-day", "--json")
    assert status.exit_code == 0 and "2025-06-25" in status.output
    assert run_cli(layout, "status").exit_code == 0
    assert "damaged day" in run_cli(layout, "collect", "status").output
    integrity = run_cli(layout, "check-integrity")
    assert integrity.exit_code == 1 and f"{DAY}: " in integrity.output and "damaged" in integrity.output
    rebuild = run_cli(layout, "rebuild", "--date", DAY)
    assert rebuild.exit_code == 1 and "nothing was rebuilt" in rebuild.output


def test_a_damaged_quarantine_file_is_set_aside_and_ingestion_goes_on(layout, store):
    append(layout, "q.jsonl", b"{bad\n")
    ingest(layout, store)
    (qday,) = layout.quarantine_days()
    layout.quarantine_file(qday).write_bytes(b"")
    append(layout, "q.jsonl", b"{bad2\n" + tick(1))
    report = ingest(layout, store)
    assert report.quarantined == {"malformed_json": 1} and store.read(DAY, "market_ticks").num_rows == 1
    code, out = check_integrity(layout)
    assert code == 1 and "damaged quarantine file set aside" in out
    assert any(".damaged-" in p.name for p in layout.quarantine_day_dir(qday).iterdir())


def test_a_hidden_landing_file_is_listed_as_skipped(layout, store):
    append(layout, ".hidden.jsonl", tick(1))
    append(layout, "a.jsonl", tick(2))
    report = ingest(layout, store)
    assert report.lines == 1
    assert ".hidden.jsonl: a hidden file" in run_cli(layout, "collect", "status").output


def test_import_refuses_the_landing_zone_itself(layout):
    append(layout, "a.jsonl", tick(1))
    result = run_cli(layout, "import", str(layout.streaming_dir))
    assert result.exit_code == 2 and "in the landing zone already" in result.output
