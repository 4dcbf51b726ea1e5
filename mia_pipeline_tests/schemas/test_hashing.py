"""``content_hash`` (``schemas/hashing.py``, numpy kernels): the definition never drifts.

Pinned values guard the definition itself, since stored partitions carry the hash; they run on
every machine, never skipped. Slices, chunks and null columns must not change a row's hash.
"""

import decimal

import numpy as np
import pyarrow as pa
import pytest

from mia_pipeline.schemas import hashing


def random_table(rng: np.random.Generator, n: int) -> pa.Table:
    """Every type the stored schemas use (and a few more), with nulls everywhere they can be."""

    def mask(p=0.2):
        return rng.random(n) < p

    words = ["", "ES", "NQ", "a" * 7, "b" * 8, "c" * 9, "é€ünïcode", "x" * 40]
    strings = [words[i] for i in rng.integers(0, len(words), n)]
    floats = rng.normal(size=n) * 1e3
    floats[rng.random(n) < 0.05] = -0.0
    floats[rng.random(n) < 0.05] = np.nan
    feats = [None if m else [None if rng.random() < 0.05 else float(x) for x in rng.normal(size=int(k))]
             for m, k in zip(mask(0.1), rng.integers(0, 20, n), strict=True)]
    tags = [None if m else [words[i] for i in rng.integers(0, len(words), int(k))]
            for m, k in zip(mask(0.1), rng.integers(0, 4, n), strict=True)]
    inner = pa.StructArray.from_arrays(
        [pa.array(floats, mask=mask()), pa.array(strings, pa.string(), mask=mask())], names=["v", "s"], mask=pa.array(mask(0.1)))
    outer = pa.StructArray.from_arrays(
        [inner, pa.array(rng.integers(-5, 5, n).astype(np.int32), mask=mask()), pa.array(feats, pa.list_(pa.float64()))],
        names=["inner", "n", "feats"], mask=pa.array(mask(0.1)))
    return pa.table({
        "event_id": pa.array([f"id-{i}" for i in range(n)]),  # excluded from the hash
        "ts": pa.array(rng.integers(0, 2**41, n), pa.int64(), mask=mask()).cast(pa.timestamp("ms", tz="UTC")),
        "symbol": pa.array(strings, pa.string(), mask=mask()),
        "big": pa.array(strings, pa.large_string()),
        "blob": pa.array([s.encode() for s in strings], pa.binary(), mask=mask()),
        "qty": pa.array(rng.integers(-2**62, 2**62, n), pa.int64(), mask=mask()),
        "version": pa.array(rng.integers(1, 3, n).astype(np.int32)),
        "price": pa.array(floats, mask=mask()),
        "f32": pa.array(floats.astype(np.float32), mask=mask()),
        "flag": pa.array(rng.random(n) < 0.5, mask=mask()),
        "nested": outer,
        "tags": pa.array(tags, pa.list_(pa.string())),
        "long_tags": pa.array(tags, pa.large_list(pa.large_string())),
        "flags": pa.array([None if t is None else [len(w) % 2 == 0 for w in t] for t in tags], pa.list_(pa.bool_())),
        "all_null": pa.nulls(n, pa.string()),
    })


@pytest.mark.parametrize("seed", range(6))
def test_random_tables_hash_every_row_and_separate_them(seed):
    rng = np.random.default_rng(seed)
    table = random_table(rng, int(rng.integers(1, 3000)))
    hashes = hashing.record_hash(table).to_pylist()
    assert len(hashes) == table.num_rows and all(len(h) == 16 for h in hashes)
    assert len(set(hashes)) > 0.9 * table.num_rows  # the hash separates rows


def test_slices_and_chunks_hash_like_fresh_rows():
    """Array offsets (slices) and chunked columns must not shift any value."""
    table = random_table(np.random.default_rng(42), 500)
    full = hashing.record_hash(table).to_pylist()
    for start, length in ((0, 1), (1, 7), (13, 200), (499, 1)):
        part = table.slice(start, length)
        fresh = pa.Table.from_pylist(part.to_pylist(), schema=table.schema)
        assert hashing.record_hash(part).to_pylist() == full[start:start + length]
        assert hashing.record_hash(fresh).to_pylist() == full[start:start + length]
    chunked = pa.concat_tables([table.slice(0, 100), table.slice(100)])
    assert hashing.record_hash(chunked).to_pylist() == full


def test_pinned_values():
    """The definition does not drift: these hashes are stored in every partition."""
    table = pa.table({
        "event_id": ["a", "b", "c"],
        "symbol": ["ES", None, "NQ-longer-than-8"],
        "price": [5000.25, -0.0, None],
        "qty": pa.array([1, None, -3], pa.int64()),
        "flag": [True, False, None],
        "feats": pa.array([[0.5, None, 1.0], [], None], pa.list_(pa.float64())),
        "ctx": pa.array([{"regime": "trend", "score": 0.75}, None, {"regime": None, "score": None}]),
    })
    expected = ["0817ead83d86c115", "52792b2435658968", "9134ba79d686bb82"]
    assert hashing.record_hash(table).to_pylist() == expected


def test_a_null_column_does_not_change_the_hash():
    """A field added by a later schema version is null in old rows: their hash is unchanged."""
    table = random_table(np.random.default_rng(3), 200)
    wider = table.append_column("added_later", pa.nulls(200, pa.float64())).append_column(
        "added_struct", pa.nulls(200, pa.struct([("x", pa.int64())])))
    assert hashing.record_hash(wider).to_pylist() == hashing.record_hash(table).to_pylist()


def test_every_arrow_type_a_contract_can_add_is_hashed():
    """int32, timestamps of any unit, decimals, dates, lists of ints and of structs: no TypeError, and
    a different value gives a different hash."""
    a = pa.table({
        "i32": pa.array([1, None], pa.int32()),
        "ts_us": pa.array([1_750_000_000_000_000, None], pa.timestamp("us", tz="UTC")),
        "dec": pa.array([decimal.Decimal("1.2500"), None], pa.decimal128(12, 4)),
        "day": pa.array([20_000, None], pa.date32()),
        "ints": pa.array([[1, 2], None], pa.list_(pa.int64())),
        "rows": pa.array([[{"a": 1}], [{"a": None}, None]], pa.list_(pa.struct([("a", pa.int32())]))),
    })
    hashes = hashing.record_hash(a).to_pylist()
    assert len(set(hashes)) == 2
    for name, value in (("dec", decimal.Decimal("1.2501")), ("ints", [2, 1]), ("rows", [{"a": 2}]), ("day", 20_001)):
        changed = a.set_column(a.schema.get_field_index(name), name,
                               pa.array([value, a.column(name)[1].as_py()], a.schema.field(name).type))
        assert hashing.record_hash(changed).to_pylist()[0] != hashes[0], name
    assert hashing.record_hash(a).to_pylist() == hashes  # deterministic


def test_a_sliced_list_hashes_only_its_rows_items():
    """Items outside the slice are neither read nor cast (a uint64 beyond int64 would not cast)."""
    table = pa.table({"x": pa.array([[2**64 - 1], [1], [2, 3]], pa.list_(pa.uint64())).slice(1)})
    fresh = pa.table({"x": pa.array([[1], [2, 3]], pa.list_(pa.uint64()))})
    assert hashing.record_hash(table).to_pylist() == hashing.record_hash(fresh).to_pylist()
