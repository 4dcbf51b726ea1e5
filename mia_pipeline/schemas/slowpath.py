"""The per-line path: ``json.loads`` one line, type-check it against its kind, split off unknown keys.

Used only for lines the vectorized path could not take (isolated by bisection) and for lines whose
unknown keys must be captured. It is the reference: any line the fast path accepts, this path
accepts with the same values. Its type rules mirror the Arrow JSON reader: integers must be JSON
integers (``1.0`` is a wrong type for an int64 field), floats accept integers, strings are strings.
Where ``json.loads`` alone would lose what the number says, the reading follows the number as Arrow
does: ``-0`` in a float field is -0.0, and an integer beyond float64 in a float field is infinite
(then rejected as ``non_finite_number``, like ``1e400``).
"""

from __future__ import annotations

import decimal
import functools
import json
import math
from typing import Any

import pyarrow as pa

from mia_pipeline.schemas.contract import EVENT_KINDS, KIND_PARSE_SCHEMAS

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


class _NegativeZero(int):
    """The JSON integer ``-0``: 0 in an integer field, -0.0 in a float field (as Arrow reads it)."""


class _Float(float):
    """A JSON fraction that remembers its text (a decimal field reads the text, not the double)."""

    __slots__ = ("text",)

    def __new__(cls, text: str):
        obj = super().__new__(cls, text)
        obj.text = text
        return obj


_MINUS_ZERO = _NegativeZero(0)


def _parse_int(text: str) -> int:
    return _MINUS_ZERO if text == "-0" else int(text)


def _type_name(value: Any) -> str:
    """The JSON value's Python type name for messages (``-0`` is an ``int`` like any other)."""
    return {_NegativeZero: "int", _Float: "float"}.get(type(value), type(value).__name__)


class LineError(Exception):
    """A line that cannot become a row: ``code`` is a key of REASONS."""

    def __init__(self, code: str, detail: str):
        super().__init__(code, detail)
        self.code, self.detail = code, detail


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise LineError("duplicate_key", f"key {dup!r} appears twice")
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_int=_parse_int, parse_float=_Float)


def loads_line(raw: bytes) -> Any:
    """``json.loads`` with duplicate-key detection; errors become :class:`LineError`."""
    try:
        return _DECODER.decode(raw.decode("utf-8").strip(" \t\r\n"))
    except LineError:
        raise
    except UnicodeDecodeError as exc:
        raise LineError("non_utf8", str(exc)) from None
    except (ValueError, RecursionError) as exc:
        raise LineError("malformed_json", str(exc)[:200]) from None


