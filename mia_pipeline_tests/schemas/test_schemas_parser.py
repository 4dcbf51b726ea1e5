"""``parse_lines`` survives every input and reads lines alike wherever they are.

Protects: the crash classes of issue 10 (pyarrow segfaults screened out, run in a subprocess so a
regression fails the test instead of killing pytest; kind typos; deep nesting; timestamps outside
1970-2100); a contract that grows by fields of any Arrow type without a parser change; a line's
outcome independent of its neighbours, of block cutting and of the buffer type.
"""

from __future__ import annotations

import decimal
import json
import math
import mmap
import random
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest
from _mutations import NOW_MS, assert_same_result, corpus_line, outcomes, tick

from mia_pipeline.schemas import contract, dataset_table_to_events, parser
from mia_pipeline.schemas import lines as L
from mia_pipeline.schemas.contract import EVENT_KINDS
from mia_pipeline.schemas.parser import parse_lines
from mia_pipeline.schemas.slowpath import conform_event, loads_line
from mia_pipeline_tests.guide_examples import make_event, to_line

# ------------------------------------------------------------------ crash classes (issue 10)


def _deep_in_battle_navale(depth: int) -> bytes:
    line = to_line(make_event("trade"))[:-1].decode()
    nested = '{"a":' * depth + "1" + "}" * depth
    return line.replace('"battle_navale":{', '"battle_navale":{"x":' + nested + ",", 1).encode()


def _isolated(*batches: list[bytes]) -> list[list[tuple[int, str]]]:
    """``parse_lines`` on each batch in one child process: per batch, (line, reason) of the rejects;
    a crash fails the test naming the exit code (139 = the segfault is back) instead of killing pytest."""
    code = textwrap.dedent(f"""
        import json, sys
        from mia_pipeline.schemas import parse_lines
        for text in sys.stdin.read().split():
            r = parse_lines(bytes.fromhex(text), now_ms={NOW_MS})
            rows = sorted(x for t in r.tables.values() for x in t.column("_line").to_pylist())
            print(json.dumps({{"rejects": [[x.line, x.reason] for x in r.rejects], "rows": rows}}))
    """)
    data = " ".join(b"".join(line + b"\n" for line in lines).hex() for lines in batches)
    proc = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"parse_lines died with exit {proc.returncode}: {proc.stderr[-500:]}"
    results = []
    for lines, out in zip(batches, map(json.loads, proc.stdout.splitlines()), strict=True):
        assert sorted(out["rows"] + [line for line, _ in out["rejects"]]) == list(range(len(lines)))
        results.append([tuple(x) for x in out["rejects"]])
    return results


def test_a_value_before_the_object_does_not_crash_the_reader():
    """``null{"kind":"trade"}`` (any real kind) segfaulted pyarrow 26.0.1's JSON reader (exit 139)."""
    batches, expected = [], []
    for kind in EVENT_KINDS:
        good = to_line(make_event(kind))[:-1]
        bad = [f'null{{"kind":"{kind}"}}'.encode(), b"null " + good, b"1" + good, b"[]" + good]
        batches += [bad[:1], bad, [good] + bad + [good]]
        expected += [[(0, "malformed_json")], [(i, "malformed_json") for i in range(4)],
                     [(i, "malformed_json") for i in range(1, 5)]]
    assert _isolated(*batches) == expected


def test_an_object_nested_ten_thousand_deep_does_not_crash_the_reader():
    good = to_line(make_event("trade"))[:-1]
    assert _isolated([_deep_in_battle_navale(10_000)], [good, _deep_in_battle_navale(10_000), good]) == [
        [(0, "nesting_too_deep")], [(1, "nesting_too_deep")]]


@pytest.mark.parametrize("typo, real", [("system_statu", "system_status"), ("market_tck", "market_tick"),
                                        ("performace", "performance"), ("trade_exitt", "trade_exit")])
def test_a_kind_typo_sharing_the_first_bytes_of_a_real_kind_is_unknown_kind(typo, real):
    """Alone in the batch for its sniffed kind, it used to raise IndexError (Chunk index out of range)."""
    line = to_line(make_event(real, kind=typo))
    other = to_line(make_event("trade" if real != "trade" else "market_tick"))
    for data in (line, other + line, line + other):
        result = parse_lines(data, now_ms=NOW_MS)
        assert [r.reason for r in result.rejects] == ["unknown_kind"]
        assert sum(t.num_rows for t in result.tables.values()) == data.count(b"\n") - 1


