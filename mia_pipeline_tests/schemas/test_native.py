"""The compiled JSON-lines decoder (``native.py`` + ``_native/mia_jsonl.c``) and line screening (``mia_lines.c``).

Its contract: a line is either ACCEPTED with exactly the values the reference path (``json.loads``
+ ``slowpath``) gives, or DECLINED (and left to Arrow's reader / ``json.loads``). So:

1. unit level (``native.decode_kind``): crafted lines are accepted or declined as specified, and
   accepted values equal the reference's bit for bit (floats compared by their bits: -0.0 != 0.0);
2. differential: ``parse_lines`` gives the same tables and rejects with the decoder on and off;
3. a buffer cut into blocks (``threads``) parses like one block;
4. ``bytes``, ``bytearray`` and ``mmap`` buffers parse alike;
5. line ends and kind sniffing (``lines.py``) are the same compiled and in numpy.
"""

from __future__ import annotations

import copy
import json
import math
import mmap
import os
import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mia_pipeline.schemas import native, parser
from mia_pipeline.schemas.contract import EVENT_KINDS, KIND_PARSE_SCHEMAS
from mia_pipeline.schemas.guide_examples import SIGNAL_EXAMPLE, TRADE_EXAMPLE, make_event, to_line
from mia_pipeline.schemas.parser import ParseResult, parse_lines
from mia_pipeline.schemas.slowpath import _CHECKERS, LineError, conform_event, loads_line

NOW_MS = 1_900_000_000_000  # after every example timestamp


# Without a C compiler (and no prebuilt library) the decoder cannot exist: skip. A library that fails to
# build or load with a compiler present is an error, not a skip.
_NO_COMPILER = not (native.LIBRARY.exists() or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc"))
pytestmark = pytest.mark.skipif(_NO_COMPILER, reason="no C compiler to build the decoder")


@pytest.fixture
def use_native(monkeypatch):
    """``use_native(on)``: switch the decoder for ``parse_lines`` (env var + cache, undone after)."""

    def switch(on: bool) -> None:
        if on:
            monkeypatch.delenv("MIA_NATIVE_PARSER", raising=False)
        else:
            monkeypatch.setenv("MIA_NATIVE_PARSER", "0")
        native.available.cache_clear()
        assert native.available() is on

    yield switch
    native.available.cache_clear()  # before monkeypatch restores the environment


# ----------------------------------------------------------------------------------- helpers


def _exact(value: Any) -> Any:
    """A comparable form in which floats compare by their bits (-0.0 != 0.0)."""
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_exact(v) for v in value]
    return value


def _buffer(lines: list[bytes], sep: bytes = b"\n") -> tuple[bytes, np.ndarray, np.ndarray]:
    """Lines joined into one buffer (with a prefix, so no line starts at 0), their starts and lengths."""
    data = b"#junk#" + sep
    starts, lens = [], []
    for line in lines:
        starts.append(len(data))
        lens.append(len(line))
        data += line + sep
    return data, np.asarray(starts, dtype=np.int64), np.asarray(lens, dtype=np.int64)


def _decode(kind: str, lines: list[bytes]) -> tuple[pa.Table, np.ndarray]:
    data, starts, lens = _buffer(lines)
    tables, accepted = native.decode_kind(kind, data, starts, lens)
    assert len(tables) == 1
    table = tables[0]
    table.validate(full=True)
    assert table.schema == KIND_PARSE_SCHEMAS[kind]
    assert table.num_rows == int(accepted.sum())
    return table, accepted


def _reference(kind: str, line: bytes) -> tuple[dict, dict | None]:
    """The reference reading of a line against ``kind``'s schema: (row, unknown keys).

    ``conform_event`` minus its checks of the ``kind`` value: the decoder reads a line with the
    schema of its sniffed kind and leaves the value check to ``accept_table``."""
    obj = loads_line(line)
    if isinstance(obj, dict) and obj.get("kind") == kind:
        got_kind, row, residual = conform_event(obj)
        assert got_kind == kind
        return row, residual
    return _CHECKERS[kind](obj, "")


def _reference_rows(kind: str, lines: list[bytes]) -> list[dict]:
    """What the reference path makes of lines it accepts without unknown keys."""
    rows = []
    for line in lines:
        row, residual = _reference(kind, line)
        assert residual is None, line
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=KIND_PARSE_SCHEMAS[kind]).to_pylist()


def _reference_accepts(kind: str, line: bytes) -> bool:
    try:
        return _reference(kind, line)[1] is None
    except LineError:
        return False


def accepts(kind: str, line: bytes) -> dict:
    """Assert the decoder accepts ``line`` with the reference's values; return the row."""
    table, accepted = _decode(kind, [line])
    assert accepted.tolist() == [True], f"declined: {line!r}"
    row = table.to_pylist()[0]
    assert _exact(row) == _exact(_reference_rows(kind, [line])[0]), line
    return row


def declines(kind: str, line: bytes) -> None:
    table, accepted = _decode(kind, [line])
    assert accepted.tolist() == [False], f"accepted: {line!r} -> {table.to_pylist()}"
    assert table.num_rows == 0


def consistent(kind: str, line: bytes) -> bool:
    """Either way is allowed, but an accepted line must be one the reference accepts, with its values."""
    table, accepted = _decode(kind, [line])
    if accepted[0]:
        assert _reference_accepts(kind, line), f"accepted, the reference rejects: {line!r}"
        assert _exact(table.to_pylist()[0]) == _exact(_reference_rows(kind, [line])[0]), line
    return bool(accepted[0])


