"""Shared by the schema tests: real events from ``guide_examples`` and ways to damage them.

``splice``/``tick`` put raw JSON text at a path of a real event; ``corpus_line`` makes a random
real event of any kind, serialized in one of several spellings and often mutated (raw tokens,
truncation, trailing values, duplicate/unknown keys, byte edits, bad kinds, odd lists, quotes);
``outcomes`` maps each line of a ``ParseResult`` to its row or its reject.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import numpy as np

from mia_pipeline.schemas.contract import EVENT_KINDS
from mia_pipeline.schemas.parser import ParseResult
from mia_pipeline_tests.guide_examples import SIGNAL_EXAMPLE, make_event, to_line

NOW_MS = 1_900_000_000_000  # after every example timestamp


def _exact(value: Any) -> Any:
    """A comparable form in which floats compare by their bits (-0.0 != 0.0)."""
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_exact(v) for v in value]
    return value


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


ODD_TIMESTAMPS = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00.000Z",
                  "0000-02-29T00:00:00.000Z", "1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00.000Z",
                  "2100-12-31T23:59:59.999Z", "2101-01-01T00:00:00.000Z", "2025-06-23T14:30:15.123+14:00",
                  "2025-02-29T00:00:00.000Z", "2025-06-23 14:30:15,5-0530", "2025-06-23T24:00:00.000Z",
                  "2025-06-23T23:59:60Z", "2025-06-23T14:30:15.123456789Z", "2025-06-23T14:30:15+99:99", ""]
NEAR_KINDS = ["system_statu", "market_tck", "performace", "trade_exitt", "market_ba", "signall", "trad",
              "market_tick ", "Market_tick", "tradé"]
UNICODE = ["é", "日本", "😀", "\u2028", "\x00", "\ufeff", "\ud800", "\U0010ffff", "Ω" * 50]


def _deep(rng: random.Random) -> bytes:
    depth = rng.choice([10, 63, 64, 65, 200, 999, 1001, 1100, 5000, 10_000])
    if rng.random() < 0.5:
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def _mutate(rng: random.Random, event: dict, line: bytes) -> bytes:
    op = rng.randrange(18)
    paths = _paths(event)
    if op == 12:  # deep nesting at any path (e.g. inside battle_navale)
        return splice(event, {rng.choice(paths[1:] or paths): _deep(rng)})
    if op == 13:  # a value before or after the object (null{"kind":...} crashed Arrow's reader)
        return rng.choice([b"null", b"1", b"[]", b'"x"', b"true", b"{}"]) + rng.choice([b"", b" "]) + line
    if op == 14:  # huge or odd numbers anywhere
        token = rng.choice([b"1" + b"0" * rng.randrange(19, 400), b"-" + b"9" * rng.randrange(19, 40),
                            b"1e" + str(rng.randrange(300, 100000)).encode(), b"-0", b"0.0e-999", b"2147483648"])
        return splice(event, {rng.choice(paths): token})
    if op == 15:  # odd timestamps
        ts = [p for p in paths if p == "timestamp" or p.endswith("_timestamp")]
        return splice(event, {rng.choice(ts or ["timestamp"]): json.dumps(rng.choice(ODD_TIMESTAMPS)).encode()})
    if op == 16:  # a kind one typo away from a real one (shares its first bytes)
        event["kind"] = rng.choice(NEAR_KINDS)
        return json.dumps(event, separators=(",", ":")).encode()
    if op == 17:  # unicode in a value or a key, raw or escaped
        text = rng.choice(UNICODE)
        raw = json.dumps(text, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        if rng.random() < 0.5:
            return splice(event, {rng.choice(paths): raw})
        return line[:-1] + b"," + raw + b":1}"
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


def corpus_line(rng: random.Random, i: int, kind: str | None = None) -> bytes:
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


def outcomes(result: ParseResult) -> dict[int, Any]:
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
        oa, ob = outcomes(a), outcomes(b)
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