@pytest.mark.parametrize("depth", [65, 999, 1_001, 1_100, 3_000])
def test_deep_nesting_in_the_only_line_of_its_kind_is_rejected(depth):
    result = parse_lines(_deep_in_battle_navale(depth) + b"\n" + to_line(make_event("market_tick")), now_ms=NOW_MS)
    assert [(r.line, r.reason) for r in result.rejects] == [(0, "nesting_too_deep")]
    assert result.tables["market_ticks"].num_rows == 1


def test_nesting_up_to_the_limit_is_read_and_kept_in_extra():
    note = json.loads("[" * (L.MAX_DEPTH - 1) + "]" * (L.MAX_DEPTH - 1))  # + the event object = MAX_DEPTH
    result = parse_lines(to_line(make_event("market_tick", note=note)), now_ms=NOW_MS)
    assert not result.rejects and json.loads(result.tables["market_ticks"]["extra"][0].as_py())["note"] == note


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                                "0000-01-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z", "2101-01-01T00:00:00Z"])
def test_timestamps_outside_1970_2100_are_out_of_range(ts):
    """They raised OverflowError or made a day folder 0001-01-01; now quarantined, alone or not."""
    line = to_line(make_event("trade", timestamp=ts))
    ok = to_line(make_event("trade", event_id="ok"))
    bad_cast = to_line(make_event("trade", timestamp="2025-02-30T00:00:00.000Z"))  # all rows to Python
    for data, at in ((line, 0), (ok + line, 1), (bad_cast + line, 1)):
        result = parse_lines(data, now_ms=NOW_MS)
        assert (at, "out_of_range") in [(r.line, r.reason) for r in result.rejects], ts
    edge = parse_lines(to_line(make_event("trade", timestamp="2100-12-31T23:59:59.999Z")), now_ms=2**62)
    assert edge.tables["trades"].num_rows == 1


# --------------------------------------------------------------- the contract can grow

NEW_FIELDS = [("count32", pa.int32()), ("venue_ts", pa.timestamp("ms", tz="UTC")),
              ("fee", pa.decimal128(12, 4)), ("levels", pa.list_(pa.int64())),
              ("book", pa.struct([("depth", pa.int32()), ("at", pa.timestamp("ms", tz="UTC")),
                                  ("sizes", pa.list_(pa.int64())), ("name", pa.string())]))]


@pytest.fixture
def grown_contract(monkeypatch):
    """market_tick with five new fields of new Arrow types, added the way a schema version adds them
    (payload appended; every derived schema recomputed from ``PAYLOADS``), no parser change."""
    kind, dataset = "market_tick", "market_ticks"
    monkeypatch.setitem(contract.PAYLOADS, kind, pa.struct(list(contract.PAYLOADS[kind]) + NEW_FIELDS))
    for schemas in (contract.DATASET_SCHEMAS, contract.TABLE_SCHEMAS):
        monkeypatch.setitem(schemas, dataset, contract._stored_schema(kind))
    monkeypatch.setitem(contract.KIND_PARSE_SCHEMAS, kind, contract.kind_parse_schema(kind))


NEW_VALUES = {"count32": -7, "venue_ts": "2025-06-23T14:30:15.120Z", "fee": 1.25, "levels": [1, 2, 2**40],
              "book": {"depth": 3, "at": "2025-06-23T14:30:15.000Z", "sizes": [5, 0], "name": "L2"}}


