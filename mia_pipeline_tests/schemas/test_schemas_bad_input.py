"""Every kind of bad line gets its own reason code; good lines around it are still typed."""

import copy
import json
import random

import pytest

from mia_pipeline.schemas import EVENT_KINDS, REASONS
from mia_pipeline_tests.guide_examples import SIGNAL_EXAMPLE, TRADE_EXAMPLE, make_event, to_line

SYMBOLS = frozenset({"ES", "NQ", "EURUSD", "GBPUSD", "USDJPY"})


def _signal(**changes) -> bytes:
    event = copy.deepcopy(SIGNAL_EXAMPLE)
    for path, value in changes.items():
        *parents, last = path.split("__")
        d = event
        for p in parents:
            d = d[p]
        d[last] = value
    return to_line(event)


def _trade_ctx(**ctx) -> bytes:
    event = copy.deepcopy(TRADE_EXAMPLE)
    event["market_context"].update(ctx)
    return to_line(event)


# reason -> a bad line (each must be rejected with exactly that reason)
BAD_LINES: dict[str, list[bytes]] = {
    "malformed_json": [b'{"kind": "market_tick", "symbol": "ES"', b"not json at all",
                       to_line(make_event("market_tick"))[:-1] + b" {}\n",  # two values on one line
                       b'{"kind": "market_tick", "symbol": "\\ud83d"}'],
    "not_an_object": [b"[1, 2, 3]", b'"market_tick"', b"42"],
    "duplicate_key": [b'{"kind": "market_tick", "kind": "market_tick"}'],
    "unknown_kind": [to_line(make_event("market_tick", kind="order_book")),
                     to_line(make_event("market_tick", kind="market_ticks"))],
    "missing_field": [to_line(make_event("market_tick", seq=None)), to_line(make_event("trade", event_id=None)),
                      to_line(make_event("signal", timestamp=None)), to_line(make_event("market_tick", kind=None)),
                      to_line(make_event("market_bar", source="")),
                      to_line(make_event("market_tick", bid=None, ask=None, last=None))],
    "wrong_type": [to_line(make_event("market_tick", bid="6022.5")), to_line(make_event("trade", quantity=10000.0)),
                   to_line(make_event("market_tick", seq=True)), _signal(decision__executed="yes"),
                   _signal(features_snapshot__raw_features=[1, "2"]), to_line(make_event("market_tick", kind=7)),
                   to_line(make_event("market_tick", timestamp=1750689015123)),
                   to_line(make_event("trade", quantity=2**64))],
    "unsupported_schema_version": [to_line(make_event("market_tick", schema_version=0))],
    "bad_timestamp": [to_line(make_event("market_tick", timestamp="yesterday")),
                      to_line(make_event("market_tick", timestamp="2025-02-30T10:00:00.000Z")),
                      _signal(features_snapshot__calculation_timestamp="soon")],
    "timestamp_no_zone": [to_line(make_event("market_tick", timestamp="2025-06-23T14:30:15.125"))],
    "timestamp_in_future": [to_line(make_event("market_tick", timestamp="2025-06-24T00:05:00.001Z"))],
    "non_finite_number": [b'{"kind":"market_tick","schema_version":1,"event_id":"n1","source":"ibkr",'
                          b'"timestamp":"2025-06-23T14:30:15.125Z","symbol":"ES","seq":1,"bid":NaN,"ask":6022.75}',
                          to_line(make_event("market_tick", last_size=None))[:-2] + b',"last_size":Infinity}',
                          to_line(make_event("market_tick", ask=None))[:-2] + b',"ask":1e400}',
                          to_line(make_event("market_tick", bid=None))[:-2] + b',"bid":-Infinity}',
                          _signal(features_snapshot__normalized_features=[0.0] * 7 + [float("nan")])],
    "invalid_price": [to_line(make_event("market_tick", last=-1.0)), to_line(make_event("trade", price=0.0)),
                      to_line(make_event("market_bar", low=-5.0)),
                      # Issue 25: a finite but absurd price (it was stored as a complete day)
                      to_line(make_event("market_tick", last=1e300)), to_line(make_event("trade", price=2e9))],
    "invalid_quantity": [to_line(make_event("market_tick", bid_size=-3.0)), to_line(make_event("trade", quantity=0)),
                         to_line(make_event("market_bar", volume=-1.0))],
    "negative_value": [to_line(make_event("trade_exit", commission=-0.5)), to_line(make_event("market_tick", seq=-1))],
    "out_of_range": [_signal(decision__confidence=1.5),
                     # event times outside 1970-2100 (never a day folder 0001-01-01), any zone, year 0
                     to_line(make_event("market_tick", timestamp="0001-01-01T00:00:00+01:00")),
                     to_line(make_event("market_tick", timestamp="9999-12-31T23:59:59-01:00")),
                     to_line(make_event("market_tick", timestamp="0000-01-01T00:00:00.000Z")),
                     to_line(make_event("market_tick", timestamp="1969-12-31T23:59:59.999Z")),
                     to_line(make_event("trade_exit", entry_timestamp="0001-01-01T00:00:00Z"))],
    "nesting_too_deep": [to_line(make_event("market_tick", note=json.loads("[" * 65 + "]" * 65))),
                         to_line(make_event("market_tick", note=json.loads('{"a":' * 200 + "1" + "}" * 200)))],
    "invalid_enum": [to_line(make_event("trade", action="HOLD")), to_line(make_event("market_bar", timeframe="7min")),
                     to_line(make_event("trade_exit", reason="bored")), to_line(make_event("system_status", status="meh"))],
    "crossed_quote": [to_line(make_event("market_tick", bid=6023.0, ask=6022.0)), _trade_ctx(bid=1.09, ask=1.08)],
    "inconsistent_bar": [to_line(make_event("market_bar", high=6000.0))],
    "bad_feature_vector": [_signal(features_snapshot__raw_features=[0.1] * 7)],
    "unknown_symbol": [to_line(make_event("market_tick", symbol="ZZZ")), to_line(make_event("trade", symbol="BTC"))],
    "oversize_line": [to_line(make_event("market_tick", note="x" * 5000))],
    "non_utf8": [b'{"kind":"market_tick","symbol":"\xff\xfe"}', to_line(make_event("market_tick"))[:30] + b"\xc3\x28}"],
}
CASES = [(reason, line) for reason, lines in BAD_LINES.items() for line in lines]


