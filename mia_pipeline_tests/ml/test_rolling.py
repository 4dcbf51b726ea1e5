"""The vectorised rolling primitives equal pandas' groupby().rolling() on random grouped data."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mia_pipeline.ml.rolling import (
    group_positions,
    lag,
    momentum,
    rate_of_change,
    rolling_corr,
    rolling_mean_std,
    rolling_share_of_current,
)

values = st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.just(float("nan")))


@st.composite
def grouped(draw):
    sizes = draw(st.lists(st.integers(1, 40), min_size=1, max_size=5))
    n = sum(sizes)
    x = np.array(draw(st.lists(values, min_size=n, max_size=n)))
    y = np.array(draw(st.lists(st.integers(-100_000, 100_000), min_size=n, max_size=n))) / 100.0  # cents
    g = np.repeat(np.arange(len(sizes)), sizes)
    return g, x, y


@settings(max_examples=100, deadline=None)
@given(grouped(), st.integers(1, 12))
def test_mean_std_lag_momentum_match_pandas(data, w):
    g, x, _ = data
    pos = group_positions(g)
    s = pd.Series(x).groupby(g)
    mean, std = rolling_mean_std(x, pos, w)
    np.testing.assert_allclose(mean, s.transform(lambda v: v.rolling(w, 1).mean()), rtol=1e-7, atol=1e-6)
    if w >= 2:
        # sums of squares: absolute error ~ sqrt(eps * n) * the data's scale (see rolling.py)
        scale = max(np.nanmax(np.abs(x), initial=0.0), 1.0)
        np.testing.assert_allclose(std, s.transform(lambda v: v.rolling(w, 2).std()), rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_array_equal(lag(x, pos, 2), s.shift(2).to_numpy())
    np.testing.assert_allclose(momentum(x, pos, 3), s.diff(3).to_numpy())
    ref = (pd.Series(x) - s.shift(2)) / s.shift(2).abs()
    np.testing.assert_allclose(rate_of_change(x, pos, 2), ref.where(np.isfinite(ref)).to_numpy())


@settings(max_examples=60, deadline=None)
@given(grouped(), st.integers(3, 12))
def test_rolling_corr_matches_pandas(data, w):
    g, _, y = data
    x = y * 0.5 + np.sin(np.arange(len(y)))
    pos = group_positions(g)
    ref = np.asarray(pd.DataFrame({"x": x, "y": y}).groupby(g).apply(
        lambda d: d["x"].rolling(w, 3).corr(d["y"]))).ravel()
    got = rolling_corr(x, y, pos, w)
    ok = ~np.isnan(got) & ~np.isnan(ref)
    np.testing.assert_allclose(got[ok], ref[ok], atol=1e-6)
    assert (np.isnan(got) | ~np.isnan(ref)).all()  # where we give a correlation, pandas has one too


def test_windows_never_cross_groups_or_read_ahead():
    g = np.array([0, 0, 0, 1, 1, 1])
    x = np.array([1.0, 2, 3, 100, 200, 300])
    pos = group_positions(g)
    assert pos.tolist() == [0, 1, 2, 0, 1, 2]
    mean, _ = rolling_mean_std(x, pos, 2)
    assert mean.tolist() == [1.0, 1.5, 2.5, 100.0, 150.0, 250.0]
    # changing a later row changes nothing before it
    x2 = x.copy()
    x2[2] = 1e9
    assert rolling_mean_std(x2, pos, 2)[0][:2].tolist() == mean[:2].tolist()
    assert rolling_share_of_current(np.array([0, 1, 0, 2, 2, 2]), pos, 3).tolist() == [1.0, 0.5, 2 / 3, 1.0, 1.0, 1.0]
