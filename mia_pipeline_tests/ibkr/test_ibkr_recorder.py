"""The live recorder against the fake gateway: data keeps flowing through a 1100/1101, a dropped socket
and a gateway restart (every subscription re-issued), gaps are written as events, a held client id
is the only reason to change id, and nothing accumulates in memory."""

import asyncio
import json
import threading
import time

import pytest

from mia_pipeline.schemas import parse_lines
from mia_pipeline.sources.ibkr.recorder import LiveRecorder


def events(layout):
    data = b"".join(f.read_bytes() for f in sorted(layout.streaming_dir.glob("ibkr_*.jsonl")))
    return [json.loads(line) for line in data.splitlines()], data


def record(gateway, cfg, layout, seconds, script):
    """Run the recorder for ``seconds`` while ``script(gateway, marks)`` misbehaves in a thread;
    ``marks`` collects (label, number of lines on disk at that moment)."""
    marks = []

    def lines_now() -> int:
        return sum(f.read_bytes().count(b"\n") for f in layout.streaming_dir.glob("ibkr_*.jsonl"))

    def wait_growth(label, timeout=5.0, reconnects: int | None = None):
        """Wait until lines grow (and, with ``reconnects``, until the recorder has reconnected that many
        times: lines flushed from before an outage must not pass for data after it)."""
        deadline = time.monotonic() + timeout
        while reconnects is not None and rec.stats.reconnects < reconnects and time.monotonic() < deadline:
            time.sleep(0.05)
        start = lines_now()
        while lines_now() <= start + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        marks.append((label, lines_now() > start + 5))

    rec = LiveRecorder(cfg, layout.streaming_dir, flush_every_s=0.1, say=lambda _: None, backoff_s=(0.1, 0.2, 0.5))
    worker = threading.Thread(target=script, args=(gateway, wait_growth), daemon=True)
    gateway.stream_every(0.02)
    worker.start()
    stats = asyncio.run(rec.run(seconds))
    worker.join(timeout=10)
    return rec, stats, marks


@pytest.mark.slow  # a few seconds of streaming through three outages
def test_data_flows_through_1101_a_drop_and_a_restart(gateway, ibkr_cfg, layout):
    def script(gw, wait_growth):
        wait_growth("start")
        gw.status(1100)
        time.sleep(0.2)
        gw.status(1101)
        wait_growth("after 1101")
        gw.drop_clients()
        wait_growth("after drop", reconnects=1)
        gw.restart(down_s=0.4)
        wait_growth("after restart", reconnects=2)

    rec, stats, marks = record(gateway, ibkr_cfg(tick_by_tick=True), layout, 8, script)
    assert marks == [("start", True), ("after 1101", True), ("after drop", True), ("after restart", True)]
    assert stats.reconnects == 2 and stats.resubscriptions == 3 and stats.gaps == 3
    evs, data = events(layout)
    gaps = [e for e in evs if e["kind"] == "performance"]
    assert [g["tags"]["session"] for g in gaps] == ["1100->1101", "socket->reconnected", "socket->reconnected"]
    assert all(g["metric"] == "ibkr_data_gap_s" and g["value"] >= 0 and g["resubscribed"] for g in gaps)
    res = parse_lines(data, now_ms=4_000_000_000_000)
    assert res.rejects == []  # everything it wrote lands in the datasets
    symbols = set(res.tables["market_ticks"]["symbol"].to_pylist())
    assert symbols == {"EURUSD", "GBPUSD", "USDJPY", "ES", "NQ"}
    assert rec.client_id == ibkr_cfg().client_id  # the id was free again: not changed
    assert all(len(handle) == 0 for kind, _, handle in rec._subs if kind == "rtb")  # bars are not kept in memory


def test_1102_closes_the_gap_without_resubscribing(gateway, ibkr_cfg, layout):
    def script(gw, wait_growth):
        wait_growth("start")
        gw.status(1100)
        time.sleep(0.1)
        gw.status(1102)
        wait_growth("after 1102")

    _, stats, marks = record(gateway, ibkr_cfg(futures=()), layout, 2, script)
    assert marks == [("start", True), ("after 1102", True)]
    assert stats.resubscriptions == 0 and stats.gaps == 1
    evs, _ = events(layout)
    [gap] = [e for e in evs if e["kind"] == "performance"]
    assert gap["tags"]["session"] == "1100->1102" and gap["resubscribed"] is False
    status = [e["status"] for e in evs if e["kind"] == "system_status"]
    assert status[0] == "running" and "degraded" in status and status[-1] == "stopped"


def test_a_held_client_id_moves_to_the_next_one_and_unknown_contracts_are_reported(gateway, ibkr_cfg, layout):
    gateway.held_client_ids.add(ibkr_cfg().client_id)
    said = []
    rec = LiveRecorder(ibkr_cfg(symbols=("EURUSD",), futures=("ZZ",)), layout.streaming_dir, flush_every_s=0.1,
                       say=said.append)
    gateway.stream_every(0.02)
    stats = asyncio.run(rec.run(0.5))
    assert rec.client_id == ibkr_cfg().client_id + 1
    assert stats.problems == ["ZZ: IB error 200: No security definition has been found for the request"]
    assert stats.ticks > 0 and list(rec.contracts) == ["EURUSD"]


def test_ib_anomalies_are_kept_as_sent_and_quarantined_with_their_reason():
    """Issue 25 (13): a negative volume was stored as 0.0 and a crossed quote as a one-sided one; now what
    IB sent reaches validation, which refuses it with its reason (quarantine keeps the line)."""
    from mia_pipeline.sources.ibkr.convert import bar_event, tick_event

    crossed = tick_event("ES", 1_750_680_000_000, 0, bid=6001.0, ask=6000.5)
    assert (crossed["bid"], crossed["ask"]) == (6001.0, 6000.5)
    negative = bar_event("ES", 1_750_680_000_000, 6000.0, 6001.0, 5999.0, 6000.5, -500, 6000.2, 10)
    no_volume = bar_event("ES", 1_750_680_005_000, 6000.0, 6001.0, 5999.0, 6000.5, -1, 6000.2, 10)
    assert negative["volume"] == -500.0 and no_volume["volume"] == 0.0  # -1 is IB's "no volume"
    data = b"".join(json.dumps(e).encode() + b"\n" for e in (crossed, negative, no_volume))
    result = parse_lines(data, now_ms=1_750_690_000_000, known_symbols=None)
    assert sorted(r.reason for r in result.rejects) == ["crossed_quote", "invalid_quantity"]
    assert result.tables["market_bars"].num_rows == 1
