"""Each scenario leaves a signature that is measured in the data, and labels that match it."""

import numpy as np
import pytest
from synth_helpers import MIDDAY, minute_mids, quotes, session

SEEDS = (3, 7)


def _sigma_1min(mids: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.diff(mids) ** 2)))


def _labels(data, symbol="ES"):
    gt = data["ground_truth"]
    return gt[gt["symbol"] == symbol]


def _footprint(data, symbol="ES"):
    fp = data["footprint"]
    return fp[fp["symbol"] == symbol]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("scenario", "side", "label"), [("trend_up", 1, "long_bias"), ("trend_down", -1, "short_bias")])
def test_trend_moves_price_by_several_sigmas(scenario, side, label, seed):
    data = session(scenario, seed=seed)
    for symbol in ("ES", "NQ"):
        mids = minute_mids(data, symbol)
        net = side * (mids[-1] - mids[0])
        assert net >= 1.5 * _sigma_1min(mids) * np.sqrt(len(mids)), symbol
        assert np.mean(np.sign(np.diff(mids)) == side) > 0.5
    assert (_labels(data)["label"] == label).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_chop_is_range_bound_and_quieter_than_normal(seed):
    chop, normal = session("chop", seed=seed, minutes=180), session("normal", seed=seed, minutes=180)
    for symbol in ("ES", "NQ"):
        mids = minute_mids(chop, symbol)
        sigma = _sigma_1min(mids)
        # A random walk's range is ~1.6 sigma sqrt(T); an OU process with a 2-min half-life stays far inside.
        assert (mids.max() - mids.min()) < 1.0 * sigma * np.sqrt(len(mids)), symbol
        r15 = mids[15:] - mids[:-15]  # overlapping 15-min returns: variance ratio well below 1
        assert np.var(r15) / (15 * np.var(np.diff(mids))) < 0.6
        assert sigma < 0.8 * _sigma_1min(minute_mids(normal, symbol))
    assert (_labels(chop)["side"] == 0).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_news_spike_bursts_volatility_widens_spreads_thins_book(seed):
    data = session("news_spike", seed=seed)
    q = quotes(data)
    sec = q.groupby(q["ts"] // 1000).agg(mid=("mid", "last"), spread=("ask", "last"), bid=("bid", "last"),
                                          size=("bid_size", "median"), volume=("last_size", "sum"))
    sec["spread"] -= sec["bid"]
    move = sec["mid"].diff().abs().rolling(60).sum()
    t = int(np.nanargmax(move.to_numpy())) - 59  # start of the most volatile minute
    pre, post = sec.iloc[max(0, t - 600): t - 60], sec.iloc[t: t + 180]
    rv = lambda s: np.sqrt(np.nanmean(s["mid"].diff() ** 2))  # noqa: E731
    assert rv(post) >= 3.0 * rv(pre)
    assert post["spread"].mean() > 1.2 * pre["spread"].mean()
    assert post["size"].median() < 0.6 * pre["size"].median()
    assert post["volume"].mean() > 2.0 * pre["volume"].mean()
    events = _labels(data)
    events = events[events["label"] == "volatility_event"]
    assert len(events) and abs(events["ts"].iloc[0] // 1000 - sec.index[t]) <= 60
    assert (events["side"] == 0).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_gamma_pin_holds_price_at_the_pin_with_low_volatility(seed):
    pin_data, normal = session("gamma_pin", seed=seed, start=MIDDAY), session("normal", seed=seed, start=MIDDAY)
    ctx = pin_data["context"]
    assert (ctx["pin_strength"] >= 0.7).all()
    pin = (ctx["call_wall"] + ctx["put_wall"]) / 2
    assert pin.nunique() == 1
    pin = float(pin.iloc[0])
    mids = quotes(pin_data)["mid"].to_numpy()
    second_half = mids[len(mids) // 2:]
    sigma = _sigma_1min(minute_mids(pin_data))
    assert np.median(np.abs(second_half - pin)) <= max(2.0, 1.5 * sigma)
    assert sigma < 0.7 * _sigma_1min(minute_mids(normal))
    assert (_labels(pin_data)["side"] == 0).all()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("scenario", "side", "label"),
                         [("orderflow_accumulation", 1, "long_bias"), ("orderflow_distribution", -1, "short_bias")])
def test_orderflow_absorption_then_breakout(scenario, side, label, seed):
    data = session(scenario, seed=seed)
    for symbol in ("ES", "NQ"):
        q = quotes(data, symbol)
        cut = q["ts"].iloc[int(0.55 * len(q))]
        phase = q[q["ts"] < cut]
        fp = _footprint(data, symbol)
        fp_a = fp[fp["bar_start_ts"] < cut]
        aggressive = fp_a["ask_volume"].sum() if side > 0 else fp_a["bid_volume"].sum()
        assert aggressive / (fp_a["ask_volume"].sum() + fp_a["bid_volume"].sum()) >= 0.6, symbol
        # the level the aggression runs into: the highest ask (lowest bid) of the absorption phase
        quote_col, size_col = ("ask", "ask_size") if side > 0 else ("bid", "bid_size")
        level = phase[quote_col].max() if side > 0 else phase[quote_col].min()
        at_level = phase[quote_col] == level
        assert at_level.mean() >= 0.10, "price pressed against the level"
        assert phase.loc[at_level, size_col].median() >= 2 * phase.loc[~at_level, size_col].median(), "absorbing wall"
        tick = 0.25
        assert side * (q["mid"].iloc[-1] - level) >= 8 * tick, "breakout beyond the level"
    assert (_labels(data)["label"] == label).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_confluence_breakout_is_clean_and_aligned(seed):
    data = session("confluence_breakout", seed=seed)
    gt = _labels(data)
    directional = gt[gt["side"] != 0]
    side = int(directional["side"].iloc[0])
    assert (directional["side"] == side).all() and directional["ts"].min() > gt["ts"].min()
    half = directional["ts"].min()
    bars = data["bars"]
    for symbol in ("ES", "NQ"):
        mids = minute_mids(data, symbol)
        k = len(mids) // 2
        assert side * (mids[-1] - mids[k]) >= 2.0 * _sigma_1min(mids[k:]) * np.sqrt(len(mids) - k), symbol
        last = bars[bars["symbol"] == symbol].iloc[-1]
        assert side * (last["close"] - last["vwap"]) > 0, "finishes on the breakout side of VWAP"
    lf = data["leadership_features"]
    assert lf.loc[lf["ts"] >= half, "confluence_score"].mean() > lf.loc[lf["ts"] < half, "confluence_score"].mean() + 0.05


@pytest.mark.parametrize("seed", SEEDS)
def test_delta_divergence_new_high_on_falling_delta(seed):
    data = session("delta_divergence", seed=seed)
    gt = _labels(data)
    warn = (gt["label"] == "divergence_warning").to_numpy()
    assert (gt.loc[warn, "side"] == -1).all()
    starts = np.flatnonzero(warn & ~np.r_[False, warn[:-1]])
    ends = np.flatnonzero(warn & ~np.r_[warn[1:], False])
    assert len(starts) >= 4
    ts = gt["ts"].to_numpy()
    for symbol in ("ES", "NQ"):
        q = quotes(data, symbol)
        fp = _footprint(data, symbol)
        for a, b in zip(starts, ends, strict=True):
            t0, t1 = ts[a], ts[b] - 60_000  # the label outlasts the episode by 60 s
            assert 30_000 <= t1 - t0 <= 61_000
            before = q[(q["ts"] >= t0 - 300_000) & (q["ts"] < t0)]["mid"]
            at_end = q[q["ts"] <= t1]["mid"].iloc[-1]
            assert at_end > before.max(), f"{symbol}: new high at {t1}"
            window = fp[(fp["bar_start_ts"] >= t0) & (fp["bar_start_ts"] < t1)]
            assert window["delta"].sum() < 0, f"{symbol}: delta falls over the episode"
    lf = data["leadership_features"]
    es = lf[lf["symbol"] == "ES"]
    assert es.loc[warn, "delta_divergence"].mean() > es.loc[~warn, "delta_divergence"].mean() + 0.1
