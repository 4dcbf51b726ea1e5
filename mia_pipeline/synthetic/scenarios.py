"""The ten scenarios as plans: what each one changes in volatility, drift, order flow, book and labels.

A plan is built from the session's base volatility (before the scenario) and is then applied by the
generator: ``vol_mult_sec`` scales volatility, ``factor_drift`` is added to the common ES/NQ factor
(so the leader moves first), ``shapes`` reshape each symbol's latent log-price path (mean reversion,
caps at a resistance/support, divergence ramps), the remaining arrays bias order flow, volume, book
and spreads, and ``label_code`` pins the ground truth where the scenario defines it (-1 = derive the
label from the forward return). Phase boundaries are fractions of the session's open time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mia_pipeline.synthetic import paths
from mia_pipeline.synthetic.config import LABELS
from mia_pipeline.synthetic.schedule import Grid

CODE = {label: i for i, label in enumerate(LABELS)}
FROM_FORWARD_RETURN = -1


@dataclass
class PlanInputs:
    grid: Grid
    rng: np.random.Generator
    sigma_sec: np.ndarray  # ES log-return sigma per second, before the scenario
    start_prices: tuple[float, float]  # ES, NQ
    nq_vol_ratio: float
    tick: float


@dataclass
class ScenarioPlan:
    vol_mult_sec: np.ndarray
    factor_drift: np.ndarray
    buy_bias: np.ndarray
    volume_mult: np.ndarray
    spread_extra: np.ndarray
    size_mult: np.ndarray
    label_code: np.ndarray
    label_conf: np.ndarray
    vix_bump_sec: np.ndarray
    pcr_shift_sec: np.ndarray
    shapes: list[Callable[[np.ndarray, np.ndarray], None]] = field(default_factory=list)
    absorb: dict[int, tuple[int, float]] = field(default_factory=dict)  # symbol -> (side, price)
    absorb_until: int = 0  # steps before this never quote through the absorbing level
    pin_price: float | None = None  # ES pin strike (gamma_pin)


def _blank(g: Grid) -> ScenarioPlan:
    n, s = g.n_steps, g.n_sec
    return ScenarioPlan(
        vol_mult_sec=np.ones(s), factor_drift=np.zeros(n), buy_bias=np.zeros((n, 2)),
        volume_mult=np.ones(n), spread_extra=np.zeros(n, dtype=np.int64), size_mult=np.ones(n),
        label_code=np.full((s, 2), FROM_FORWARD_RETURN, dtype=np.int8), label_conf=np.zeros((s, 2)),
        vix_bump_sec=np.zeros(s), pcr_shift_sec=np.zeros(s),
    )


def _label(plan: ScenarioPlan, g: Grid, lo: int, hi: int, label: str, conf) -> None:
    """Label the seconds of steps [lo, hi) for both symbols."""
    s0, s1 = g.step_sec[lo], g.step_sec[max(lo, hi - 1)] + 1
    plan.label_code[s0:s1] = CODE[label]
    plan.label_conf[s0:s1] = np.asarray(conf)[..., None] if np.ndim(conf) else conf


def _step_sigma(inp: PlanInputs, plan: ScenarioPlan) -> np.ndarray:
    g = inp.grid
    m = np.bincount(g.step_sec, minlength=g.n_sec)
    return (inp.sigma_sec * plan.vol_mult_sec / np.sqrt(np.maximum(m, 1)))[g.step_sec]


def _sym_scale(inp: PlanInputs) -> np.ndarray:
    return np.array([1.0, inp.nq_vol_ratio])


# The drift that tops a move up also adds to the spread of the 1-min moves: aim a little higher.
REALISED_MARGIN = 1.15
NEWS_SIGMAS, NEWS_MARGIN = 8.0, 1.2  # news_spike's event, in 1-min sigmas of the minutes before it
PRESS_MARGIN = 1.0  # orderflow: the anchor lies this many OU sigmas beyond the absorbing level


def _minute_ends(g: Grid, lo: int, hi: int) -> np.ndarray:
    """``lo - 1`` (the level before the window) then the last step of each minute of steps [lo, hi)."""
    minute = (g.l1_ts[lo:hi] - g.l1_ts[lo]) // 60_000
    return np.r_[lo - 1, lo + np.flatnonzero(np.diff(minute)), hi - 1]


def _ensure(inp: PlanInputs, plan: ScenarioPlan, lo: int, hi: int, side: int, sigmas: float) -> None:
    """Guarantee a net move of ``sigmas`` sigmas over steps [lo, hi) for both symbols: sigmas of the
    model and of the path's own 1-min moves over the window (x sqrt(minutes))."""
    sig = _step_sigma(inp, plan)
    need = sigmas * np.sqrt(np.sum(sig[lo:hi] ** 2)) * _sym_scale(inp)
    ends = _minute_ends(inp.grid, lo, hi)
    realised = (ends, sigmas * REALISED_MARGIN, len(ends) - 1)
    plan.shapes.append(lambda L, s: paths.ensure_move(L, lo, hi, side, need, sig, realised))