def _check_str(value: str, path: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise LineError("malformed_json", f"{path}: lone surrogate in string") from None
    return value


def _compile(typ: pa.DataType):
    """A checker ``f(value, path) -> (typed value, residual or None)`` for one Arrow type."""
    if pa.types.is_struct(typ):
        fields = {f.name: _compile(f.type) for f in typ}

        def struct(value, path):
            if not isinstance(value, dict):
                raise LineError("wrong_type", f"{path}: expected an object, got {_type_name(value)}")
            row, residual = {}, {}
            for key, sub in value.items():
                check = fields.get(key)
                if check is None:
                    residual[_check_str(key, path)] = sub
                elif sub is not None:
                    row[key], res = check(sub, f"{path}.{key}" if path else key)
                    if res is not None:
                        residual[key] = res
            return row, (residual or None)
        return struct
    if pa.types.is_list(typ):
        item = _compile(typ.value_type)

        def array(value, path):
            if not isinstance(value, list):
                raise LineError("wrong_type", f"{path}: expected an array, got {_type_name(value)}")
            return [None if v is None else item(v, f"{path}[{i}]")[0] for i, v in enumerate(value)], None
        return array
    if pa.types.is_string(typ):
        def string(value, path):
            if type(value) is not str:
                raise LineError("wrong_type", f"{path}: expected a string, got {_type_name(value)}")
            return (value if value.isascii() else _check_str(value, path)), None
        return string
    if pa.types.is_boolean(typ):
        def boolean(value, path):
            if type(value) is not bool:
                raise LineError("wrong_type", f"{path}: expected true/false, got {_type_name(value)}")
            return value, None
        return boolean
    if pa.types.is_integer(typ):
        bits = typ.bit_width
        lo, hi = (0, 2**bits - 1) if pa.types.is_unsigned_integer(typ) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)

        def integer(value, path):
            if type(value) is not int:
                if type(value) is _NegativeZero:
                    return 0, None
                raise LineError("wrong_type", f"{path}: expected an integer, got {float(value) if type(value) is _Float else value!r}"[:200])
            if not lo <= value <= hi:
                raise LineError("wrong_type", f"{path}: integer out of {typ} range")
            return value, None
        return integer
    if pa.types.is_decimal(typ):
        quantum = decimal.Decimal(1).scaleb(-typ.scale)
        limit = decimal.Decimal(10) ** (typ.precision - typ.scale)

        def dec(value, path):  # a JSON number or a numeric string, exact at the field's scale
            t = type(value)
            text = value.text if t is _Float else value if t is str else str(int(value)) if t in (int, _NegativeZero) else None
            try:
                d = decimal.Decimal(text) if text is not None else None
            except decimal.InvalidOperation:
                d = None
            if d is None or not d.is_finite():
                raise LineError("wrong_type", f"{path}: expected a decimal number, got {_type_name(value)}")
            with decimal.localcontext(prec=max(typ.precision, len(d.as_tuple().digits)) + 2):
                exact = d.quantize(quantum, rounding=decimal.ROUND_DOWN) == d
            if not exact or abs(d) >= limit:
                raise LineError("wrong_type", f"{path}: {text[:40]} does not fit {typ}")
            return d.quantize(quantum, context=decimal.Context(prec=typ.precision + 2)), None
        return dec
    if pa.types.is_floating(typ):
        def number(value, path):
            t = type(value)
            if t is float or t is _Float:
                return float(value), None
            if t is _NegativeZero:
                return -0.0, None
            if t is not int:
                raise LineError("wrong_type", f"{path}: expected a number, got {_type_name(value)}")
            try:
                return float(value), None
            except OverflowError:  # beyond float64: infinite, as Arrow and float("1e400") read it
                return (math.inf if value > 0 else -math.inf), None
        return number
    if pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        return _compile(pa.list_(typ.value_type))
    if pa.types.is_large_string(typ):
        return _compile(pa.string())

    def other(value, path):  # any other Arrow type: what pyarrow makes of the JSON value
        try:
            pa.array([value], type=typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError,
                OverflowError):
            raise LineError("wrong_type", f"{path}: {_type_name(value)} does not fit {typ}") from None
        return value, None
    return other


@functools.lru_cache(maxsize=64)
def _checker(schema: pa.Schema):
    """The checker of a kind's parse schema (compiled on first use: the contract can grow)."""
    return _compile(pa.struct(list(schema)))


class _Checkers:
    """``_CHECKERS[kind]``: the checker of the kind's current parse schema."""

    def __getitem__(self, kind: str):
        return _checker(KIND_PARSE_SCHEMAS[kind])


_CHECKERS = _Checkers()


def conform_event(obj: Any) -> tuple[str, dict, dict | None]:
    """Type-check a decoded event: ``(kind, row in parse-schema shape, residual of unknown keys)``."""
    if not isinstance(obj, dict):
        raise LineError("not_an_object", f"got a JSON {_type_name(obj)}")
    kind = obj.get("kind")
    if kind is None:
        raise LineError("missing_field", "kind")
    if not isinstance(kind, str):
        raise LineError("wrong_type", f"kind: expected a string, got {_type_name(kind)}")
    if kind not in EVENT_KINDS:
        raise LineError("unknown_kind", f"kind {kind!r}"[:200])
    row, residual = _CHECKERS[kind](obj, "")
    if residual:
        try:
            json.dumps(residual, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise LineError("malformed_json", "lone surrogate in an unknown field") from None
    return kind, row, residual


def residual_of(raw: bytes, kind: str) -> dict | None:
    """Unknown keys of a line the fast path already parsed (for the ``extra`` column)."""
    obj = loads_line(raw)
    return _CHECKERS[kind](obj, "")[1]