def _set(event: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        event = event[p]
    event[last] = value


def splice(kind_or_event: str | dict, raw: dict[str, bytes] | None = None, **overrides) -> bytes:
    """A compact line of an event with the values at dotted paths replaced by raw JSON text."""
    event = make_event(kind_or_event, **overrides) if isinstance(kind_or_event, str) else copy.deepcopy(kind_or_event)
    raw = raw or {}
    for i, path in enumerate(raw):
        _set(event, path, f"@@SPLICE{i}@@")
    line = to_line(event)[:-1]
    for i, text in enumerate(raw.values()):
        marker = f'"@@SPLICE{i}@@"'.encode()
        assert line.count(marker) == 1
        line = line.replace(marker, text)
    return line


def tick(**raw: bytes) -> bytes:
    """A market_tick line with some top-level values given as raw JSON text."""
    return splice("market_tick", raw)


def _signal(raw: dict[str, bytes] | None = None) -> bytes:
    return splice(SIGNAL_EXAMPLE, raw)


# ----------------------------------------------------------------------------- 1. unit level


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_example_event_is_accepted_with_the_reference_values(kind):
    accepts(kind, to_line(make_event(kind))[:-1])


def test_guide_examples_are_accepted_with_the_reference_values():
    row = accepts("trade", to_line(TRADE_EXAMPLE)[:-1])
    assert row["quantity"] == 10000 and row["market_context"]["volume"] == 1250000
    assert row["battle_navale"]["features"]["feature_8"] == -1.67
    row = accepts("signal", to_line(SIGNAL_EXAMPLE)[:-1])
    assert row["battle_navale_analysis"]["secondary_patterns"] == ["support_pattern_a"]
    assert row["features_snapshot"]["raw_features"][5] == 2.15
    assert row["decision"]["executed"] is True


DOUBLES_ACCEPTED = [
    b"6022", b"0", b"7", b"-3", b"0.1", b"0.5", b"1e-7", b"1E-7", b"1e+2", b"1E+2", b"1e2", b"2.5e0",
    b"123.45000000000002", b"0.30000000000000004", b"1.2345678901234567", b"1.23456789012345678",
    b"3.141592653589793238462643383279502884197169399375105820974944592307816406286",
    b"9007199254740993", b"9007199254740992.5", b"12345678901234567890123",  # ints beyond int64: float()
    b"-9223372036854775809", b"18446744073709551616",
    b"1e22", b"1e23", b"1.7976931348623157e308", b"2.2250738585072014e-308", b"2.2250738585072011e-308",
    b"5e-324", b"4.9406564584124654e-324", b"0.000001234", b"0.00000000000000000000000012345",
    b"1234567890123456789e-10", b"100.5", b"1.0000000000000002", b"0.1e1", b"10e-1", b"1.5e-10",
    b"8.98846567431158e307", b"0.0", b"0e0", b"0E-5",
]


@pytest.mark.parametrize("token", DOUBLES_ACCEPTED, ids=[t.decode()[:30] for t in DOUBLES_ACCEPTED])
def test_doubles_are_accepted_correctly_rounded(token):
    row = accepts("market_tick", tick(bid=token))
    assert row["bid"].hex() == float(json.loads(token)).hex()


def test_every_exponent_of_the_exact_fast_path():
    """Mantissas of up to 15 digits times 10^-22..10^22 are computed from a table of powers of ten."""
    for exp in range(-25, 26):
        for mantissa in (b"1", b"7", b"1.5", b"123456789012345", b"999999999999999", b"4.35", b"0.3", b"3"):
            token = mantissa + b"e" + str(exp).encode()
            assert accepts("market_tick", tick(bid=token))["bid"].hex() == float(token).hex(), token
        if exp < 0:
            token = b"0." + b"0" * (-exp - 1) + b"17"
            assert accepts("market_tick", tick(bid=token))["bid"].hex() == float(token).hex(), token


def test_negative_zero_keeps_its_sign():
    for token in (b"-0.0", b"-0e0", b"-0.0e5", b"-1e-400"):
        row = accepts("market_tick", tick(bid=token))
        assert row["bid"] == 0.0 and math.copysign(1.0, row["bid"]) == -1.0, token


def test_underflow_is_zero_not_declined_or_wrong():
    for token in (b"1e-400", b"2e-324", b"1e-99999"):
        if consistent("market_tick", tick(bid=token)):
            assert accepts("market_tick", tick(bid=token))["bid"] == 0.0


DOUBLES_DECLINED = [
    b"1e400", b"-1e400", b"1E309", b"1e99999999999999", b"1.8e308",  # non-finite
    b"01", b"-01", b"00", b"00.5", b"-00",  # leading zeros
    b"1.", b"-1.", b"1.e5", b".5", b"-.5", b"-", b"+1", b"1e", b"1e+", b"1E-", b"--1", b"0x10",
    b"1_000", b"1.5.3", b"1e5.5", b"1 2", b"1,", b"\xd9\xa1",
    b"NaN", b"nan", b"Infinity", b"-Infinity", b"inf",
    b'"1.5"', b"true", b"false", b"[1.5]", b'{"x":1}', b"nul", b"nulll", b"None",
]


@pytest.mark.parametrize("token", DOUBLES_DECLINED, ids=[repr(t)[2:-1] for t in DOUBLES_DECLINED])
def test_bad_doubles_are_declined(token):
    declines("market_tick", tick(bid=token))


INTS_ACCEPTED = [b"0", b"1", b"-5", b"42", b"9223372036854775807", b"-9223372036854775808",
                 b"-9223372036854775807", b"1000000000000000000"]


@pytest.mark.parametrize("token", INTS_ACCEPTED, ids=[t.decode() for t in INTS_ACCEPTED])
def test_int64_fields_take_json_integers(token):
    row = accepts("market_tick", tick(seq=token))
    assert row["seq"] == int(token)
    row = accepts("trade", splice(TRADE_EXAMPLE, {"market_context.volume": token}))
    assert row["market_context"]["volume"] == int(token)


INTS_DECLINED = [b"1.0", b"1.5", b"1e2", b"1E0", b"-0", b"9223372036854775808", b"-9223372036854775809",
                 b"18446744073709551616", b"99999999999999999999", b"1" + b"0" * 30, b"01", b"-01",
                 b'"1"', b"true", b"NaN", b"1e400", b"[1]"]


@pytest.mark.parametrize("token", INTS_DECLINED, ids=[t.decode()[:30] for t in INTS_DECLINED])
def test_int64_fields_decline_everything_else(token):
    declines("market_tick", tick(seq=token))
    declines("trade", splice(TRADE_EXAMPLE, {"quantity": token}))


STRINGS_ACCEPTED = [
    rb'"\"\\\/\b\f\n\r\t"', rb'"\u00e9"', rb'"\u00E9t\u00e9"', rb'"\u0041\u20ac\u20AC"', rb'"\u0000"',
    rb'"a\u0000b"', rb'"\u001f\u007f\u0080\u07ff\u0800\uffff"', rb'"\ud83d\ude00"', rb'"\uD83D\uDE00"',
    rb'"x\ud834\udd1ey"', rb'"\udbff\udfff"', rb'"\ud800\udc00"', rb'"\u2028\u2029"',
    '"é€😀日本 \x7f"'.encode(), b'""', b'"ES"', rb'"\\\\\\"', rb'"end\\"', rb'"\/\/"',
    b'"' + b"x" * 300 + b'"', b'"{\\"kind\\":\\"trade\\"}"',
]


@pytest.mark.parametrize("token", STRINGS_ACCEPTED, ids=[repr(t)[2:30] for t in STRINGS_ACCEPTED])
def test_strings_decode_every_escape_like_json_loads(token):
    row = accepts("market_tick", tick(symbol=token))
    assert row["symbol"] == json.loads(token)


def test_surrogate_pairs_become_four_byte_utf8():
    table, accepted = _decode("market_tick", [tick(symbol=rb'"\ud83d\ude00"'), tick(symbol=rb'"\uD834\uDD1E!"')])
    assert accepted.tolist() == [True, True]
    col = table.column("symbol").chunk(0)
    assert col.cast(pa.binary()).to_pylist() == ["\U0001F600".encode(), "\U0001D11E!".encode()]


STRINGS_DECLINED = [
    rb'"\ud83d"', rb'"\ud83dx"', rb'"\ud83d\u0041"', rb'"\ud83d\ud83d"', rb'"\ude00"', rb'"\udfff\ud800"',
    rb'"\ud83d\"', rb'"\ud83d\\u"', rb'"\ud83d\ude0"', rb'"a\ud800"',
    rb'"\x41"', rb'"\u12"', rb'"\u12g4"', rb'"\U0001F600"', rb'"\'"', rb'"\a"', rb'"\0"', rb'"\ "',
    b'"a\x01b"', b'"\x00"', b'"tab\there"', b'"\x1f"', b'"cr\r"', b'"x', b"'ES'", b"ES", b"1", b"true",
    b'"a" "b"', b'["ES"]', b'{"s":"ES"}',
]


@pytest.mark.parametrize("token", STRINGS_DECLINED, ids=[repr(t)[2:30] for t in STRINGS_DECLINED])
def test_bad_strings_are_declined(token):
    declines("market_tick", tick(symbol=token))


@pytest.mark.parametrize("pad", ["", "é", "😀"])
def test_escapes_and_control_characters_at_every_position_of_a_string(pad):
    """The string scanner reads 8 bytes at a time: a special byte anywhere in a word must be seen."""
    for n in range(0, 26):
        prefix = (pad * n)[:n] if pad else "a" * n
        for special in ('\\n', '\\"', '\\\\', '\\u00e9', '\\ud83d\\ude00', '€'):
            text = prefix + special + "b" * (n % 9)
            row = accepts("market_tick", tick(symbol=f'"{text}"'.encode()))
            assert row["symbol"] == json.loads(f'"{text}"')
        for ctrl in (b"\x00", b"\x01", b"\x09", b"\x0a", b"\x1f"):
            declines("market_tick", tick(symbol=b'"' + prefix.encode() + ctrl + b"b" * (n % 9) + b'"'))
        declines("market_tick", tick(symbol=b'"' + prefix.encode() + b"\\q" + b'"'))


def test_keys_in_any_order_top_level_and_nested():
    def reverse(value):
        if isinstance(value, dict):
            return {k: reverse(value[k]) for k in reversed(list(value))}
        return value

    for kind in EVENT_KINDS:
        event = make_event(kind)
        accepts(kind, json.dumps(reverse(event), ensure_ascii=False).encode())
        keys = list(event)
        random.Random(kind).shuffle(keys)
        accepts(kind, json.dumps({k: event[k] for k in keys}, separators=(",", ":")).encode())
    row = accepts("signal", json.dumps(reverse(SIGNAL_EXAMPLE)).encode())
    assert row["decision"]["reasoning"] == SIGNAL_EXAMPLE["decision"]["reasoning"]


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_whitespace_around_every_token(kind):
    event = make_event(kind)
    for item_sep, key_sep in ((" , ", " : "), ("\t,\t", "\t:\t"), ("\r,  ", " \r:\r "), (",", ":")):
        body = json.dumps(event, separators=(item_sep, key_sep)).encode()
        inner = body.replace(b"{", b"{ \t").replace(b"}", b"\r }").replace(b"[", b"[ ").replace(b"]", b"\t]")
        for line in (body, b" \t\r" + body + b" \t\r", inner, b"\t" + inner + b"\r"):
            accepts(kind, line)


def test_empty_containers_with_whitespace():
    row = accepts("signal", _signal({"decision": b"{ }", "features_snapshot.raw_features": b"[ \t]"}))
    assert row["decision"] == {k: None for k in ("action", "confidence", "reasoning", "executed",
                                                  "execution_delay_ms")}
    assert row["features_snapshot"]["raw_features"] == []


def test_duplicate_keys_are_declined():
    line = to_line(make_event("market_tick"))[:-1]
    declines("market_tick", line[:-1] + b',"seq":2}')
    declines("market_tick", line[:-1] + b',"kind":"market_tick"}')
    declines("market_tick", tick(bid=b"null")[:-1] + b',"bid":1.5}')
    declines("market_tick", tick(bid=b"1.5")[:-1] + b',"bid":null}')
    declines("signal", _signal({"decision": b'{"action":"BUY","confidence":0.5,"action":"SELL"}'}))
    declines("signal", _signal({"decision": b'{"executed":true,"executed":true}'}))
    declines("signal", _signal({"battle_navale_analysis.confluence_levels":
                                b'{"technical":0.1,"overall":0.2,"technical":0.1}'}))
    declines("signal", _signal()[:-1] + b',"decision":null}')


def test_unknown_keys_are_declined_top_level_and_nested():
    declines("market_tick", to_line(make_event("market_tick", note="x"))[:-1])
    declines("market_tick", tick(bid=b"1.5")[:-1] + b',"note":null}')
    declines("market_tick", tick(bid=b"1.5")[:-1] + b',"":1}')
    declines("market_tick", tick(bid=b"1.5")[:-1] + b',"Bid":1}')
    declines("market_tick", tick(bid=b"1.5")[:-1] + b',"bi":1}')
    declines("market_tick", tick(bid=b"1.5")[:-1] + b',"bidd":1}')
    declines("market_tick", tick(bid=b"1.5").replace(b'"symbol"', rb'"s\u0079mbol"'))  # escaped key
    declines("signal", _signal({"decision": b'{"action":"BUY","urgency":"high"}'}))
    declines("signal", _signal({"decision": b'{"action":"BUY","x":null}'}))
    declines("signal", _signal({"battle_navale_analysis.vikings_defenseurs": b'{"mode":"V","extra":{}}'}))
    event = make_event("performance")
    event["tags"]["desk"] = "fx"  # tags is a fixed struct: other tags go to `extra` via the slow path
    declines("performance", to_line(event)[:-1])
    event = make_event("system_status")
    event["metrics"]["gpu_pct"] = 3.0
    declines("system_status", to_line(event)[:-1])


def test_null_is_a_null_slot_for_structs_lists_and_scalars():
    row = accepts("signal", _signal({"decision": b"null", "features_snapshot.raw_features": b"null",
                                     "battle_navale_analysis.secondary_patterns": b"null",
                                     "symbol": b"null", "battle_navale_analysis.confluence_levels": b"null"}))
    assert row["decision"] is None and row["symbol"] is None
    assert row["features_snapshot"]["raw_features"] is None
    assert row["battle_navale_analysis"]["secondary_patterns"] is None
    assert row["battle_navale_analysis"]["confluence_levels"] is None
    row = accepts("signal", _signal({"battle_navale_analysis": b"null", "features_snapshot": b"null"}))
    assert row["battle_navale_analysis"] is None and row["features_snapshot"] is None
    row = accepts("market_tick", tick(bid=b"null", seq=b"null", symbol=b" null"))
    assert row["bid"] is None and row["seq"] is None and row["symbol"] is None
    row = accepts("signal", _signal({"decision.executed": b"null", "decision.action": b"null"}))
    assert row["decision"]["executed"] is None


def test_a_null_list_item_is_declined():
    for items in (b"[null]", b"[1.0,null]", b"[null,1.0]", b"[1.0, null ,2.0]", b"[ null]"):
        declines("signal", _signal({"features_snapshot.raw_features": items}))
    declines("signal", _signal({"battle_navale_analysis.secondary_patterns": b'["a",null]'}))


def test_list_syntax_errors_are_declined():
    for items in (b"[1.0,]", b"[,1.0]", b"[1.0 2.0]", b"[1.0", b"[", b"[[1.0]]", b'["1.0"]', b"[true]",
                  b"[1.0]]", b"{}", b"1.0"):
        declines("signal", _signal({"features_snapshot.raw_features": items}))
    row = accepts("signal", _signal({"features_snapshot.raw_features": b"[ 1 , -0.0,1e3 ]"}))
    assert _exact(row["features_snapshot"]["raw_features"]) == _exact([1.0, -0.0, 1000.0])


def test_object_syntax_errors_are_declined():
    line = to_line(make_event("market_tick"))[:-1]
    for bad in (line.replace(b",", b",,", 1), line.replace(b",", b"", 1), line.replace(b":", b"", 1),
                line.replace(b":", b"=", 1), line[:-1] + b",}", b"{," + line[1:], line.replace(b'"seq"', b"seq"),
                line.replace(b'"seq"', b"'seq'"), line.replace(b'"ES"', b"'ES'")):
        declines("market_tick", bad)


def test_wrong_types_are_declined():
    declines("market_tick", tick(bid=b'"6022.5"'))
    declines("market_tick", tick(symbol=b"1"))
    declines("market_tick", tick(symbol=b"true"))
    declines("signal", _signal({"decision": b"[]"}))
    declines("signal", _signal({"decision": b'"BUY"'}))
    declines("signal", _signal({"features_snapshot.raw_features": b"{}"}))
    declines("signal", _signal({"decision.executed": b"1"}))
    declines("signal", _signal({"decision.executed": b'"true"'}))
    declines("signal", _signal({"decision.executed": b"True"}))
    declines("signal", _signal({"decision.executed": b"tru"}))
    declines("signal", _signal({"decision.executed": b"falsey"}))
    row = accepts("signal", _signal({"decision.executed": b"false"}))
    assert row["decision"]["executed"] is False


def test_lines_that_are_not_one_object_are_declined():
    line = to_line(make_event("market_tick"))[:-1]
    for bad in (b"", b" ", b"[]", b"1", b"null", b'"market_tick"', b"{", b"}", b"[" + line + b"]",
                line + b"x", line + b"}", line + b",", line + b" 1", line + b"\x00", line + b" \x0c",
                line + line, line + b"{}", line + b" {}", line + b"\t" + line, b"\xef\xbb\xbf" + line):
        declines("market_tick", bad)
    accepts("market_tick", line + b" \t\r")
    accepts("market_tick", b"\r\t " + line)


def test_missing_fields_are_null():
    row = accepts("market_tick", to_line(make_event("market_tick", bid=None, last_size=None, symbol=None))[:-1])
    assert row["bid"] is None and row["last_size"] is None and row["symbol"] is None
    event = copy.deepcopy(SIGNAL_EXAMPLE)
    del event["decision"]["reasoning"], event["features_snapshot"]["raw_features"], event["timeframe"]
    row = accepts("signal", to_line(event)[:-1])
    assert row["decision"]["reasoning"] is None and row["timeframe"] is None
    assert row["features_snapshot"]["raw_features"] is None
    table, accepted = _decode("market_tick", [b"{}", b'{"kind":"market_tick"}'])
    assert accepted.tolist() == [True, True]
    assert table.to_pylist()[0] == dict.fromkeys(KIND_PARSE_SCHEMAS["market_tick"].names)


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_a_line_is_read_only_within_its_length(kind):
    """Every proper prefix of a line is declined although the buffer continues with the rest."""
    line = to_line(make_event(kind) if kind != "signal" else SIGNAL_EXAMPLE)[:-1] + b"   "
    data = b"x" + line + b"}\n"
    n = len(line) - 3
    starts = np.full(n + 4, 1, dtype=np.int64)
    lens = np.arange(n + 4, dtype=np.int64)
    tables, accepted = native.decode_kind(kind, data, starts, lens)
    assert np.flatnonzero(accepted).tolist() == [n, n + 1, n + 2, n + 3]
    assert tables[0].num_rows == 4


def test_every_truncation_of_a_string_escape_or_number():
    """A line ending inside a token is declined; a token cut short inside a line is declined or read
    like json.loads reads it (``-123.4`` is a number too)."""
    for token, field in ((rb'"a\ud83d\ude00\u00e9\n"', "symbol"), (b"-123.456e-7", "bid"),
                         (b"-9223372036854775808", "seq")):
        line = tick(**{field: token})
        at = line.index(token)
        for cut in range(at, at + len(token)):
            declines("market_tick", line[:cut])
            consistent("market_tick", line[:cut] + line[at + len(token):])


def test_declined_lines_are_rolled_back_and_leave_the_batch_intact():
    good = [
        to_line(SIGNAL_EXAMPLE)[:-1],
        _signal({"decision": b"null", "symbol": b'"\\u00e9\\ud83d\\ude00"', "features_snapshot.raw_features": b"[]"}),
        _signal({"decision.executed": b"false", "features_snapshot.normalized_features": b"null",
                 "battle_navale_analysis.secondary_patterns": b'["p","q","r"]'}),
        _signal({"battle_navale_analysis": b"null", "decision.confidence": b"-0.0"}),
        to_line(SIGNAL_EXAMPLE)[:-1],
    ]
    bad = [
        to_line(SIGNAL_EXAMPLE)[:-1] + b"x",  # everything appended, then declined
        _signal({"features_snapshot.feature_importance": b"[0.1,0.2,null]"}),  # inside the last list
        _signal({"decision.reasoning": b'"long reasoning text \\ud83d"'}),  # inside a string
        _signal({"decision": b"null", "symbol": b"null", "battle_navale_analysis": b"null"})[:-1] + b',"symbol":"X"}',
        _signal({"decision": b'{"action":"BUY","executed":true,"unknown":1}'}),
        _signal({"battle_navale_analysis.secondary_patterns": b'["a","b",7]'}),
    ]
    lines, expect = [], []
    for i, line in enumerate(good):
        lines.append(line)
        expect.append(True)
        for b in bad[i % len(bad):] + bad[: i % len(bad)]:  # every bad line between every two good ones
            lines.append(b)
            expect.append(False)
    table, accepted = _decode("signal", lines)
    assert accepted.tolist() == expect
    alone, _ = _decode("signal", good)
    assert table.equals(alone)
    assert _exact(table.to_pylist()) == _exact(_reference_rows("signal", good))
    for name in ("decision", "symbol", "battle_navale_analysis", "features_snapshot"):
        col = table.column(name).chunk(0)
        assert col.null_count == sum(r[name] is None for r in _reference_rows("signal", good)), name


def test_rollback_of_null_and_valid_slots_in_both_orders():
    lines = [tick(bid=b"null"), tick(bid=b"1.5")[:-1] + b",}", tick(bid=b"2.5"),  # null, valid over declined
             tick(bid=b"3.5"), tick(bid=b"null")[:-1] + b"x", tick(bid=b"null"),  # null over declined null
             tick(bid=b"4.5")[:-1] + b"x", tick(bid=b"null"),  # null over declined valid
             tick(symbol=b'"abcdefghijklmnop"')[:-1] + b"]", tick(symbol=b"null"),
             tick(symbol=b"null", bid=b"null")[:-1] + b",,", tick(symbol=b'"Q"', bid=b"5.5")]
    table, accepted = _decode("market_tick", lines)
    assert accepted.tolist() == [True, False, True, True, False, True, False, True, False, True, False, True]
    rows = table.to_pylist()
    assert [r["bid"] for r in rows] == [None, 2.5, 3.5, None, None, 6022.5, 5.5]
    assert [r["symbol"] for r in rows] == ["ES", "ES", "ES", "ES", "ES", None, "Q"]
    assert table.column("bid").null_count == 3 and table.column("symbol").null_count == 1
    assert _exact(rows) == _exact(_reference_rows("market_tick", [x for x, a in zip(lines, accepted, strict=True)
                                                                  if a]))


def test_two_halves_on_a_pool_equal_one_part(monkeypatch):
    rng = random.Random(11)
    lines = [_corpus_line(rng, i, kind="market_tick") for i in range(200)]
    data, starts, lens = _buffer(lines)
    (whole,), accepted = native.decode_kind("market_tick", data, starts, lens)
    monkeypatch.setattr(native, "PARALLEL_LINES", 8)
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts, accepted2 = native.decode_kind("market_tick", data, starts, lens, pool)
    assert len(parts) == 2
    assert accepted.tolist() == accepted2.tolist() and 0 < accepted.sum() < len(lines)
    assert pa.concat_tables(parts).equals(whole)


def test_concurrent_decodes_do_not_interfere():
    rng = random.Random(13)
    lines = [_corpus_line(rng, i, kind="signal") for i in range(300)]
    data, starts, lens = _buffer(lines)
    (expected,), accepted = native.decode_kind("signal", data, starts, lens)
    with ThreadPoolExecutor(max_workers=8) as pool:
        runs = list(pool.map(lambda _: native.decode_kind("signal", data, starts, lens), range(32)))
    for (table,), acc in runs:
        assert acc.tolist() == accepted.tolist()
        assert table.equals(expected)


# ------------------------------------------------------------------------ 2. differential

KNOWN_SYMBOLS = frozenset({"ES", "NQ", "EURUSD", "GBPUSD"})
FLOATS = [0.1, 1e-7, 123.45000000000002, 0.30000000000000004, 5e-324, 2.2250738585072014e-308,
          1.7976931348623157e308, 1e22, 1e23, 9007199254740993.0, 1.0, 0.0, -0.0, 2.0, 1e-300, 6022.75,
          0.87, 1.0891, 1 / 3, 2 / 3, 1e15 + 0.3, 4.35, 100.0]
INTS = [0, 1, 2, 7, 10000, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 10**18]
STRINGS = ["ES", "NQ", "EURUSD", "", "é", "日本語", "😀 emoji", "tab\tnew\nline", 'quote " and \\ backslash',
           "\x00nul", "\x1f\x7f", "\u2028", "a/b", "x" * 40, "BUY", "SELL", "HOLD", "5min", "1h", "running",
           "take_profit", "2025-06-23T14:30:15.123Z", "2025-06-23T14:30:15Z", "2025-06-23 14:30:15.1+02:00",
           "2025-06-23T14:30:15.125", "not a time"]
# raw JSON tokens spliced into a value: numbers, literals, strings, containers (valid or not)
TOKENS = [
    b"0", b"-0", b"-0.0", b"1", b"1.0", b"0.1", b"1e-7", b"1E+2", b"1e400", b"-1e400", b"1e-400", b"01", b"1.",
    b".5", b"-", b"+1", b"NaN", b"Infinity", b"-Infinity", b"9223372036854775807", b"9223372036854775808",
    b"-9223372036854775808", b"-9223372036854775809", b"123.45000000000002", b"1.23456789012345678901234",
    b"12345678901234567890123", b"1" + b"0" * 400, b"0." + b"0" * 200 + b"1", b"1e0000000000000000000001",
    b"true", b"false", b"null", b"nul", b"tru", b'""', b'"ES"', rb'"\u00e9\ud83d\ude00"', rb'"\ud83d"',
    rb'"\ude00"', rb'"\x"', b'"a\x01b"', b'"\xc3\xa9"', rb'"\"\\\/\b\f\n\r\t"', b"[]", b"[null]", b"[1,null]",
    b"[1.5,2]", b'["a"]', b"[1,]", b"{}", b'{"a":1}', b"{", b"[", b'"', b"1 2", b"[1.0]]",
]
SERIALIZERS = [
    lambda e: json.dumps(e, separators=(",", ":"), ensure_ascii=False),
    lambda e: json.dumps(e, ensure_ascii=False),
    lambda e: json.dumps(e),  # \uXXXX escapes (surrogate pairs for astral characters)
    lambda e: json.dumps(e, separators=(" ,\t", "\t: ")),
]


def _paths(value: Any, prefix: str = "") -> list[str]:
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}{k}"
            out.append(path)
            out += _paths(v, path + ".")
    return out


