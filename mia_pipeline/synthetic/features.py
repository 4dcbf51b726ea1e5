"""Leadership features and ground-truth labels, one row per open second and symbol.

Rows are stamped with the time of the second's last L1 row and use only data up to that row
(features are causal; labels look forward by design). Windows are trailing, in open seconds:
- ``volume_imbalance`` (30 s): (buy - sell) / (buy + sell) aggressor volume, in [-1, 1].
- ``delta_divergence`` (45 s): > 0 when price rose while delta fell (bearish), < 0 for the mirror,
  0 when price and delta agree; in [-1, 1].
- ``confluence_score`` (60 s): mean agreement of price-vs-VWAP, ES-vs-NQ direction and order flow
  with the momentum, in [0, 1] (0.5 = no alignment).
- ``sierra_pattern_strength`` (30 s): absorption pattern, one-sided flow without price progress, [0, 1].
- ``leadership_strength`` (300 s): corr(own return, other's next return) - corr(other's return,
  own next return), in [-1, 1]: positive for the leader.
- ``volatility_regime``: "low" / "normal" / "high" realized vol (60 s) vs the trailing 30 min.
- ``options_flow_bias``: tanh(2 (1 - put_call_ratio)); ``gamma_proximity``: exp(-|ES - gamma_flip| /
  20 pt), the same market-wide value for both symbols; NaN when there is no options context.
Labels: the scenario's truth where it defines one, elsewhere the 5-min forward return of the mid
versus its expected sigma (|z| > 0.75 -> long_bias / short_bias, else neutral).
"""

from __future__ import annotations

import numpy as np

from mia_pipeline.synthetic.config import LABELS
from mia_pipeline.synthetic.scenarios import CODE, ScenarioPlan

REGIMES = np.array(["low", "normal", "high"], dtype=object)
FORWARD_S = 300
LABEL_Z = 0.75