def _trend(inp: PlanInputs, plan: ScenarioPlan, side: int) -> None:
    sig = _step_sigma(inp, plan)
    plan.factor_drift += side * 4.0 * np.sqrt(np.sum(sig**2)) * sig / sig.sum()
    _ensure(inp, plan, 0, inp.grid.n_steps, side, 2.5)
    plan.pcr_shift_sec -= side * 0.12
    _label(plan, inp.grid, 0, inp.grid.n_steps, "long_bias" if side > 0 else "short_bias", 0.8)


def _phi(g: Grid, half_life_s: float) -> float:
    """Per-step AR(1) coefficient of an OU half-life given in seconds."""
    steps_per_s = g.n_steps / max(g.n_sec, 1)
    return 0.5 ** (1.0 / max(half_life_s * steps_per_s, 1.0))


def _mean_revert(inp: PlanInputs, plan: ScenarioPlan, lo: int, hi: int, half_life_s: float,
                 anchors: np.ndarray) -> None:
    phi = _phi(inp.grid, half_life_s)
    plan.shapes.append(lambda L, sig: paths.mean_revert(L, lo, hi, anchors, phi))


def _orderflow(inp: PlanInputs, plan: ScenarioPlan, side: int) -> None:
    """Accumulation (side=+1) under a resistance or distribution (-1) above a support, then break."""
    g, n = inp.grid, inp.grid.n_steps
    cut = int(0.6 * n)
    plan.vol_mult_sec[: g.step_sec[cut]] = 0.7
    sig = _step_sigma(inp, plan)
    sd_a = np.sqrt(np.sum(sig[:cut] ** 2))
    p0 = np.asarray(inp.start_prices)
    scale = _sym_scale(inp)
    dist = np.maximum(0.6 * sd_a * scale, 4 * inp.tick / p0)
    level = np.round(p0 * np.exp(side * dist) / inp.tick) * inp.tick  # resistance / support
    # Pushed against the level: the mean-reversion anchor lies beyond it (by PRESS_MARGIN of the path's
    # own OU sigma), so once the price arrives it keeps pressing and the cap holds it there. An anchor
    # short of the level left the price hovering below it, touching it < 10 % of the time on some seeds
    # (and a volatility burst could carry it away for minutes with a half-life of a tenth of the phase)...
    half_life = float(np.clip(cut / max(g.n_steps / g.n_sec, 1) / 20, 60, 1800))
    phi = _phi(g, half_life)
    levels = np.log(level / p0)
    plan.shapes.append(lambda L, s: paths.press(L, 0, cut, levels, side, phi, PRESS_MARGIN))
    caps = np.log((level - side * 0.6 * inp.tick) / p0)  # ...and held there: the quote touches it
    plan.shapes.append(lambda L, s: paths.cap(L, 0, cut, caps, side))
    plan.absorb = {0: (side, float(level[0])), 1: (side, float(level[1]))}
    plan.absorb_until = cut
    plan.buy_bias[:cut] = 0.22 * side
    plan.buy_bias[cut:] = 0.12 * side
    plan.volume_mult[:cut] = 1.3
    front = 1.0 + 2.0 * np.exp(-np.arange(n - cut) / max(0.15 * (n - cut), 1.0))
    w = sig[cut:] * front
    plan.factor_drift[cut:] += side * 3.0 * np.sqrt(np.sum(sig[cut:] ** 2)) * w / w.sum()
    _ensure(inp, plan, cut, n, side, 2.0)
    plan.pcr_shift_sec -= side * 0.2
    label = "long_bias" if side > 0 else "short_bias"
    _label(plan, g, 0, cut, label, np.linspace(0.65, 0.85, g.step_sec[cut - 1] + 1))
    _label(plan, g, cut, n, label, 0.85)


def _news(inp: PlanInputs, plan: ScenarioPlan) -> None:
    g, rng = inp.grid, inp.rng
    t0_sec = int(rng.uniform(0.35, 0.55) * g.n_sec)
    t0 = g.sec_ms[t0_sec]
    side = 1 if rng.random() < 0.5 else -1
    dt_sec = np.maximum((g.sec_ms - t0) / 1000.0, -1.0)
    after_sec = dt_sec >= 0
    plan.vol_mult_sec = np.where(after_sec, 1.0 + 7.0 * np.exp(-np.maximum(dt_sec, 0) / 300.0), 1.0)
    dt = (g.l1_ts - t0) / 1000.0
    after = dt >= 0
    decay = lambda tau: np.where(after, np.exp(-np.maximum(dt, 0) / tau), 0.0)  # noqa: E731
    jump_steps = after & (dt < 5.0)
    sigma_1min = inp.sigma_sec[t0_sec] * np.sqrt(60)
    plan.factor_drift[jump_steps] += side * 8.0 * sigma_1min / max(jump_steps.sum(), 1)
    # ...and at least 8 sigmas of the 1-min moves measured before it (whatever GARCH did meanwhile)
    jlo, jhi = int(np.argmax(jump_steps)), int(len(jump_steps) - np.argmax(jump_steps[::-1]))
    if jump_steps.any() and jlo >= 1:
        realised = (_minute_ends(g, 0, jlo), NEWS_SIGMAS * NEWS_MARGIN, 1.0)
        flat = np.ones(g.n_steps)
        plan.shapes.append(lambda L, s: paths.ensure_move(L, jlo, jhi, side, np.zeros(2), flat, realised))
    plan.spread_extra = np.floor(3.0 * decay(90.0)).astype(np.int64)
    plan.size_mult = 1.0 - 0.85 * decay(300.0)
    plan.volume_mult = 1.0 + 5.0 * decay(240.0)
    plan.buy_bias[:] = (side * 0.2 * decay(60.0))[:, None]
    plan.vix_bump_sec = np.where(after_sec, 0.25 * np.exp(-np.maximum(dt_sec, 0) / 1800.0), 0.0)
    lo = int(np.searchsorted(g.l1_ts, t0))
    hi = int(np.searchsorted(g.l1_ts, t0 + 300_000))
    _label(plan, g, lo, hi, "volatility_event", 0.9)