def _line(raw: bytes) -> bytes:
    return raw if raw.endswith(b"\n") else raw + b"\n"


def test_every_reason_code_is_documented_and_exercised():
    # source_disabled is not a property of the line but of the settings: collection/test_ingest.py exercises it;
    # the sierra_* and out_of_order codes are of binary Sierra records: sierra/test_sierra_bad_records.py
    sierra = {"out_of_order", "sierra_record_kind", "sierra_bad_price", "sierra_bad_bar", "sierra_bad_command"}
    assert set(BAD_LINES) == set(REASONS) - {"source_disabled"} - sierra


@pytest.mark.parametrize("reason, raw", CASES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(CASES)])
def test_bad_line_gets_its_reason_and_neighbours_survive(reason, raw, parse):
    good = to_line(make_event("market_tick", event_id="good-1"))
    data = good + _line(raw) + to_line(make_event("market_tick", event_id="good-2", seq=2))
    result = parse(data, known_symbols=SYMBOLS, max_line_bytes=4096)
    assert [(r.line, r.reason) for r in result.rejects] == [(1, reason)], result.rejects
    assert result.rejects[0].raw == _line(raw)[:-1]
    assert result.rejects[0].detail
    assert result.tables["market_ticks"].column("event_id").to_pylist() == ["good-1", "good-2"]
    assert result.tables["market_ticks"].column("_line").to_pylist() == [0, 2]


def test_ten_thousand_lines_with_twenty_bad_ones(parse):
    rnd = random.Random(42)
    kinds = ["market_tick"] * 6 + ["market_bar"] * 2 + ["signal", "trade"]
    lines = [to_line(make_event(rnd.choice(kinds), event_id=f"e{i}")) for i in range(10_000)]
    bad_cases = rnd.sample(CASES, 20)
    positions = sorted(rnd.sample(range(10_000), 20))
    expected = []
    for pos, (reason, raw) in zip(positions, bad_cases, strict=True):
        lines[pos] = _line(raw)
        expected.append((pos, reason))
    result = parse(b"".join(lines), known_symbols=SYMBOLS, max_line_bytes=4096)
    assert [(r.line, r.reason) for r in result.rejects] == expected
    assert sum(t.num_rows for t in result.tables.values()) == 9_980
    typed_lines = sorted(x for t in result.tables.values() for x in t.column("_line").to_pylist())
    assert typed_lines == sorted(set(range(10_000)) - set(positions))
    for name, table in result.tables.items():  # rows come back in line order
        ln = table.column("_line").to_pylist()
        assert ln == sorted(ln), name