def _get(event: dict, path: str) -> Any:
    for p in path.split("."):
        event = event[p]
    return event


def _random_value(rng: random.Random, like: Any) -> Any:
    if isinstance(like, bool):
        return rng.random() < 0.5
    if isinstance(like, int):
        return rng.choice(INTS) if rng.random() < 0.5 else rng.randrange(0, 10**rng.randrange(1, 19))
    if isinstance(like, float):
        r = rng.random()
        if r < 0.3:
            return rng.choice(FLOATS)
        if r < 0.5:
            return like * rng.uniform(0.5, 1.5)
        if r < 0.6:
            return float(rng.randrange(1, 10**6))
        if r < 0.7:
            return rng.randrange(1, 10**6)  # an int in a float field
        if r < 0.8:
            return round(rng.uniform(0, 1000), rng.randrange(0, 6))
        return 10 ** rng.uniform(-300, 300)
    if isinstance(like, str):
        return rng.choice(STRINGS) if rng.random() < 0.7 else "".join(chr(rng.randrange(1, 0x3000))
                                                                      for _ in range(rng.randrange(12)))
    if isinstance(like, list):
        item = like[0] if like else 0.5
        return [_random_value(rng, item) for _ in range(rng.choice([8, 8, 8, 0, 1, 3, 9]))]
    if isinstance(like, dict):
        return rng.choice([{}, None, like])
    return like


