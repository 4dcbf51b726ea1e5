"""The issue's story end to end: a real collector is SIGKILLed during an open market while events keep
arriving; exactly one collection_stopped CRITICAL (webhook received once), nothing more while it stays
down, exactly one resolution after a restart. The clock is injected (minutes pass without sleeping);
the collector, the landing zone and the webhook are real."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from alert_doubles import Clock, Webhook, settings_for

from mia_pipeline.quality.alerts import evaluate_alerts, read_alerts
from mia_pipeline_tests.guide_examples import make_event, to_line


def write_ticks(layout, first: int, n: int) -> None:
    with open(layout.streaming_dir / "feed.jsonl", "ab") as fh:
        for i in range(first, first + n):
            fh.write(to_line(make_event("market_tick", seq=i, event_id=f"tick-{i}",
                                        timestamp="2025-06-23T14:30:15.125Z")))


def cursor(layout) -> int:
    try:
        return sum(f.get("offset", 0) for f in json.loads(layout.ingest_state_file.read_text())["files"].values())
    except (FileNotFoundError, ValueError):
        return 0


def wait_for_cursor(layout, above: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (now := cursor(layout)) > above:
            return now
        time.sleep(0.1)
    raise AssertionError(f"the collector did not move the ingestion cursor past {above} in {timeout_s} s")


def start_collector(layout) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mia_pipeline.cli.main", "collect", "start", "--interval", "0.2"],
                            env={**os.environ, "MIA_DATA_DIR": str(layout.root)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_killed_collector_raises_one_collection_stopped_and_one_resolution(layout):
    clock = Clock()
    with Webhook("ok") as hook:
        settings = settings_for(layout, collection_stopped_minutes=5, webhook_url=hook.url)

        def evaluate():
            return evaluate_alerts(layout, settings, market_open=True, **clock.kw)

        collector = start_collector(layout)
        try:
            write_ticks(layout, 0, 20)
            wait_for_cursor(layout, 0)
            assert evaluate().fired == []  # baseline
            os.kill(collector.pid, signal.SIGKILL)
            collector.wait(timeout=30)
            write_ticks(layout, 20, 20)  # the trading system keeps writing; nobody ingests
            ev = evaluate()
            for _ in range(5):
                assert ev.fired == []
                ev = evaluate_alerts(layout, settings, market_open=True, **clock.advance(1).kw)
            (fired,) = ev.fired  # 5 minutes of open market without progress
            assert fired["name"] == "collection_stopped" and fired["level"] == "CRITICAL"
            assert "collector: dead" in fired["message"] and "waiting in the landing zone" in fired["message"]
            assert fired["context"]["pending_bytes"] > 0 and fired["context"]["pid"] == collector.pid
            for _ in range(5):  # still dead: nothing new
                ev = evaluate_alerts(layout, settings, market_open=True, **clock.advance(1).kw)
                assert ev.fired == [] and ev.resolved == [] and len(ev.open) == 1
            assert [b["alert"]["state"] for b in hook.received] == ["firing"]

            before = cursor(layout)
            collector = start_collector(layout)
            wait_for_cursor(layout, before)
            (resolved,) = evaluate_alerts(layout, settings, market_open=True, **clock.advance(1).kw).resolved
            assert resolved["incident"] == fired["incident"]
            assert evaluate_alerts(layout, settings, market_open=True, **clock.advance(1).kw).resolved == []
        finally:
            collector.send_signal(signal.SIGTERM)
            try:
                collector.wait(timeout=30)
            except subprocess.TimeoutExpired:
                collector.kill()
                collector.wait()
    assert [(b["alert"]["name"], b["alert"]["state"]) for b in hook.received] == [
        ("collection_stopped", "firing"), ("collection_stopped", "resolved")]
    lines = [a for a in read_alerts(layout) if a.get("name") == "collection_stopped"]
    assert [a["state"] for a in lines] == ["firing", "resolved"]
