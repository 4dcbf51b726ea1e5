"""Hostile IB answers on the wire, through the real chain: fake gateway → ib_async → the live recorder →
landing file → ingestion. Each class asserts the rows: every line the recorder wrote is either stored
exactly once or quarantined with the expected reason (the hostile value on the quarantined line), the
recorder keeps recording after it, and IB's "no value" markers are no rows at all (issue 25 (9, 13)).
"""

import asyncio
import json
import threading
import time

import pytest

from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.collection.quarantine import read_rejects
from mia_pipeline.layout import STORED_DATASETS
from mia_pipeline.sources.ibkr.recorder import LiveRecorder
from mia_pipeline.storage import PartitionStore

REQ = "{req}"


def tick_price(tick_type, price, size):
    return ("mkt", 1, 6, REQ, tick_type, price, size, 0)


def rt_volume(text):
    return ("mkt", 46, 6, REQ, 48, text)


def rt_bar(o, h, lo, c, v=10, w=-1, n=3, at=None):
    return ("rtb", 50, 3, REQ, at, o, h, lo, c, v, w, n)


def bid_ask(bid, ask, bid_size=3, ask_size=4):
    return ("tbt", 99, REQ, 3, None, bid, ask, bid_size, ask_size, 0)


# class -> (message, expected quarantine reason or None when harmless, text on the quarantined line)
CASES = {
    "quote_negative_bid": (tick_price(1, -5.0, 3), "invalid_price", '"bid":-5.0'),
    "quote_zero_ask_with_size": (tick_price(2, 0.0, 4), "invalid_price", '"ask":0.0'),
    "quote_infinite_bid": (tick_price(1, "inf", 3), "non_finite_number", '"bid":Infinity'),
    "quote_nan_bid_with_size": (tick_price(1, "nan", 3), None, None),  # NaN is ib_async's "no value"
    "quote_1e300_bid": (tick_price(1, 1e300, 3), "invalid_price", '"bid":1e+300'),
    "quote_1e300_ask": (tick_price(2, 1e300, 3), "invalid_price", '"ask":1e+300'),
    "quote_negative_bid_size": (tick_price(1, 1.0, -7), "invalid_quantity", '"bid_size":-7.0'),
    "quote_crossed": (tick_price(1, 1e6, 3), "crossed_quote", '"bid":1000000.0'),
    "quote_no_value_marker": (tick_price(1, -1, 0), None, None),  # IB's empty side
    "last_negative_price": (tick_price(4, -3.0, 1), "invalid_price", '"last":-3.0'),
    "rtvolume_negative_price": (rt_volume("-5;2;{ms};100;5.0;true"), "invalid_price", '"last":-5.0'),
    "rtvolume_negative_size": (rt_volume("5000.25;-2;{ms};100;5.0;true"), "invalid_quantity", '"last_size":-2.0'),
    "rtvolume_garbage": (rt_volume("abc;;x;;;"), None, None),  # undecodable: ib_async logs it, nothing to keep
    "bar_negative_volume": (rt_bar(1.0, 2.0, 0.5, 1.5, v=-500), "invalid_quantity", '"volume":-500.0'),
    "bar_nan_open": (rt_bar("nan", 2.0, 0.5, 1.5), "non_finite_number", '"open":NaN'),
    "bar_infinite_high": (rt_bar(1.0, "inf", 0.5, 1.5), "non_finite_number", '"high":Infinity'),
    "bar_high_below_low": (rt_bar(1.0, 0.5, 2.0, 1.5), "inconsistent_bar", '"high":0.5'),
    "bar_zero_close": (rt_bar(0.0, 0.0, 0.0, 0.0), "invalid_price", '"close":0.0'),
    "bar_far_future": (rt_bar(1.0, 2.0, 0.5, 1.5, at=4_102_444_800), "timestamp_in_future", '"2100-01-01'),
    "tbt_crossed": (bid_ask(2.0, 1.0), "crossed_quote", '"bid":2.0'),
    "tbt_negative_size": (bid_ask(1.0, 2.0, bid_size=-5), "invalid_quantity", '"bid_size":-5.0'),
    "tbt_negative_price": (bid_ask(-1.5, 2.0), "invalid_price", '"bid":-1.5'),
    "tbt_empty_side": (bid_ask(0.0, 2.0, bid_size=0), None, None),  # size 0: IB's empty side
    "unknown_request_id": (("mkt", 1, 6, 987654, 1, 100.0, 3, 0), None, None),
    "unknown_message_id": (("mkt", 777, 1, REQ, "x"), None, None),
}