def _random_event(rng: random.Random, kind: str, i: int) -> dict:
    event = make_event(kind, event_id=f"evt-{i}", seq=i) if kind == "market_tick" else make_event(kind, event_id=f"evt-{i}")
    paths = [p for p in _paths(event) if p != "kind"]
    for path in rng.sample(paths, k=min(len(paths), rng.choice([0, 0, 1, 2, 4]))):
        *parents, last = path.split(".")
        try:
            parent = _get(event, ".".join(parents)) if parents else event
        except (KeyError, TypeError):
            continue
        if not isinstance(parent, dict) or last not in parent:
            continue
        r = rng.random()
        if r < 0.1:
            del parent[last]  # missing
        elif r < 0.2:
            parent[last] = None  # explicit null
        else:
            parent[last] = _random_value(rng, parent[last])
    return event


def _shuffled(rng: random.Random, value: Any) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _shuffled(rng, value[k]) for k in keys}
    return value


def _mutate(rng: random.Random, event: dict, line: bytes) -> bytes:
    op = rng.randrange(12)
    paths = _paths(event)
    if op <= 2:  # a raw token in place of a value
        path = rng.choice(paths)
        return splice(event, {path: rng.choice(TOKENS)})
    if op == 3:  # truncation
        return line[: rng.randrange(len(line))]
    if op == 4:  # trailing garbage or a second object
        return line + rng.choice([b"x", b"}", b",", b" {}", b" " + line, b"]", b" null", b" \t", b"\r"])
    if op == 5:  # duplicate key, top level or nested
        path = rng.choice(paths)
        *parents, last = path.split(".")
        value = _get(event, path)
        if parents:
            parent = _get(event, ".".join(parents))
            text = json.dumps(parent)[:-1] + (", " if parent else "") + f"{json.dumps(last)}: {json.dumps(value)}}}"
            return splice(event, {".".join(parents): text.encode()})
        return line.rstrip()[:-1] + f',"{last}":{json.dumps(value)}}}'.encode()
    if op == 6:  # unknown key, top level or nested
        structs = [p for p in paths if isinstance(_get(event, p), dict)]
        target = event if not structs or rng.random() < 0.5 else _get(event, rng.choice(structs))
        target[rng.choice(["note", "zz", "extra_field", "Symbol"])] = rng.choice([1, "x", None, [1], {"a": 1}])
        return json.dumps(event, ensure_ascii=False).encode()
    if op == 7:  # byte-level edit
        b = bytearray(line)
        pos = rng.randrange(len(b))
        what = rng.random()
        if what < 0.33:
            del b[pos]
        elif what < 0.66:
            b.insert(pos, rng.choice(b'{}[]":,.-+eE0123456789 \\ntul\t\x01'))
        else:
            b[pos] = rng.choice(b'{}[]":,.-+eE0123456789 \\ntul\t')
        return bytes(b)
    if op == 8:  # another kind's name, or a bad one
        event["kind"] = rng.choice(list(EVENT_KINDS) + ["order_book", 7, None])
        return json.dumps(event).encode()
    if op == 9:  # a null list item or a list of the wrong item type
        lists = [p for p in paths if isinstance(_get(event, p), list)]
        if lists:
            return splice(event, {rng.choice(lists): rng.choice([b"[1.5,null]", b"[null]", b'["a","b"]', b"[1,2]"])})
        return splice(event, {rng.choice(paths): b"[]"})
    if op == 10:  # an escaped or odd key spelling
        return line.replace(b'"symbol"', rb'"s\u0079mbol"').replace(b'"metric"', b'"metric "')
    return line.replace(b'"', b"'", 1 + rng.randrange(3))  # single quotes


