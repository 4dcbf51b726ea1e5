"""Sierra at the command line: `mia import` of .scid/.depth/.dly/study exports (exit 0, idempotent; a bad
file exits 2 naming file and offset and writes nothing), `mia record sierra --once` from the cursor, and
the Sierra line of `mia sources test` (folder missing, no .scid files, last write age, stale)."""

import os
import time

import click
import pytest
from click.testing import CliRunner
from conftest import T0
from sierra_writer import es_session, scid_header, sierra_writes

from mia_pipeline.cli.common import CliState
from mia_pipeline.cli.main import cli
from mia_pipeline.cli.sierra import record_sierra, sierra_source_check
from mia_pipeline.settings import load_settings
from mia_pipeline.sources.sierra.status import test_sierra_connection

DAY = "2025-06-23"


def mia(layout, *args, config=None):
    extra = ["--config", str(config)] if config else []
    return CliRunner().invoke(cli, ["--data-dir", str(layout.root), *extra, *args])


@pytest.mark.slow  # ~10 s: the first Dagster record of a command opens an instance
def test_import_scid_and_depth_then_again(layout, store, sierra_dir):
    scid = sierra_dir / "ESU25_FUT_CME.scid"
    depth = sierra_dir / "MarketDepthData" / "ESU25_FUT_CME.2025-06-23.depth"
    out = mia(layout, "import", str(scid), str(depth))
    assert out.exit_code == 0, out.output
    assert "market_ticks 600" in out.output and "market_depth 26" in out.output
    assert store.read(DAY, "market_ticks").num_rows == 600 and store.read(DAY, "market_depth").num_rows == 26
    again = mia(layout, "import", str(scid), "--symbol", "ES")
    assert again.exit_code == 0 and "nothing new" in again.output and "duplicates dropped 6" in again.output


def test_a_bad_scid_exits_2_naming_file_and_offset_and_writes_nothing(layout, tmp_path):
    bad = tmp_path / "ES.scid"
    bad.write_bytes(scid_header(record_size=44) + bytes(88))
    out = mia(layout, "import", str(bad))
    assert out.exit_code == 2
    assert "ES.scid: at byte 8: record size 44, expected 40; nothing was imported from it" in out.output
    assert "Traceback" not in out.output and not any(layout.daily_dir.iterdir())


def test_study_export_and_dly_import(layout, store, tmp_path):
    study = tmp_path / "ES_1min.txt"
    study.write_text("Date, Time, Open, High, Low, Last, Volume, # of Trades, OHLC Avg, HLC Avg, HL Avg, "
                     "Bid Volume, Ask Volume, VWAP, RSI\n"
                     "2025/6/23, 09:30:00, 6000, 6001, 5999, 6000.5, 120, 40, 6000, 6000, 6000, 50, 70, 6000.2, 51.5\n"
                     "2025/6/23, 09:31:00, 6000.5, 6002, 6000, 6001.5, 90, 30, 6001, 6001, 6001, 40, 50, 6000.6, 55\n")
    out = mia(layout, "import", str(study), "--symbol", "ES", "--tz", "America/New_York")
    assert out.exit_code == 0, out.output
    bars = store.read(DAY, "market_bars").sort_by("ts").to_pylist()
    assert [b["ts"].isoformat() for b in bars] == ["2025-06-23T13:30:00+00:00", "2025-06-23T13:31:00+00:00"]
    assert [b["vwap"] for b in bars] == [6000.2, 6000.6] and bars[0]["timeframe"] == "1min"
    assert '"RSI":51.5' in bars[0]["extra"]
    dly = tmp_path / "ESU25.dly"
    dly.write_text("Date, Open, High, Low, Close, Volume, OpenInterest\n2025/6/20, 1, 3, 1, 2, 10, 7\n")
    assert mia(layout, "import", str(dly)).exit_code == 0
    assert store.read("2025-06-20", "market_bars").column("timeframe").to_pylist() == ["1d"]
    bad_tz = mia(layout, "import", str(study), "--tz", "Mars/Olympus")
    assert bad_tz.exit_code == 2 and "unknown chart time zone 'Mars/Olympus'" in bad_tz.output


def _group(layout, config):
    @click.group()
    @click.pass_context
    def record(ctx):
        ctx.obj = CliState(data_dir=str(layout.root), config=str(config))

    record.add_command(record_sierra)
    return record


@pytest.mark.slow
def test_record_sierra_once_resumes_from_its_cursor(layout, store, config, sierra_dir):
    runner = CliRunner()
    first = runner.invoke(_group(layout, config), ["sierra", "--once"])
    assert first.exit_code == 0, first.output
    assert "626 new record(s)" in first.output and store.read(DAY, "market_ticks").num_rows == 600
    second = runner.invoke(_group(layout, config), ["sierra", "--once"])
    assert second.exit_code == 0 and "new record" not in second.output
    sierra_writes(sierra_dir / "ESU25_FUT_CME.scid", es_session(T0 + 600 * 250_000, 20))
    third = runner.invoke(_group(layout, config), ["sierra", "--once", "--data-dir", str(sierra_dir)])
    assert "20 new record(s)" in third.output and store.read(DAY, "market_ticks").num_rows == 620
    missing = runner.invoke(_group(layout, config), ["sierra", "--once", "--data-dir", str(sierra_dir / "nope")])
    assert missing.exit_code == 2 and "is not a folder" in missing.output


def test_sources_test_reports_sierra(tmp_path, sierra_dir, config):
    settings = load_settings(str(config), data_dir=str(tmp_path / "data"))
    ok, line = sierra_source_check(settings)
    assert ok and "ES: ESU25_FUT_CME.scid: 600 records, last 2025-06-23T13:32:" in line and "written" in line
    old = time.time() - 3600
    os.utime(sierra_dir / "ESU25_FUT_CME.scid", (old, old))
    ok, line = sierra_source_check(settings)
    assert not ok and "(STALE)" in line and "written 1.0 h ago" in line
    check = test_sierra_connection(settings.sierra.model_copy(update={"data_dir": str(tmp_path / "none")}))
    assert not check and "is missing" in str(check)
    empty = tmp_path / "empty"
    empty.mkdir()
    check = test_sierra_connection(settings.sierra.model_copy(update={"data_dir": str(empty)}))
    assert not check and str(check) == f"Sierra: no .scid files in {empty}"
    assert "no data folder configured" in str(test_sierra_connection(settings.sierra.model_copy(update={"data_dir": None})))
