"""The vectorised recursions equal their sequential definitions."""

import numpy as np
import pytest

from mia_pipeline.synthetic.volatility import (
    ar1,
    bridge_steps,
    capped_linear_scan,
    garch_unit_variance,
    linear_scan,
)


def _sequential(a, b, x0):
    out, x = [], x0
    for ai, bi in zip(a, b, strict=True):
        x = ai * x + bi
        out.append(x)
    return np.array(out)


@pytest.mark.parametrize("n", [1, 7, 20_000])
def test_linear_scan_matches_the_loop(n):
    rng = np.random.default_rng(0)
    a = 0.97 + 0.05 * rng.random(n)
    b = rng.standard_normal(n)
    np.testing.assert_allclose(linear_scan(a, b, 0.3), _sequential(a, b, 0.3), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.999, 1.0])
def test_ar1_matches_the_loop(phi):
    e = np.random.default_rng(1).standard_normal(5000)
    np.testing.assert_allclose(ar1(e, phi, 2.0), _sequential(np.full(5000, phi), e, 2.0) if phi > 0 else e,
                               rtol=1e-9, atol=1e-9)


def test_garch_variance_matches_the_loop_and_has_mean_one():
    z = np.random.default_rng(2).standard_normal(200_000)
    h = garch_unit_variance(z, 0.02, 0.97)
    h_loop, prev_h, prev_z = [], 1.0, 0.0
    for zi in z[:1000]:
        prev_h = 0.01 + 0.02 * prev_z**2 * prev_h + 0.97 * prev_h
        h_loop.append(prev_h)
        prev_z = zi
    np.testing.assert_allclose(h[:1000], h_loop, rtol=1e-9)
    assert h.mean() == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(("scale", "x_max"), [(0.6, 6.25), (0.6, 1e9), (3.0, 2.0)])
def test_capped_linear_scan_matches_the_loop(scale, x_max):
    """Capped GARCH-like coefficients: rare crossings, none, and a crossing at almost every step."""
    rng = np.random.default_rng(4)
    a = 0.976 + 0.022 * scale * rng.standard_t(4.5, 30_000) ** 2
    b = np.full(30_000, 0.002)
    out, x = [], 1.0
    for ai, bi in zip(a, b, strict=True):
        x = min(ai * x + bi, x_max)
        out.append(x)
    np.testing.assert_allclose(capped_linear_scan(a, b, 1.0, x_max), out, rtol=1e-9, atol=1e-12)


def test_garch_cap_holds_inside_the_recursion():
    z = np.random.default_rng(5).standard_t(4.5, 100_000) * np.sqrt(2.5 / 4.5)
    h = garch_unit_variance(z, 0.022, 0.976, h_max=6.25)
    assert h.max() <= 6.25 and (h == 6.25).any()
    free = garch_unit_variance(z, 0.022, 0.976)
    assert free.max() > 6.25 and np.all(h <= free + 1e-12)  # capping only ever lowers h


def test_bridge_steps_sum_to_the_second():
    rng = np.random.default_rng(3)
    per_second = rng.standard_normal(100)
    step_sec = np.repeat(np.arange(100), 5)
    steps = bridge_steps(rng, per_second, step_sec)
    np.testing.assert_allclose(np.bincount(step_sec, steps), per_second, atol=1e-12)
    assert steps.var() == pytest.approx(0.2, rel=0.2)