def test_fields_of_new_arrow_types_round_trip_without_a_parser_change(grown_contract):
    events = [make_event("market_tick", event_id="a", **NEW_VALUES),
              make_event("market_tick", event_id="b", seq=2, fee="0.5", book=None, levels=[]),
              make_event("market_tick", event_id="c", seq=3)]
    bad = [make_event("market_tick", event_id="x", count32=2**31), make_event("market_tick", event_id="y", fee=1e-5),
           make_event("market_tick", event_id="z", venue_ts="0001-01-01T00:00:00Z"),
           make_event("market_tick", event_id="w", levels=[1.5])]
    lines = [to_line(e) for e in events + bad]
    for data in (b"".join(lines), b"".join(lines[::-1])):  # fast path, and with bad lines around
        result = parse_lines(data, now_ms=NOW_MS)
        table = result.tables["market_ticks"]
        assert table.schema.field("fee").type == pa.decimal128(12, 4)
        assert table.schema.field("book").type.field("at").type == pa.timestamp("ms", tz="UTC")
        assert sorted(r.reason for r in result.rejects) == ["out_of_range", "wrong_type", "wrong_type", "wrong_type"]
        got = {e["event_id"]: e for e in dataset_table_to_events("market_ticks", table)}
        a = got["a"]
        assert a["count32"] == -7 and a["levels"] == [1, 2, 2**40] and a["fee"] == decimal.Decimal("1.25")
        assert a["venue_ts"] == "2025-06-23T14:30:15.120Z" and a["book"]["at"] == "2025-06-23T14:30:15.000Z"
        assert a["book"]["sizes"] == [5, 0] and a["book"]["depth"] == 3 and a["book"]["name"] == "L2"
        assert got["b"]["fee"] == decimal.Decimal("0.5") and got["b"]["levels"] == [] and "book" not in got["b"]
        assert "fee" not in got["c"] and "count32" not in got["c"]
        assert len(set(table["content_hash"].to_pylist())) == 3


# ------------------------------------------------------------ neighbours, blocks, buffers


@pytest.mark.parametrize("field, token", [
    ("bid_size", b"-0.0"), ("bid_size", b"1e400"), ("bid_size", b"NaN"), ("bid_size", b"18446744073709551616"),
    pytest.param("bid_size", b"1" + b"0" * 200, id="bid_size-1e200-as-int"), ("seq", b"-0"), ("seq", b"1.0"),
    ("seq", b"9223372036854775808"), ("symbol", rb'"\ud83d"'), ("symbol", rb'"\u00e9\ud83d\ude00"'),
    pytest.param("bid_size", b"-0", id="bid_size--0"), ("bid_size", b"-1" + b"0" * 400),
    pytest.param("bid_size", b"1" + b"0" * 400, id="bid_size-1e400-as-int"),
], ids=lambda v: v if isinstance(v, str) else v.decode()[:24])
def test_a_line_reads_the_same_whatever_its_neighbours(field, token):
    """Arrow's reader alone, or json.loads when a bad line of the same kind nearby makes the whole
    short run go to the slow path: the same outcome."""
    line = tick(**{field: token}) + b"\n"
    alone = outcomes(parse_lines(line, now_ms=NOW_MS))[0]
    with_bad = outcomes(parse_lines(line + b'{"kind":"market_tick","symbol":\n', now_ms=NOW_MS))
    assert with_bad[1][:2] == ("reject", "malformed_json")
    assert with_bad[0] == alone


def test_json_loads_path_reads_numbers_as_arrow_does():
    """-0 keeps its sign in a float field (0 in an int field); an integer beyond float64 is infinite."""
    row = conform_event(loads_line(tick(bid_size=b"-0", seq=b"-0")))[1]
    assert math.copysign(1.0, row["bid_size"]) == -1.0 and row["seq"] == 0 and type(row["seq"]) is int
    assert conform_event(loads_line(tick(bid_size=b"-1" + b"0" * 400)))[1]["bid_size"] == -math.inf
    reject = parse_lines(tick(ask_size=b"1" + b"0" * 400) + b"\n", now_ms=NOW_MS).rejects[0]
    assert (reject.reason, reject.detail) == ("non_finite_number", "ask_size")
    messages = [(r.reason, r.detail) for r in parse_lines(b'-0\n{"kind":-0}\n', now_ms=NOW_MS).rejects]
    assert messages == [("not_an_object", "got a JSON int"), ("wrong_type", "kind: expected a string, got int")]


def _mixed_buffer(final_newline: bool) -> bytes:
    rng = random.Random(3)
    lines = [corpus_line(rng, i) for i in range(60)]
    lines[5:5] = [b"", b"   ", b"\r", b"\t \r"]
    lines[20] = b'{"kind":"market_tick","symbol":'
    lines[21] = b"not json"
    lines[30:30] = [b"", b""]
    lines[40] = b'{"kind":"market_tick","symbol":"\xff"}'  # not UTF-8
    lines[41] = to_line(make_event("trade", note="kept in extra"))[:-1] + b"\r"  # CRLF
    lines.insert(0, b"")
    data = b"\n".join(lines + [to_line(make_event("market_tick", event_id="last"))[:-1]])
    return data + b"\n" if final_newline else data


