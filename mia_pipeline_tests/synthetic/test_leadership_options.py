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


def _mass(data, leader="NQ", follower="ES") -> dict[int, float]:
    """corr(leader(t), follower(t + k)) for k = -5..5 s."""
    a, b = second_returns(data, leader), second_returns(data, follower)
    return {k: _xcorr(a, b, k) for k in range(-5, 6)}


def _lag0_share(rho: dict[int, float]) -> float:
    return abs(rho[0]) / sum(abs(v) for v in rho.values())


@pytest.mark.parametrize(("leadership", "ahead"), [("NQ_leads", 1), ("ES_leads", -1), ("balanced", 0)])
def test_comovement_is_mostly_simultaneous_with_the_leader_ahead(leadership, ahead):
    """Like real index futures: the 1-s cross-correlation peaks at lag 0 for every leadership; the
    configured leader's side of the lags carries the rest (balanced: neither)."""
    data = session("normal", seed=5, start=MIDDAY, minutes=240, leadership=leadership, strength=0.3)
    rho = _mass(data)
    assert _peak_lag(data) == 0
    assert _lag0_share(rho) >= 0.5, rho
    if ahead:
        assert ahead * (rho[1] - rho[-1]) > 0.1, rho
    else:
        assert abs(rho[1] - rho[-1]) < 0.05, rho


def test_strength_moves_only_the_lagged_share():
    """The follower sees a share ``strength`` of the common moves 1 s late and the rest at once:
    the lag-1 share of the co-movement grows with the strength (about equal to it), the total does
    not, and lag 0 keeps most of the |cross-correlation| mass at every strength."""
    strengths = (0.0, 0.05, 0.15, 0.3, 0.4)
    rho = {s: _mass(session("normal", seed=5, start=MIDDAY, minutes=240, strength=s)) for s in strengths}
    lagged = {s: rho[s][1] / (rho[s][0] + rho[s][1]) for s in strengths}
    assert all(lagged[a] < lagged[b] for a, b in zip(strengths, strengths[1:], strict=False)), lagged
    for s in strengths:
        assert abs(lagged[s] - s) < 0.08, (s, lagged[s])
        assert _lag0_share(rho[s]) >= 0.5, (s, rho[s])
    total = [rho[s][0] + rho[s][1] for s in strengths]
    assert max(total) - min(total) < 0.1, total
    r2 = {s: _predictability(session("normal", seed=5, start=MIDDAY, minutes=240, strength=s), "NQ", "ES")
          for s in strengths}
    assert r2[0.0] < 0.01 < r2[0.15] < r2[0.3] < r2[0.4], r2
    reverse = _predictability(session("normal", seed=5, start=MIDDAY, minutes=240, strength=0.3), "ES", "NQ")
    assert reverse < 0.2 * r2[0.3]


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