def rolling_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing sum over ``w`` rows (fewer at the start), along axis 0."""
    c = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)])
    t = np.arange(1, len(x) + 1)
    return c[t] - c[np.maximum(t - w, 0)]


def lagged(x: np.ndarray, w: int) -> np.ndarray:
    """``x`` shifted by ``w`` rows (the first row repeated at the start)."""
    return x[np.maximum(np.arange(len(x)) - w, 0)]


def _rolling_corr(x: np.ndarray, y: np.ndarray, w: int) -> np.ndarray:
    s = {k: rolling_sum(v, w) for k, v in (("x", x), ("y", y), ("xx", x * x), ("yy", y * y), ("xy", x * y))}
    n = np.minimum(np.arange(1, len(x) + 1), w)[:, None] if x.ndim > 1 else np.minimum(np.arange(1, len(x) + 1), w)
    cov = s["xy"] / n - s["x"] * s["y"] / n**2
    var = (s["xx"] / n - (s["x"] / n) ** 2) * (s["yy"] / n - (s["y"] / n) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(var)
    return np.clip(np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)


def leadership_features(
    mid: np.ndarray,  # (n_sec, 2) mid at each second's last row
    vwap: np.ndarray,  # (n_sec, 2) session VWAP at that row (mid before the first trade)
    buy: np.ndarray,  # (n_sec, 2) buyer-initiated volume in the second
    sell: np.ndarray,
    sigma: np.ndarray,  # (n_sec, 2) expected 1-s log-return sigma
    es_mid: np.ndarray | None,
    context: dict[str, np.ndarray] | None,
) -> dict[str, np.ndarray]:
    lm = np.log(mid)
    r = np.diff(lm, axis=0, prepend=lm[:1])
    var = sigma**2

    def z_move(w: int) -> np.ndarray:
        return (lm - lagged(lm, w)) / np.sqrt(np.maximum(rolling_sum(var, w), 1e-300))

    def imbalance(w: int) -> np.ndarray:
        return rolling_sum(buy - sell, w) / np.maximum(rolling_sum(buy + sell, w), 1.0)

    imb30, imb45, imb60 = imbalance(30), imbalance(45), imbalance(60)
    z30, z45, z60 = z_move(30), z_move(45), z_move(60)
    divergence = np.where(z45 * imb45 < 0, 0.5 * (np.tanh(z45) - np.tanh(3.0 * imb45)), 0.0)
    sd60 = np.sqrt(np.maximum(rolling_sum(var, 60), 1e-300))
    mom = np.tanh(z60)
    a_vwap = 0.5 * (1.0 + np.tanh((lm - np.log(vwap)) / sd60) * mom)
    a_pair = 0.5 * (1.0 + (mom[:, 0] * mom[:, 1])[:, None])
    a_flow = 0.5 * (1.0 + np.tanh(3.0 * imb60) * mom)
    confluence = (a_vwap + a_pair + a_flow) / 3.0
    sierra = np.tanh(2.5 * np.abs(imb30)) * np.exp(-0.5 * z30**2)
    lead = np.empty_like(r)
    for j in (0, 1):
        own, other = r[:, j], r[:, 1 - j]
        own_prev, other_prev = lagged(own, 1), lagged(other, 1)
        lead[:, j] = _rolling_corr(own_prev, other, 300) - _rolling_corr(other_prev, own, 300)
    rv_short = rolling_sum(r**2, 60) / np.minimum(np.arange(1, len(r) + 1), 60)[:, None]
    rv_long = rolling_sum(r**2, 1800) / np.minimum(np.arange(1, len(r) + 1), 1800)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.nan_to_num(np.sqrt(rv_short / rv_long), nan=1.0, posinf=2.0)
    regime = np.where(ratio < 0.7, 0, np.where(ratio > 1.5, 2, 1))
    if context is None or es_mid is None:
        flow = np.full(r.shape, np.nan)
        proximity = np.full(r.shape, np.nan)
    else:
        flow = np.repeat(np.tanh(2.0 * (1.0 - context["put_call_ratio"]))[:, None], 2, axis=1)
        proximity = np.repeat(np.exp(-np.abs(es_mid - context["gamma_flip"]) / 20.0)[:, None], 2, axis=1)
    return {
        "confluence_score": confluence,
        "delta_divergence": np.clip(divergence, -1.0, 1.0),
        "volume_imbalance": imb30,
        "sierra_pattern_strength": sierra,
        "leadership_strength": np.clip(lead, -1.0, 1.0),
        "volatility_regime": regime,
        "options_flow_bias": flow,
        "gamma_proximity": proximity,
    }


def ground_truth(mid: np.ndarray, sigma: np.ndarray, sec_ms: np.ndarray, plan: ScenarioPlan) -> tuple[np.ndarray, np.ndarray]:
    """Label codes (index into ``LABELS``) and confidences, (n_sec, 2) each."""
    lm = np.log(mid)
    n = len(lm)
    j = np.searchsorted(sec_ms, sec_ms + FORWARD_S * 1000, side="right") - 1
    cvar = np.concatenate([np.zeros((1, 2)), np.cumsum(sigma**2, axis=0)])
    horizon_var = cvar[j + 1] - cvar[np.arange(n) + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.nan_to_num((lm[j] - lm) / np.sqrt(horizon_var), nan=0.0)
    short_horizon = (j - np.arange(n) < 60)[:, None]
    z = np.where(short_horizon, 0.0, z)
    code = np.where(z > LABEL_Z, CODE["long_bias"], np.where(z < -LABEL_Z, CODE["short_bias"], CODE["neutral"]))
    conf = np.where(code == CODE["neutral"], 0.5 + 0.3 * np.clip(1.0 - np.abs(z) / LABEL_Z, 0, 1),
                    np.clip(0.5 + 0.15 * np.abs(z), 0.5, 0.95))
    conf = np.where(short_horizon, 0.5, conf)
    pinned = plan.label_code >= 0
    code = np.where(pinned, plan.label_code, code).astype(np.int8)
    conf = np.where(pinned, plan.label_conf, conf)
    assert len(LABELS) > int(code.max(initial=0))
    return code, np.round(conf, 4)
