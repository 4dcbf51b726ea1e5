"""Paper trading: the realtime mode (a ~1 s run at high speed) and the `mia simulate` command."""

import json
from datetime import UTC, date, datetime, timedelta

import click
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.simulate import simulate as simulate_command
from mia_pipeline.sources.paper_trading import simulate


def test_realtime_appends_wall_clock_events_until_max_events(tmp_path):
    before = datetime.now(UTC)
    summary = simulate(tmp_path, start=date(2025, 6, 23), days=1, realtime=True, speed=6000, max_events=120)
    after = datetime.now(UTC)
    assert summary.realtime and not summary.interrupted and summary.events == 120
    lines = b"".join(p.read_bytes() for p in summary.files).splitlines()
    events = [json.loads(x) for x in lines]
    assert len(events) == 120 and len({e["event_id"] for e in events}) == 120
    stamps = [datetime.fromisoformat(e["timestamp"]) for e in events]
    assert before - timedelta(minutes=1) <= min(stamps) and max(stamps) <= after + timedelta(seconds=1)
    assert {"market_bar", "signal"} <= {e["kind"] for e in events}
    assert summary.files[0].name == f"paper_trading_{stamps[0].date().isoformat()}.jsonl"
    from mia_pipeline.schemas import parse_lines

    result = parse_lines(b"\n".join(lines) + b"\n", now_ms=int(after.timestamp() * 1000) + 1000)
    assert result.rejects == []


def test_realtime_rejects_bad_speed(tmp_path):
    with pytest.raises(ValueError, match="speed"):
        simulate(tmp_path, start=date(2025, 6, 23), days=1, realtime=True, speed=0)


@pytest.fixture
def invoke(layout):
    group = click.Group(commands={"simulate": simulate_command})

    def run(*args):
        return CliRunner().invoke(group, ["simulate", *args], catch_exceptions=False)

    return run


def test_cli_writes_the_landing_zone_and_prints_a_summary(invoke, layout):
    res = invoke("--start", "2025-06-20", "--days", "3", "--seed", "3")
    assert res.exit_code == 0, res.output
    assert [p.name for p in layout.streaming_dir.iterdir()] == ["paper_trading_2025-06-20.jsonl"]
    assert "1 trading, 2 weekend day(s) skipped" in res.output
    assert "trades:" in res.output and "win rate" in res.output and "signal=" in res.output


@pytest.mark.parametrize("args, message", [
    (["--days", "0"], "--days"),
    (["--start", "2025-13-01"], "2025-13-01"),
    (["--start", "../../etc"], "YYYY-MM-DD"),
    (["--symbols", "CL"], "--symbols"),
    (["--scenario", "moon"], "moon"),
    (["--start", (datetime.now(UTC).date() + timedelta(days=2)).isoformat()], "future"),
    (["--realtime", "--speed", "0"], "--speed"),
])
def test_cli_bad_values_exit_2_and_say_how_to_fix(invoke, args, message):
    res = invoke(*args)
    assert res.exit_code == 2
    assert message in res.output


def test_ctrl_c_stops_cleanly_with_complete_lines(tmp_path):
    from mia_pipeline.sources.paper_trading import PaperConfig
    from mia_pipeline.sources.paper_trading.realtime import run_realtime

    calls = []

    def sleep(_seconds):  # the first wait for a future event is interrupted
        calls.append(_seconds)
        raise KeyboardInterrupt

    summary = run_realtime(tmp_path, seed=7, days=1, symbols=("ES", "NQ"), config=PaperConfig(), speed=1.0,
                           sleep=sleep)
    assert summary.interrupted and calls
    data = b"".join(p.read_bytes() for p in summary.files)
    assert data.endswith(b"\n") and data.count(b"\n") == summary.events > 0  # the catch-up batch, whole lines


def test_two_realtime_runs_never_reuse_a_trade_or_signal_id(tmp_path):
    """Realtime ids are stamped with wall-clock time; two runs in the same second would reuse
    TRADE_<time>_001 without the per-run suffix (history stays replayable: no suffix there)."""
    from mia_pipeline.sources.paper_trading.realtime import run_unique

    first = run_unique({"kind": "trade", "trade_id": "TRADE_20250623_143015_001",
                        "execution": {"order_id": "ORD_20250623_0001"}}, 1_750_689_015_123)
    second = run_unique({"kind": "trade", "trade_id": "TRADE_20250623_143015_001",
                         "execution": {"order_id": "ORD_20250623_0001"}}, 1_750_689_015_124)
    assert first["trade_id"] != second["trade_id"] and first["trade_id"].startswith("TRADE_20250623_143015_001_R")
    assert first["execution"]["order_id"].endswith(first["trade_id"].rsplit("_", 1)[1])
    ids = []
    for _ in range(2):
        summary = simulate(tmp_path, start=date(2025, 6, 23), days=1, realtime=True, speed=6000, max_events=300)
        lines = b"".join(p.read_bytes() for p in summary.files).splitlines()
        ids.append({e.get("signal_id") or e.get("trade_id") for e in map(json.loads, lines)} - {None})
        for p in summary.files:
            p.unlink()
    assert ids[0] and ids[1] and not ids[0] & ids[1]
