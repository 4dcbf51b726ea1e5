"""Leadership as a lead-lag of 1-s mid returns; options context coherent with price."""

import numpy as np
import pytest
from synth_helpers import MIDDAY, quotes, second_returns, session

from mia_pipeline.synthetic import SCENARIOS


def _xcorr(lead: np.ndarray, follow: np.ndarray, k: int) -> float:
    """corr(lead(t), follow(t + k))."""
    if k >= 0:
        return float(np.corrcoef(lead[: len(lead) - k], follow[k:])[0, 1])
    return _xcorr(follow, lead, -k)


def _peak_lag(data, leader="NQ", follower="ES") -> int:
    a, b = second_returns(data, leader), second_returns(data, follower)
    return max(range(-3, 4), key=lambda k: _xcorr(a, b, k))


def _predictability(data, leader: str, follower: str, lags: int = 3) -> float:
    """R^2 of the follower's 1-s return on the leader's previous ``lags`` returns."""
    a, b = second_returns(data, leader), second_returns(data, follower)
    y = b[lags:]
    x = np.column_stack([a[lags - k: len(a) - k] for k in range(1, lags + 1)] + [np.ones(len(y))])
    resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    return 1.0 - resid.var() / y.var()


@pytest.mark.parametrize(("leadership", "expected"), [("NQ_leads", 1), ("ES_leads", -1), ("balanced", 0)])
def test_cross_correlation_peaks_at_the_leaders_lag(leadership, expected):
    data = session("normal", seed=5, start=MIDDAY, leadership=leadership, strength=0.15)
    assert _peak_lag(data) == expected


def _lead_time(data, leader="NQ", follower="ES") -> float:
    """Centroid (seconds) of the positive part of corr(leader(t), follower(t + k)), k = -3..5."""
    a, b = second_returns(data, leader), second_returns(data, follower)
    lags = np.arange(-3, 6)
    rho = np.clip([_xcorr(a, b, int(k)) for k in lags], 0, None)
    return float(np.sum(lags * rho) / np.sum(rho))


def test_strength_scales_the_lead():
    """The follower repeats the leader's moves ``strength x 5`` seconds later."""
    strengths = (0.0, 0.05, 0.15, 0.3, 0.4)
    lead = {s: _lead_time(session("normal", seed=5, start=MIDDAY, strength=s)) for s in strengths}
    assert all(lead[a] < lead[b] for a, b in zip(strengths, strengths[1:], strict=False)), lead
    for s in strengths:
        assert abs(lead[s] - 5 * s) < 0.35, (s, lead[s])
    r2 = {s: _predictability(session("normal", seed=5, start=MIDDAY, strength=s), "NQ", "ES") for s in strengths}
    assert r2[0.0] < 0.01 < r2[0.05] < r2[0.15], r2
    reverse = _predictability(session("normal", seed=5, start=MIDDAY, strength=0.15), "ES", "NQ")
    assert reverse < 0.1 * r2[0.15]
    assert _peak_lag(session("normal", seed=5, start=MIDDAY, strength=0.0)) == 0


def test_leadership_feature_points_at_the_leader():
    for leadership, leader in (("NQ_leads", "NQ"), ("ES_leads", "ES")):
        lf = session("normal", seed=5, start=MIDDAY, leadership=leadership, strength=0.3)["leadership_features"]
        means = lf.groupby("symbol")["leadership_strength"].mean()
        assert means[leader] > 0.1 > means.drop(leader).iloc[0]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_walls_bracket_price_and_context_is_bounded(scenario):
    data = session(scenario, seed=11, minutes=20)
    ctx = data["context"]
    q = quotes(data, "ES")
    mid = q["mid"].to_numpy()[np.searchsorted(q["ts"].to_numpy(), ctx["ts"].to_numpy(), side="right") - 1]
    assert (ctx["put_wall"].to_numpy() < mid).all() and (mid < ctx["call_wall"].to_numpy()).all()
    assert ctx["pin_strength"].between(0, 1).all() and ctx["vix"].gt(0).all() and ctx["put_call_ratio"].gt(0).all()
    if scenario == "gamma_pin":
        assert (ctx["pin_strength"] >= 0.7).all()
    else:
        assert (ctx["pin_strength"] < 0.6).all()


def test_vix_moves_against_price_and_pcr_follows_flow():
    down, up = session("trend_down", seed=7), session("trend_up", seed=7)
    for data, sign in ((down, 1), (up, -1)):
        ctx = data["context"]
        assert sign * (ctx["vix"].iloc[-1] - ctx["vix"].iloc[0]) > 0
    assert down["context"]["put_call_ratio"].mean() > up["context"]["put_call_ratio"].mean()
    ctx, q = down["context"], quotes(down)
    es = q.groupby(q["ts"] // 60_000)["mid"].last().to_numpy()
    vix = ctx.groupby(ctx["ts"] // 60_000)["vix"].last().to_numpy()
    assert np.corrcoef(np.diff(np.log(es)), np.diff(np.log(vix)))[0, 1] < -0.5


def test_without_options_or_labels_the_tables_are_empty_and_features_nan():
    from synth_helpers import US_OPEN

    from mia_pipeline.synthetic import GenConfig, MIA_IA_DataGenerator

    data = MIA_IA_DataGenerator(seed=1).generate_realistic_session(
        GenConfig(start=US_OPEN, minutes=5), options_context=False, include_labels=False)
    assert data["context"].empty and list(data["context"].columns)[0] == "ts"
    assert data["ground_truth"].empty
    assert data["leadership_features"]["options_flow_bias"].isna().all()
    assert data["leadership_features"]["gamma_proximity"].isna().all()