@pytest.mark.parametrize("final_newline", [True, False])
def test_blocks_give_the_same_result_as_one_block(monkeypatch, final_newline):
    data = _mixed_buffer(final_newline)
    one = parse_lines(data, now_ms=NOW_MS, threads=1)
    assert one.rejects and one.n_blank >= 7
    assert one.tables["market_ticks"].column("event_id").to_pylist()[-1] == "last"
    monkeypatch.setattr(parser, "PARALLEL_BYTES", 256)
    for threads in (2, 3, 4, 7, 16):
        assert len(parser._cut_points(data, threads)) == threads + 1  # really cut in blocks
        assert_same_result(parse_lines(data, now_ms=NOW_MS, threads=threads), one, data)


def test_blocks_that_start_or_end_on_blank_lines(monkeypatch):
    tick_line = to_line(make_event("market_tick"))
    data = b"\n" * 5 + tick_line + b"\n" * 40 + b"{bad\n" + b" \n" * 10 + tick_line + b"\n\n"
    one = parse_lines(data, now_ms=NOW_MS, threads=1)
    monkeypatch.setattr(parser, "PARALLEL_BYTES", 1)
    for threads in range(2, 12):
        assert_same_result(parse_lines(data, now_ms=NOW_MS, threads=threads), one, data)


@pytest.mark.parametrize("threads, parallel_bytes", [(1, None), (2, None), (3, 512)])
def test_bytes_bytearray_and_mmap_parse_alike(monkeypatch, threads, parallel_bytes):
    if parallel_bytes:
        monkeypatch.setattr(parser, "PARALLEL_BYTES", parallel_bytes)
    data = _mixed_buffer(final_newline=False)
    expected = parse_lines(data, now_ms=NOW_MS, threads=threads)
    assert_same_result(parse_lines(bytearray(data), now_ms=NOW_MS, threads=threads), expected, data)
    mm = mmap.mmap(-1, len(data))
    mm.write(data)
    mm.seek(0)
    got = parse_lines(mm, now_ms=NOW_MS, threads=threads)
    assert_same_result(got, expected, data)
    assert all(type(r.raw) is bytes for r in got.rejects)
    del got
    mm.close()


def test_line_offsets_refuses_a_window_outside_the_buffer():
    for lo, hi in ((0, 11), (-1, 5), (6, 5)):
        with pytest.raises(ValueError, match="outside a buffer of 10 bytes"):
            L.line_offsets(b"a\nb\nc\nd\ne\n", lo, hi)


def test_line_windows_and_sniffing():
    rng = random.Random(0)
    data = b"\n".join(corpus_line(rng, i) for i in range(200))
    full = L.line_offsets(data)
    assert full[0] == 0 and full[-1] == len(data) and len(full) == data.count(b"\n") + 2
    assert np.array_equal(L.line_offsets(data, int(full[3]), int(full[9])), full[3:10])
    sniffed = L.sniff_kinds(data, full, L.content_lengths(data, full), np.arange(len(full) - 1),
                            L.lines_array(data, full))
    assert set(sniffed.tolist()) <= set(range(-1, len(EVENT_KINDS))) and (sniffed >= 0).sum() > 100


def test_an_unknown_key_with_a_null_value_is_kept_in_extra_whatever_the_neighbours():
    """The Arrow path cannot tell ``"k": null`` from no key; the line's ``extra`` must not depend on
    whether it was parsed alone (json.loads) or among good lines (Arrow)."""
    import pyarrow.compute  # noqa: F401  (pa.compute)

    base = to_line(make_event("market_tick", event_id="odd", seq=9))
    cases = {  # make_event drops None-valued keys: the nulls are written into the line
        b'"seq":9,"note":null': {"note": None},
        b'"seq":9,"venue":{"mic":null}': {"venue": {"mic": None}},
    }
    good = b"".join(to_line(make_event("market_tick", event_id=f"g{i}", seq=i)) for i in range(50))
    for text, extra in cases.items():
        odd = base.replace(b'"seq":9', text)
        for data in (odd, good + odd + good):
            t = parse_lines(data, now_ms=NOW_MS).tables["market_ticks"]
            row = t.filter(pa.compute.equal(t.column("event_id"), "odd")).to_pylist()[0]
            assert json.loads(row["extra"]) == extra, (text, len(data))