def _gamma_pin(inp: PlanInputs, plan: ScenarioPlan) -> None:
    rng = inp.rng
    es0, nq0 = inp.start_prices
    offset = rng.uniform(4.0, 10.0) * (1 if rng.random() < 0.5 else -1)
    pin = round((es0 + offset) / 5.0) * 5.0
    plan.pin_price = pin
    plan.vol_mult_sec[:] = 0.45
    anchors = np.log(np.array([pin / es0, pin / es0]))
    _mean_revert(inp, plan, 0, inp.grid.n_steps, 150.0, anchors)
    _label(plan, inp.grid, 0, inp.grid.n_steps, "neutral", 0.8)


def _confluence(inp: PlanInputs, plan: ScenarioPlan) -> None:
    g, n = inp.grid, inp.grid.n_steps
    side = 1 if inp.rng.random() < 0.5 else -1
    cut = n // 2
    plan.vol_mult_sec[: g.step_sec[cut]] = 0.8
    plan.vol_mult_sec[g.step_sec[cut]:] = 0.9
    _mean_revert(inp, plan, 0, cut, 120.0, np.zeros(2))
    sig = _step_sigma(inp, plan)
    plan.factor_drift[cut:] += side * 4.0 * np.sqrt(np.sum(sig[cut:] ** 2)) * sig[cut:] / sig[cut:].sum()
    _ensure(inp, plan, cut, n, side, 2.5)
    plan.buy_bias[cut:] = 0.1 * side
    plan.pcr_shift_sec[g.step_sec[cut]:] -= side * 0.1
    _label(plan, g, 0, cut, "neutral", 0.6)
    _label(plan, g, cut, n, "long_bias" if side > 0 else "short_bias", 0.85)


def _divergence(inp: PlanInputs, plan: ScenarioPlan) -> None:
    g, rng = inp.grid, inp.rng
    steps_per_s = g.n_steps / max(g.n_sec, 1)
    minutes = g.n_sec / 60.0
    k = max(1, int(minutes / 8))
    usable = g.n_steps - int(360 * steps_per_s)  # episodes start after 5 min, leave room at the end
    starts = []
    for i in range(k):
        u = (i + 0.5 + rng.uniform(-0.2, 0.2)) / k
        starts.append(int(300 * steps_per_s) + int(u * max(usable - int(300 * steps_per_s), 1)))
    lengths = [int(rng.uniform(30, 60) * steps_per_s) for _ in starts]
    episodes = [(a, min(a + m, g.n_steps - 1)) for a, m in zip(starts, lengths, strict=True) if a < g.n_steps - 2]
    lookback = int(300 * steps_per_s)
    reversal = int(180 * steps_per_s)
    ticks = inp.tick / np.asarray(inp.start_prices)
    plan.shapes.append(lambda L, sig: paths.divergence_ramps(L, sig, episodes, lookback, reversal, ticks))
    for a, b in episodes:
        plan.buy_bias[a:b] = -0.35
        _label(plan, g, a, min(b + int(60 * steps_per_s), g.n_steps), "divergence_warning", 0.75)


def make_plan(scenario: str, inp: PlanInputs) -> ScenarioPlan:
    """Build the plan of ``scenario`` (one of ``SCENARIOS``) for this session."""
    plan = _blank(inp.grid)
    if inp.grid.n_steps < 2:
        return plan
    n = inp.grid.n_steps
    if scenario == "trend_up":
        _trend(inp, plan, 1)
    elif scenario == "trend_down":
        _trend(inp, plan, -1)
    elif scenario == "chop":
        plan.vol_mult_sec[:] = 0.6
        _mean_revert(inp, plan, 0, n, 90.0, np.zeros(2))
        _label(plan, inp.grid, 0, n, "neutral", 0.7)
    elif scenario == "news_spike":
        _news(inp, plan)
    elif scenario == "gamma_pin":
        _gamma_pin(inp, plan)
    elif scenario == "orderflow_accumulation":
        _orderflow(inp, plan, 1)
    elif scenario == "orderflow_distribution":
        _orderflow(inp, plan, -1)
    elif scenario == "confluence_breakout":
        _confluence(inp, plan)
    elif scenario == "delta_divergence":
        _divergence(inp, plan)
    return plan
