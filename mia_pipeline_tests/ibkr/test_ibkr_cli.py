"""`mia backfill ibkr`, `mia sources test`, `mia record ibkr` against the fake gateway: what they
store, what Dagster records, and exit codes (0 ok, 1 IB down / a day failed, 2 bad arguments)."""

import json

import dagster as dg
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.dagster_bridge import open_instance
from mia_pipeline.cli.main import cli
from mia_pipeline.schemas import parse_lines
from mia_pipeline.storage import PartitionStore


def run(layout, *args, code=0):
    if args and args[0] == "--config":  # a global option: before the command
        args = (args[0], args[1], "--data-dir", str(layout.root), *args[2:])
    else:
        args = ("--data-dir", str(layout.root), *args)
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    return res.output


BACKFILL = ["backfill", "ibkr", "--bar-size", "15min", "--what", "BID_ASK", "--symbol", "EURUSD"]


@pytest.mark.slow  # Dagster: opening the instance and running the day checks
def test_backfill_lands_bars_and_dagster_records_each_day(layout, ibkr_env):
    out = run(layout, *BACKFILL, "--start", "2025-06-21", "--end", "2025-06-24")
    assert "EURUSD 15min BID_ASK 2025-06-23: 96 bars" in out and "3 day(s) written, 0 failed" in out
    store = PartitionStore(layout)
    assert store.read("2025-06-23", "market_bars").num_rows == 96
    with open_instance(layout) as instance:
        bars = {r.partition_key: r.asset_materialization.metadata["dagster/row_count"].value
                for r in instance.fetch_materializations(dg.AssetKey("market_bars"), limit=10).records}
        series = {r.partition_key: r.asset_materialization.metadata["dagster/row_count"].value
                  for r in instance.fetch_materializations(dg.AssetKey("ibkr_history"), limit=10).records}
    assert bars == {"2025-06-22": 8, "2025-06-23": 96, "2025-06-24": 96}  # Saturday 21st: closed, not recorded
    assert series == {dg.MultiPartitionKey({"day": d, "series": "EURUSD_15min_BID_ASK"}): n for d, n in bars.items()}


@pytest.mark.slow  # IB's 15-s identical-request rule between the retries, on the real clock
def test_backfill_day_that_stays_empty_fails_with_exit_1(layout, ibkr_env, tmp_path):
    ibkr_env.fail_next("EURUSD", "BID_ASK", "empty", "empty", "empty")
    (tmp_path / "mia.yaml").write_text("ibkr: {retry_wait_s: 1}\n")
    out = run(layout, "--config", str(tmp_path / "mia.yaml"), *BACKFILL, "--start", "2025-06-23", "--end", "2025-06-24", code=1)
    assert "2025-06-23: FAILED" in out and "1 day(s) not stored: EURUSD_15min_BID_ASK 2025-06-23" in out
    store = PartitionStore(layout)
    assert store.read("2025-06-23", "market_bars") is None and store.read("2025-06-24", "market_bars").num_rows == 96


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "2025-06-24", "--end", "2025-06-23"], "--end 2025-06-23 is before --start"),
    (["--start", "2099-01-01", "--end", "2099-01-02"], "is in the future"),
    (["--start", "2025-02-30", "--end", "2025-03-01"], "invalid date"),
    (["--start", "2025-06-23", "--end", "2025-06-23", "--what", "TRADES", "--symbol", "EURUSD"],
     "IB has no trades for FX"),
    (["--start", "2025-06-23", "--end", "2025-06-23", "--symbol", "CL"], "CL is not configured"),
    (["--start", "2025-06-23", "--end", "2025-06-23", "--bar-size", "2min"], "'2min' is not one of"),
])
def test_backfill_bad_arguments_exit_2(layout, ibkr_env, args, message):
    assert message in run(layout, "backfill", "ibkr", *args, code=2)


def test_backfill_without_a_gateway_is_one_line_exit_1(layout, monkeypatch):
    monkeypatch.setenv("MIA_IBKR_PORT", "1")
    out = run(layout, *BACKFILL, "--start", "2025-06-23", "--end", "2025-06-23", code=1)
    assert out.strip().splitlines()[-1].startswith("Error: cannot connect to IB: connection refused at 127.0.0.1:1")


def test_sources_test_up_down_and_farms(layout, ibkr_env, monkeypatch):
    assert "DOWN" not in run(layout, "sources", "test") and "server version 176" in run(layout, "sources", "test")
    ibkr_env.farms_broken = True
    assert "DOWN (farms_down)" in run(layout, "sources", "test", code=1)
    monkeypatch.setenv("MIA_IBKR_PORT", "1")
    assert "DOWN (refused): connection refused" in run(layout, "sources", "test", code=1)


def test_market_data_feed_test_ibkr_connection(gateway, ibkr_cfg):
    from mia_pipeline.settings import load_settings
    from mia_pipeline.sources.ibkr.feed import MarketDataFeed

    settings = load_settings(env={"MIA_IBKR_PORT": str(gateway.port)})
    check = MarketDataFeed(settings).test_ibkr_connection()
    assert check and str(check).startswith("OK: server version 176, account DU1234567")
    gateway.mode = "silent"
    check = MarketDataFeed(settings).test_ibkr_connection(timeout_s=1)
    assert not check and check.reason == "no_answer"


def test_record_for_a_duration_writes_events_the_collector_accepts(layout, ibkr_env):
    ibkr_env.stream_every(0.05)
    run(layout, "record", "ibkr", "--duration", "1.5", "--flush-every", "0.2")
    files = sorted(layout.streaming_dir.glob("ibkr_*.jsonl"))
    data = b"".join(f.read_bytes() for f in files)
    kinds = {json.loads(line)["kind"] for line in data.splitlines()}
    assert {"market_tick", "market_bar", "system_status"} <= kinds
    res = parse_lines(data, now_ms=4_000_000_000_000)
    assert res.rejects == [] and res.tables["market_ticks"].num_rows > 0
    assert "--duration" in run(layout, "record", "ibkr", "--duration", "-3", code=2)
