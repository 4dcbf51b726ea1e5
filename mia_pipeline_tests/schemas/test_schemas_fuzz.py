"""Property test: no mutated real event stops ``parse_lines``, and a line's fate is its own.

Real events of every kind (``guide_examples.make_event``) are serialized and damaged (byte flips,
truncation, deleted/duplicated/unknown keys, type swaps, deep nesting, values before the object,
huge numbers, odd timestamps, kind typos, unicode: see ``_mutations``). For each batch:
``parse_lines`` returns; every line is exactly one row (``_line``) or one reject; and each line's
outcome (row, or reject with reason R) is the same in the batch, in the batch reversed, and alone.
The slow variant covers >= 100k mutated lines; the quick one runs with the fast suite.
"""

from __future__ import annotations

import random

import pytest
from _mutations import NOW_MS, corpus_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mia_pipeline.schemas import parse_lines


def _fates(data: bytes) -> dict[int, tuple[str, str]]:
    """line -> ("row", table) or ("reject", reason); asserts each line has exactly one fate."""
    result = parse_lines(data, now_ms=NOW_MS)
    fates: dict[int, tuple[str, str]] = {}
    for name, table in result.tables.items():
        for line in table.column("_line").to_pylist():
            assert line not in fates, f"line {line} is two rows"
            fates[line] = ("row", name)
    for r in result.rejects:
        assert r.line not in fates, f"line {r.line} is a row and a reject ({r.reason})"
        fates[r.line] = ("reject", r.reason)
    assert result.n_blank == 0 and sorted(fates) == list(range(result.n_lines)), "a line is missing"
    return fates


def _check_batch(seed: int, n_lines: int, n_alone: int) -> None:
    rng = random.Random(seed)
    lines = [corpus_line(rng, i).strip(b" \t\r") or b"{}" for i in range(n_lines)]  # no blank lines
    data = b"\n".join(lines) + b"\n"
    fates = _fates(data)
    assert len(fates) == n_lines
    backwards = _fates(b"\n".join(lines[::-1]) + b"\n")
    reordered = {n_lines - 1 - i: fate for i, fate in backwards.items()}
    differ = [i for i in range(n_lines) if fates[i] != reordered[i]]
    assert not differ, [(lines[i][:200], fates[i], reordered[i]) for i in differ[:3]]
    for i in rng.sample(range(n_lines), n_alone):
        alone = _fates(lines[i] + b"\n")[0]
        assert alone == fates[i], (lines[i][:300], fates[i], alone)


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_no_line_stops_the_parser_and_outcomes_do_not_depend_on_neighbours(seed):
    """Quick: 25 batches of 400 lines (10k mutated lines)."""
    _check_batch(seed, 400, 10)


@pytest.mark.slow
@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_a_hundred_thousand_mutated_lines(seed):
    """Slow: 50 batches of 2,000 lines = 100k mutated lines, each batch also parsed reversed and 20
    of its lines alone."""
    _check_batch(seed, 2000, 20)