def _corpus_line(rng: random.Random, i: int, kind: str | None = None) -> bytes:
    event = _random_event(rng, kind or rng.choice(EVENT_KINDS), i)
    if rng.random() < 0.3:
        event = _shuffled(rng, event)
    line = rng.choice(SERIALIZERS)(event).encode()
    if rng.random() < 0.45:
        line = _mutate(rng, event, line)
    if rng.random() < 0.05:
        line = rng.choice([b" ", b"\t", b"\r"]) + line
    if rng.random() < 0.05:
        line += rng.choice([b" ", b"\t", b"\r"])
    return line.replace(b"\n", b" ")


def _outcomes(result: ParseResult) -> dict[int, Any]:
    """Line -> ('row', table, exact row) or ('reject', reason, detail)."""
    out: dict[int, Any] = {}
    for name, table in result.tables.items():
        for row in table.to_pylist():
            out[row.pop("_line")] = ("row", name, _exact(row))
    for r in result.rejects:
        assert r.line not in out
        out[r.line] = ("reject", r.reason, r.detail)
    return out


def assert_same_result(a: ParseResult, b: ParseResult, data: bytes | None = None) -> None:
    if data is not None:  # name the first lines that differ, with their text
        oa, ob = _outcomes(a), _outcomes(b)
        diff = [i for i in sorted(set(oa) | set(ob)) if oa.get(i) != ob.get(i)]
        off = a.line_offsets
        shown = [(i, data[off[i]:off[i + 1]], oa.get(i), ob.get(i)) for i in diff[:5]]
        assert not diff, f"{len(diff)} lines differ, first ones:\n" + "\n".join(map(repr, shown))
    assert a.n_lines == b.n_lines and a.n_blank == b.n_blank
    assert np.array_equal(a.line_offsets, b.line_offsets)
    assert [(r.line, r.reason, r.detail, r.raw) for r in a.rejects] == \
           [(r.line, r.reason, r.detail, r.raw) for r in b.rejects]
    assert set(a.tables) == set(b.tables)
    for name in a.tables:
        assert a.tables[name].schema == b.tables[name].schema, name
        assert a.tables[name].equals(b.tables[name]), name
        assert _exact(a.tables[name].to_pylist()) == _exact(b.tables[name].to_pylist()), name