def test_blank_lines_are_ignored_and_indices_count_them(parse):
    tick = to_line(make_event("market_tick"))
    data = b"\n" + tick + b"   \n\r\n\t\n" + to_line(make_event("trade")) + b"\n"
    result = parse(data)
    assert result.rejects == []
    assert result.n_lines == 7
    assert result.tables["market_ticks"].column("_line").to_pylist() == [1]
    assert result.tables["trades"].column("_line").to_pylist() == [5]
    off = result.line_offsets
    assert len(off) == result.n_lines + 1 and off[-1] == len(data)
    assert data[off[5]:off[6]] == to_line(make_event("trade"))


def test_crlf_line_endings_and_leading_whitespace_are_fine(parse):
    tick = to_line(make_event("market_tick"))
    result = parse(tick[:-1] + b"\r\n" + b"  " + tick)
    assert result.rejects == []
    assert result.tables["market_ticks"].num_rows == 2


def test_kind_not_first_and_pretty_spacing_still_parse(parse):
    event = make_event("market_bar")
    reordered = {k: event[k] for k in reversed(list(event))}
    data = json.dumps(reordered).encode() + b"\n" + json.dumps(event).encode() + b"\n"
    result = parse(data)
    assert result.rejects == []
    assert result.tables["market_bars"].num_rows == 2


def test_future_tolerance_is_a_parameter(parse):
    line = to_line(make_event("market_tick", timestamp="2025-06-24T00:05:00.000Z"))
    assert parse(line).rejects == []  # exactly now + 5 min is accepted
    assert [r.reason for r in parse(line, max_future_ms=0).rejects] == ["timestamp_in_future"]


def test_symbols_are_not_checked_without_a_list(parse):
    assert parse(to_line(make_event("market_tick", symbol="ZZZ"))).rejects == []


def test_last_line_without_newline_is_still_a_line(parse):
    result = parse(to_line(make_event("market_tick")) + b'{"kind":')
    assert result.n_lines == 2
    assert [(r.line, r.reason) for r in result.rejects] == [(1, "malformed_json")]


def test_empty_buffer(parse):
    result = parse(b"")
    assert result.n_lines == 0 and result.rejects == []
    assert set(result.tables) == {"trades", "trade_exits", "signals", "market_bars", "market_ticks",
                                  "performance", "system_status", "market_depth"}
    assert all(t.num_rows == 0 for t in result.tables.values())


def test_random_garbage_never_raises(parse):
    rnd = random.Random(3)
    good = [to_line(make_event(k, event_id=f"g{i}")) for i, k in enumerate(EVENT_KINDS)]
    pieces = []
    for _ in range(300):
        line = bytearray(rnd.choice(good))
        for _op in range(rnd.randint(1, 4)):  # flip, delete or duplicate a few bytes
            pos = rnd.randrange(len(line) - 1)
            op = rnd.random()
            if op < 0.4:
                line[pos] = rnd.randrange(256)
            elif op < 0.7:
                del line[pos]
            else:
                line.insert(pos, line[pos])
        pieces.append(bytes(line).replace(b"\n", b" ").rstrip(b" ") + b"\n")
    data = b"".join(pieces)
    result = parse(data, known_symbols=SYMBOLS)
    rows = sum(t.num_rows for t in result.tables.values())
    blank = sum(1 for p in pieces if not p.strip())
    assert rows + len(result.rejects) + blank == 300
    assert {r.reason for r in result.rejects} <= set(REASONS)


def test_dense_and_clustered_bad_lines_are_all_isolated(parse):
    """Exercises every narrowing path: row hints, runs sent whole to json.loads, and splits for
    errors without a row (1.0 for an int64 field)."""
    rnd = random.Random(5)
    lines, expected = [], []
    for i in range(6000):
        if 1000 <= i < 1100 or rnd.random() < 0.05:
            bad = rnd.choice([(b'{"kind":"market_tick","symbol":', "malformed_json"),
                              (to_line(make_event("market_tick", seq=1.0))[:-1], "wrong_type"),
                              (to_line(make_event("market_tick", bid="x"))[:-1], "wrong_type")])
            lines.append(bad[0] + b"\n")
            expected.append((i, bad[1]))
        else:
            lines.append(to_line(make_event("market_tick", event_id=f"t{i}", seq=i)))
    result = parse(b"".join(lines))
    assert [(r.line, r.reason) for r in result.rejects] == expected
    assert result.tables["market_ticks"].num_rows == 6000 - len(expected)
