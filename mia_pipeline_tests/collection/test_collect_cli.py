"""The `mia collect` / `mia import` / `mia rebuild` commands: what they ingest, print and exit with."""

import json

from click.testing import CliRunner
from conftest import append, tick

from mia_pipeline.cli.main import cli
from mia_pipeline.schemas import dataset_table_to_events
from mia_pipeline_tests.guide_examples import SIGNAL_EXAMPLE, TRADE_EXAMPLE, make_event


def run(layout, *args, code=0):
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args])
    assert res.exit_code == code, res.output
    return res.output


def test_import_guide_per_day_files(layout, store, tmp_path):
    day = tmp_path / "2025-06-23"
    day.mkdir()
    bare_trade = {k: v for k, v in TRADE_EXAMPLE.items() if k not in ("kind", "event_id", "source", "schema_version")}
    bare_signal = {k: v for k, v in SIGNAL_EXAMPLE.items() if k not in ("kind", "event_id", "source", "schema_version")}
    (day / "trades.json").write_text(json.dumps([bare_trade]))
    (day / "signals.json").write_text(json.dumps([bare_signal, "not an event"]))
    bar = {k: v for k, v in make_event("market_bar").items() if k not in ("kind", "event_id")}
    tick_ = {k: v for k, v in make_event("market_tick").items() if k not in ("kind", "event_id")}
    (day / "market_data.json").write_text(json.dumps([bar, tick_]))
    out = run(layout, "import", str(day))
    assert "trades 1" in out and "signals 1" in out and "market_bars 1" in out and "market_ticks 1" in out
    assert "not_an_object 1" in out
    [trade] = dataset_table_to_events("trades", store.read("2025-06-23", "trades"))
    assert trade["battle_navale"] == TRADE_EXAMPLE["battle_navale"] and trade["event_id"] == TRADE_EXAMPLE["trade_id"]
    again = run(layout, "import", str(day))  # idempotent
    assert "nothing new" in again


def test_import_bad_path_and_bad_json_exit_2(layout, tmp_path):
    out = run(layout, "import", str(tmp_path / "missing.jsonl"), code=2)
    assert "does not exist" in out
    bad = tmp_path / "trades.json"
    bad.write_text("[{oops")
    assert "does not parse" in run(layout, "import", str(bad), code=2)


def test_collect_start_once_status_and_rebuild(layout, store):
    append(layout, "a.jsonl", tick(1) + tick(2) + b"garbage\n" + b'{"partial')
    out = run(layout, "collect", "start", "--once")
    assert "market_ticks 2" in out and "malformed_json 1" in out
    status = json.loads(run(layout, "collect", "status", "--json"))
    assert status["events_per_day"]["2025-06-23"]["market_ticks"] == 2
    assert status["lag"]["pending_lines"] == 0 and status["lag"]["in_progress_bytes"] == {"a.jsonl": 9}
    assert status["last_event_time"].startswith("2025-06-23T14:30:15")
    assert sum(sum(c.values()) for c in status["quarantine"].values()) == 1
    text = run(layout, "collect", "status")
    assert "quarantine    : 1 line(s)" in text and "2025-06-23" in text
    assert "rebuilt 2025-06-23: market_ticks 2" in run(layout, "rebuild", "--date", "2025-06-23")
    assert "invalid date" in run(layout, "rebuild", "--date", "2025-06-31", code=2)
    assert "no raw events" in run(layout, "rebuild", "--date", "2024-01-02", code=2)


def test_collector_loop_stops_and_reports(layout, store):
    import threading

    from mia_pipeline.collection.collector import collector_state, run_collector

    append(layout, "a.jsonl", tick(1))
    stop = threading.Event()
    seen = []

    def on_report(r):
        seen.append(r)
        append(layout, "a.jsonl", tick(len(seen) + 1))
        if len(seen) == 3:
            stop.set()

    passes = run_collector(layout, store, interval=0.01, stop=stop, on_report=on_report)
    assert passes == 3
    assert store.read("2025-06-23", "market_ticks").num_rows == 3
    assert collector_state(layout)["state"] == "stopped"
    assert "no collector running" in run(layout, "collect", "stop")