def test_parse_lines_is_the_same_with_and_without_the_decoder(use_native, monkeypatch):
    rng = random.Random(20250623)
    lines = [_corpus_line(rng, i) for i in range(4000)]
    data = b"\n".join(lines) + b"\n"
    seen = {"accepted": 0, "declined": 0}
    real = native.decode_kind

    def counting(kind, data, starts, lens, pool=None):
        tables, accepted = real(kind, data, starts, lens, pool)
        seen["accepted"] += int(accepted.sum())
        seen["declined"] += int((~accepted).sum())
        return tables, accepted

    monkeypatch.setattr(native, "decode_kind", counting)
    use_native(True)
    on = parse_lines(data, now_ms=NOW_MS, known_symbols=KNOWN_SYMBOLS)
    assert seen["accepted"] > 1500 and seen["declined"] > 800, seen  # both branches well exercised
    after_first = dict(seen)
    use_native(False)
    off = parse_lines(data, now_ms=NOW_MS, known_symbols=KNOWN_SYMBOLS)
    assert seen == after_first  # the second run did not use the decoder
    assert_same_result(on, off, data)
    reasons = {r.reason for r in on.rejects}
    assert {"malformed_json", "wrong_type", "duplicate_key", "non_finite_number", "unknown_kind"} <= reasons
    assert sum(t.num_rows for t in on.tables.values()) > 1500


