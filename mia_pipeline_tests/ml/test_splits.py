import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mia_pipeline.ml.splits import (
    Normaliser,
    Split,
    normalise_split,
    overlaps_any,
    purged_kfold,
    split_problems,
    splits_frame,
    walk_forward,
)

# ---------------------------------------------------------------- exact indices (skfolio style)
# 10 rows, t0 = 0..9, each label known 2 steps later (t1 = t0 + 2), except row 4 (t1 = 8).
T0 = np.arange(10)
T1 = T0 + 2
T1[4] = 8


def _idx(splits):
    return [(s.train.tolist(), s.test.tolist()) for s in splits]


def test_purged_kfold_exact_indices():
    got = _idx(purged_kfold(T0, T1, n_splits=5, embargo=1))
    assert got == [
        # test [0, 1] spans [0, 3]: rows 2, 3 overlap (t0 <= 3); row 4 embargoed (t0 in (3, 4])
        ([5, 6, 7, 8, 9], [0, 1]),
        # test [2, 3] spans [2, 5]: rows 0, 1 end at 2, 3 -> purged; 4, 5 overlap; 6 embargoed
        ([7, 8, 9], [2, 3]),
        # test [4, 5] spans [4, 8]: rows 2, 3 (t1 = 4, 5) purged, 6, 7, 8 overlap, 9 embargoed
        ([0, 1], [4, 5]),
        # test [6, 7] spans [6, 9]: row 4 (t1 = 8) and 5 (t1 = 7) overlap; 8, 9 overlap; nothing left to embargo
        ([0, 1, 2, 3], [6, 7]),
        # test [8, 9] spans [8, 11]: row 4 (t1 = 8) and 6, 7 (t1 = 8, 9) overlap
        ([0, 1, 2, 3, 5], [8, 9]),
    ]


def test_walk_forward_exact_indices():
    got = _idx(walk_forward(T0, T1, n_splits=4))
    assert got == [
        ([], [2, 3]),              # block [0, 1]: t1 = 2, 3 overlap the test start (2)
        ([0, 1], [4, 5]),          # rows 2, 3 end at 4, 5 >= 4
        ([0, 1, 2, 3], [6, 7]),    # row 4 ends at 8, row 5 at 7
        ([0, 1, 2, 3, 5], [8, 9]),  # row 6 ends at 8, 7 at 9; row 4 at 8
    ]
    assert _idx(walk_forward(T0, T1, n_splits=4, max_train_size=2))[3] == ([3, 5], [8, 9])


# ---------------------------------------------------------------- properties on random intervals
@st.composite
def intervals(draw):
    n = draw(st.integers(6, 60))
    t0 = np.sort(np.array(draw(st.lists(st.integers(0, 500), min_size=n, max_size=n))))
    dur = np.array(draw(st.lists(st.integers(0, 60), min_size=n, max_size=n)))
    perm = np.array(draw(st.permutations(list(range(n)))))  # rows need not come sorted
    return t0[perm], (t0 + dur)[perm]


def _brute_overlap(t0, t1, i, test):
    return any(t0[i] <= t1[j] and t0[j] <= t1[i] for j in test)


@settings(max_examples=150, deadline=None)
@given(intervals(), st.integers(2, 6), st.integers(0, 40))
def test_purged_kfold_properties(iv, k, embargo):
    t0, t1 = iv
    k = min(k, len(t0))
    splits = purged_kfold(t0, t1, n_splits=k, embargo=embargo)
    assert split_problems(t0, t1, splits, embargo) == []
    # the test folds partition the rows, contiguous in t0
    assert sorted(np.concatenate([s.test for s in splits]).tolist()) == list(range(len(t0)))
    for s in splits:
        end = t1[s.test].max()
        for i in range(len(t0)):
            if i in s.test:
                continue
            dropped = _brute_overlap(t0, t1, i, s.test) or end < t0[i] <= end + embargo
            assert (i in s.train) == (not dropped)  # purged/embargoed rows out, every other row in


@settings(max_examples=150, deadline=None)
@given(intervals(), st.integers(1, 5), st.integers(0, 40))
def test_walk_forward_properties(iv, k, embargo):
    t0, t1 = iv
    k = min(k, len(t0) - 1)
    splits = walk_forward(t0, t1, n_splits=k, embargo=embargo)
    assert split_problems(t0, t1, splits, embargo) == []
    for s in splits:
        if len(s.train):
            # training labels are all known before the test fold starts
            assert t1[s.train].max() < t0[s.test].min()
            assert t0[s.train].max() <= t0[s.test].min()


def test_overlaps_any_matches_brute_force():
    rng = np.random.default_rng(3)
    t0 = rng.integers(0, 100, 300)
    t1 = t0 + rng.integers(0, 10, 300)
    test = rng.choice(300, 40, replace=False)
    fast = overlaps_any(t0, t1, t0[test], t1[test])
    assert fast.tolist() == [_brute_overlap(t0, t1, i, test) for i in range(300)]


def test_split_problems_catch_overlap_and_embargo():
    bad = [Split(0, np.array([2, 3, 4, 9]), np.array([0, 1]))]
    problems = split_problems(T0, T1, bad, embargo=1)
    assert any("overlap the test fold" in p for p in problems)
    assert any("inside the embargo" in p for p in problems)
    assert any("both train and test" in p for p in split_problems(T0, T1, [Split(0, np.array([1]), np.array([1]))]))


def test_datetime_times_and_timedelta_embargo(built):
    _, _, _, y = built
    splits = purged_kfold(y["t0"], y["t1"], n_splits=5, embargo=pd.Timedelta("30min"))
    assert split_problems(y["t0"], y["t1"], splits, pd.Timedelta("30min")) == []
    assert all(len(s.train) > 0 for s in splits)
    frame = splits_frame(splits, y.index)
    assert set(frame["role"]) == {"train", "test"}
    assert (frame[frame.role == "test"].groupby("row").size() == 1).all()
    wf = walk_forward(y["t0"], y["t1"], n_splits=4, embargo=pd.Timedelta("30min"))
    assert split_problems(y["t0"], y["t1"], wf, pd.Timedelta("30min")) == []


def test_bad_times_are_rejected():
    with pytest.raises(ValueError, match="t1 is before its t0"):
        purged_kfold([0, 5, 6], [1, 4, 7], n_splits=2)
    with pytest.raises(ValueError, match="n_splits"):
        purged_kfold([0, 1], [0, 1], n_splits=3)


def test_normaliser_fits_on_training_rows_only():
    X = pd.DataFrame({"a": [1.0, 2, 3, 1000, 2000], "b": [5.0, 5, 5, 0, 0]})
    split = Split(0, np.array([0, 1, 2]), np.array([3, 4]))
    tr, te, norm = normalise_split(X, split)
    assert norm.mean_["a"] == 2.0 and norm.std_["b"] == 1.0  # constant in training -> std 1
    assert tr["a"].mean() == pytest.approx(0.0)
    # changing test rows changes nothing learnt
    X2 = X.copy()
    X2.loc[3:, "a"] = -1e9
    assert Normaliser().fit(X2, split.train).mean_.equals(norm.mean_)
    with pytest.raises(ValueError):
        Normaliser().transform(X)