def lines_of(layout) -> list[bytes]:
    return [ln for f in sorted(layout.streaming_dir.glob("ibkr_*.jsonl")) for ln in f.read_bytes().splitlines()]


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_ib_message_is_quarantined_with_its_reason_or_harmless(case, gateway, ibkr_cfg, layout):
    (kind, *fields), reason, marker = CASES[case]
    rec = LiveRecorder(ibkr_cfg(symbols=(), futures=("ES",), tick_by_tick=True), layout.streaming_dir,
                       flush_every_s=0.05, say=lambda _: None)
    seen = {}

    def script():
        deadline = time.monotonic() + 5
        while {s.kind for s in gateway.subscriptions()} != {"mkt", "rtb", "tbt"} and time.monotonic() < deadline:
            time.sleep(0.02)
        gateway.stream(2)
        time.sleep(0.2)
        ms = int(time.time() * 1000)
        wire = [str(f).replace("{ms}", str(ms)) if isinstance(f, str) and f != REQ else f for f in fields]
        wire = [gateway.sim_time if f is None else f for f in wire]
        seen["before"] = rec.stats.ticks + rec.stats.bars
        seen["sent"] = gateway.send_to(kind, *wire)
        time.sleep(0.2)
        seen["after_hostile"] = rec.stats.ticks + rec.stats.bars
        if kind == "mkt" and fields[3] in (1, 2):  # a quote side stays until IB sends that side again
            gateway.send_to("mkt", 1, 6, REQ, fields[3], 1.0 if fields[3] == 1 else 1e6, 3, 0)
            time.sleep(0.2)
        if kind == "tbt":  # ib_async keeps one quote per ticker for both feeds: back to the market's
            sub = next(s for s in gateway.subscriptions() if s.kind == "tbt")
            mid, tick = gateway.market.mid(sub.contract, gateway.sim_time), sub.contract.min_tick
            gateway.send_to("tbt", 99, REQ, 3, gateway.sim_time, round(mid - tick, 6), round(mid + tick, 6), 3, 4, 0)
            time.sleep(0.2)
        gateway.stream(2)
        time.sleep(0.2)
        seen["end"] = rec.stats.ticks + rec.stats.bars

    worker = threading.Thread(target=script, daemon=True)
    worker.start()
    asyncio.run(rec.run(2.0))
    worker.join(timeout=5)
    assert seen["sent"] == 1 and seen["end"] > seen["after_hostile"]  # the recorder keeps recording after it

    lines = lines_of(layout)
    store = PartitionStore(layout)
    ingest_once(layout, store, None)
    rejects = [r for d in layout.quarantine_days() for r in read_rejects(layout, d).to_pylist()]
    stored = sum(t.num_rows for d in layout.days_present() for ds in STORED_DATASETS if ds != "raw_events"
                 if (t := store.read(d, ds)) is not None)
    status = sum(json.loads(ln)["kind"] == "system_status" for ln in lines)
    assert stored + len(rejects) + status == len(lines)  # every line: stored once, quarantined, or a status
    if reason is None:
        assert rejects == []
    else:
        assert [r["reason"] for r in rejects] == [reason]
        assert marker in json.dumps(rejects[0], default=str).replace('\\"', '"')
    ingest_once(layout, PartitionStore(layout), None)  # again: idempotent
    again = sum(t.num_rows for d in layout.days_present() for ds in STORED_DATASETS if ds != "raw_events"
                if (t := store.read(d, ds)) is not None)
    assert again == stored