def test_decoder_values_match_the_reference_line_by_line():
    """Each corpus line the decoder accepts is one the reference accepts, with the same values."""
    rng = random.Random(7)
    by_kind: dict[str, list[bytes]] = {k: [] for k in EVENT_KINDS}
    for i in range(3000):
        kind = EVENT_KINDS[i % len(EVENT_KINDS)]
        by_kind[kind].append(_corpus_line(rng, i, kind=kind))
    n_accepted = 0
    for kind, lines in by_kind.items():
        table, accepted = _decode(kind, lines)
        ok = [line for line, a in zip(lines, accepted.tolist(), strict=True) if a]
        n_accepted += len(ok)
        bad = [line for line in ok if not _reference_accepts(kind, line)]
        assert not bad, f"{kind}: accepted lines the reference rejects: {bad[:3]}"
        assert _exact(table.to_pylist()) == _exact(_reference_rows(kind, ok)), kind
    assert n_accepted > 1000


@pytest.mark.parametrize("field, token", [
    ("bid_size", b"-0.0"), ("bid_size", b"1e400"), ("bid_size", b"NaN"), ("bid_size", b"18446744073709551616"),
    pytest.param("bid_size", b"1" + b"0" * 200, id="bid_size-1e200-as-int"), ("seq", b"-0"), ("seq", b"1.0"),
    ("seq", b"9223372036854775808"), ("symbol", rb'"\ud83d"'), ("symbol", rb'"\u00e9\ud83d\ude00"'),
    pytest.param("bid_size", b"-0", id="bid_size--0"), ("bid_size", b"-1" + b"0" * 400),
    pytest.param("bid_size", b"1" + b"0" * 400, id="bid_size-1e400-as-int"),
], ids=lambda v: v if isinstance(v, str) else v.decode()[:24])
def test_a_line_reads_the_same_whatever_its_neighbours(use_native, field, token):
    """Tokens the decoder declines go down the ladder: Arrow's reader alone, or json.loads when a bad
    line of the same kind nearby makes the whole short run go to the slow path."""
    use_native(True)
    line = tick(**{field: token}) + b"\n"
    alone = _outcomes(parse_lines(line, now_ms=NOW_MS))[0]
    with_bad = _outcomes(parse_lines(line + b'{"kind":"market_tick","symbol":\n', now_ms=NOW_MS))
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


