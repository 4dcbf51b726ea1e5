"""``content_hash``: the compiled kernels (``_native/mia_hash.c``) give the numpy kernels' bits.

The numpy kernels are the reference (they spell out the definition in ``hashing.py``); pinned
values guard the definition itself, since stored partitions carry the hash.
"""

import numpy as np
import pyarrow as pa
import pytest

from mia_pipeline.schemas import hashing, native

pytestmark = pytest.mark.skipif(not native.available(), reason="compiled helpers not built")


def both(table: pa.Table) -> tuple[list[str], list[str]]:
    return (hashing.record_hash(table, compiled=False).to_pylist(),
            hashing.record_hash(table, compiled=True).to_pylist())


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
def test_compiled_kernels_match_numpy_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    table = random_table(rng, int(rng.integers(1, 3000)))
    numpy_hashes, compiled_hashes = both(table)
    assert compiled_hashes == numpy_hashes
    assert len(set(numpy_hashes)) > 0.9 * table.num_rows  # the hash separates rows


def test_slices_and_chunks_hash_like_fresh_rows():
    """Array offsets (slices) and chunked columns must not shift any value."""
    table = random_table(np.random.default_rng(42), 500)
    full = hashing.record_hash(table, compiled=True).to_pylist()
    for start, length in ((0, 1), (1, 7), (13, 200), (499, 1)):
        part = table.slice(start, length)
        fresh = pa.Table.from_pylist(part.to_pylist(), schema=table.schema)
        for compiled in (False, True):
            assert hashing.record_hash(part, compiled=compiled).to_pylist() == full[start:start + length]
            assert hashing.record_hash(fresh, compiled=compiled).to_pylist() == full[start:start + length]
    chunked = pa.concat_tables([table.slice(0, 100), table.slice(100)])
    assert hashing.record_hash(chunked, compiled=True).to_pylist() == full


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
    numpy_hashes, compiled_hashes = both(table)
    assert numpy_hashes == compiled_hashes == expected


def test_a_null_column_does_not_change_the_hash():
    """A field added by a later schema version is null in old rows: their hash is unchanged."""
    table = random_table(np.random.default_rng(3), 200)
    wider = table.append_column("added_later", pa.nulls(200, pa.float64())).append_column(
        "added_struct", pa.nulls(200, pa.struct([("x", pa.int64())])))
    for compiled in (False, True):
        assert (hashing.record_hash(wider, compiled=compiled).to_pylist()
                == hashing.record_hash(table, compiled=compiled).to_pylist())


@pytest.mark.parametrize("compiled", [False, True])
def test_unhashable_types_are_refused_by_both(compiled):
    table = pa.table({"d": pa.array([1, 2], pa.decimal128(5, 2))})
    with pytest.raises(TypeError, match="no rule for Arrow type"):
        hashing.record_hash(table, compiled=compiled)


def test_a_sliced_list_hashes_only_its_rows_items():
    """Items outside the slice are neither read nor cast (a uint64 beyond int64 would not cast)."""
    table = pa.table({"x": pa.array([[2**64 - 1], [1], [2, 3]], pa.list_(pa.uint64())).slice(1)})
    numpy_hashes, compiled_hashes = both(table)
    assert compiled_hashes == numpy_hashes
    fresh = pa.table({"x": pa.array([[1], [2, 3]], pa.list_(pa.uint64()))})
    assert hashing.record_hash(fresh, compiled=True).to_pylist() == compiled_hashes