# --------------------------------------------------------------------- 3. block parallelism


def _mixed_buffer(final_newline: bool) -> bytes:
    rng = random.Random(3)
    lines = [_corpus_line(rng, i) for i in range(60)]
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
@pytest.mark.parametrize("native_on", [True, False])
def test_blocks_give_the_same_result_as_one_block(monkeypatch, use_native, final_newline, native_on):
    use_native(native_on)
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


def test_decoding_on_two_threads_inside_a_block(monkeypatch, use_native):
    use_native(True)
    rng = random.Random(5)
    data = b"\n".join(_corpus_line(rng, i) for i in range(600)) + b"\n"
    one = parse_lines(data, now_ms=NOW_MS, threads=1)
    monkeypatch.setattr(native, "PARALLEL_LINES", 16)
    assert_same_result(parse_lines(data, now_ms=NOW_MS, threads=2), one, data)
    monkeypatch.setattr(parser, "PARALLEL_BYTES", 4096)
    assert_same_result(parse_lines(data, now_ms=NOW_MS, threads=3), one, data)


# ------------------------------------------------------------------------------- 4. buffers


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


# ------------------------------------------------------------- line ends and kind sniffing (mia_lines.c)

def _screening_buffer(rng: random.Random) -> bytes:
    heads = [b'{"kind":"market_tick","x":1}', b'{"kind": "trade", "x": 1}', b'{"kind":"trade_exit"}',
             b'{"kind" : "signal"}', b'{"kind":"signalx","a":2}', b'{"kind":"performance_extra"}',
             b'{"x":1,"kind":"market_bar"}', b'{"kind":"system_status","s":"ok"}', b'{"kind":"', b"", b"   ",
             b'{"kind":"market_bar', b"\xff\xfe", b'{"kind":"tr\\u0061de"}', b'{"kind":"market_tick"' + b" " * 30,
             b'{"kind":  market_tick"}', b'{"kind": xtrade", "a": 1}']
    lines = [rng.choice(heads) + b"x" * rng.randrange(0, 3) for _ in range(rng.randrange(0, 60))]
    data = b"\n".join(lines)
    return data + (b"\n" if rng.random() < 0.5 else b"")


@pytest.mark.parametrize("seed", range(40))
def test_line_ends_and_sniffing_compiled_equal_numpy(seed):
    from mia_pipeline.schemas import lines as L

    rng = random.Random(seed)
    data = _screening_buffer(rng)
    windows = [(0, len(data))] + [tuple(sorted((rng.randrange(len(data) + 1), rng.randrange(len(data) + 1))))
                                  for _ in range(5)]
    for lo, hi in windows:
        compiled = L.line_offsets(data, lo, hi, compiled=True)
        assert np.array_equal(compiled, L.line_offsets(data, lo, hi, compiled=False)), (lo, hi)
        clen = L.content_lengths(data, compiled)
        lines = L.lines_array(data, compiled)
        idx = np.arange(len(compiled) - 1)
        if rng.random() < 0.5 and len(idx):
            idx = np.sort(rng.sample(list(idx), rng.randrange(1, len(idx) + 1))).astype(np.int64)
        guess = L.sniff_kinds(data, compiled, clen, idx, lines, compiled=True)
        assert np.array_equal(guess, L.sniff_kinds(data, compiled, clen, idx, lines, compiled=False))
    full = L.line_offsets(data)
    sniffed = L.sniff_kinds(data, full, L.content_lengths(data, full), np.arange(len(full) - 1),
                            L.lines_array(data, full))
    assert set(sniffed.tolist()) <= set(range(-1, len(EVENT_KINDS)))


@pytest.mark.parametrize("compiled", [True, False])
def test_line_offsets_refuses_a_window_outside_the_buffer(compiled):
    from mia_pipeline.schemas import lines as L

    for lo, hi in ((0, 11), (-1, 5), (6, 5)):
        with pytest.raises(ValueError, match="outside a buffer of 10 bytes"):
            L.line_offsets(b"a\nb\nc\nd\ne\n", lo, hi, compiled=compiled)
