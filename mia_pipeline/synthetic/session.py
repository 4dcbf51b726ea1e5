"""One session end to end: schedule -> volatility -> scenario -> latent paths -> the seven tables.

Everything is array code over the whole session; the only Python loops run over trading days,
scan blocks, scenario episodes and the two symbols.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from mia_pipeline.synthetic import frames
from mia_pipeline.synthetic.bars import Trades, _runs, bars_of, footprint_of, trading_day
from mia_pipeline.synthetic.config import LABEL_SIDE, LABELS, GenConfig
from mia_pipeline.synthetic.context import build_context
from mia_pipeline.synthetic.features import REGIMES, ground_truth, leadership_features
from mia_pipeline.synthetic.microstructure import L1Arrays, book_chunks, build_l1
from mia_pipeline.synthetic.model import MarketModel
from mia_pipeline.synthetic.parquet import ROW_GROUP_ROWS
from mia_pipeline.synthetic.paths import latent_log_paths, leadership_lags
from mia_pipeline.synthetic.scenarios import PlanInputs, make_plan
from mia_pipeline.synthetic.schedule import build_grid, vol_profile
from mia_pipeline.synthetic.volatility import ar1, garch_unit_variance, student_t

BURN_IN_S = 7200


def simulate(rng: np.random.Generator, cfg: GenConfig, scenario: str, leadership: str, strength: float,
             options_context: bool, include_labels: bool, model: MarketModel,
             tables: tuple[str, ...] = frames.TABLES,
             on_table: Callable[[str, pa.Table], None] | None = None,
             on_chunk: Callable[[str, pa.Table], None] | None = None) -> dict[str, pa.Table]:
    """The session's tables as Arrow tables (empty tables if Globex is closed throughout).

    ``tables`` limits what is built (L1 always is); the book, context and feature streams draw from
    their own child generators, so leaving a table out does not change the others. ``on_table`` is
    called with each requested table as soon as it is complete (e.g. to start writing it), and
    ``on_chunk`` with each ``ROW_GROUP_ROWS``-row chunk of the L2 table while it is being built.
    """
    out = _Tables(tables, on_table, on_chunk)
    unknown = set(tables) - set(frames.TABLES)
    if unknown:
        raise ValueError(f"unknown tables {sorted(unknown)}; valid: {', '.join(frames.TABLES)}")
    rng, rng_book, rng_context = rng.spawn(3)
    grid = build_grid(cfg.start_ms, cfg.end_ms, cfg.l1_interval_ms, cfg.l2_interval_ms)
    if grid.n_steps == 0:
        for name in tables:
            out[name] = frames.empty(name)
        return out.result()
    n_sec, step_sec, tick = grid.n_sec, grid.step_sec, cfg.tick_size
    start = np.array([cfg.es_start_price, cfg.nq_start_price])
    ratio = np.array([1.0, model.nq_vol_ratio])

    # Volatility per second: GARCH(1,1) on Student-t shocks x intraday profile x trading-day factor.
    shocks = student_t(rng, model.t_nu, (4, n_sec))
    h = garch_unit_variance(shocks[0], model.garch_alpha, model.garch_beta,
                            student_t(rng, model.t_nu, BURN_IN_S), h_max=model.garch_cap**2)
    garch = np.sqrt(h)
    n_days = int(grid.sec_day.max()) + 1
    sd = model.daily_vol_sd
    day_factor = np.exp(sd * rng.standard_normal(n_days) - sd * sd)[grid.sec_day]  # E[f^2] = 1
    if model.slow_vol_sd > 0:  # slow log-vol component, stationary from the first second
        phi = 0.5 ** (1.0 / model.slow_vol_half_life_s)
        sv = model.slow_vol_sd
        x = ar1(rng.standard_normal(n_sec) * sv * np.sqrt(1 - phi * phi), phi, rng.standard_normal() * sv)
        garch = garch * np.exp(x - sv * sv)  # E[f^2] = 1
    # The cap bounds the whole stochastic multiplier (GARCH x slow component x day factor): clipping the
    # GARCH factor alone let a capped GARCH burst compound with a high slow-vol hour (17-20 sigma minutes).
    # ``garch`` keeps the day factor out (the volume model applies it on its own).
    garch = np.clip(garch * day_factor, 1.0 / model.garch_cap, model.garch_cap) / day_factor
    profile = vol_profile(grid.sec_et_hour, flat=not model.intraday)
    sigma_base = model.es_sigma_1min / np.sqrt(60.0) * profile * day_factor * garch

    plan = make_plan(scenario, PlanInputs(grid, rng, sigma_base, (start[0], start[1]), model.nq_vol_ratio, tick))
    sigma_sec = sigma_base * plan.vol_mult_sec
    lags = leadership_lags(leadership, strength, model, cfg.l1_interval_ms)
    # Scheduled (release / cash-open) jumps belong to `normal`; the other scenarios script their own events.
    # Jumps are sized in the time-of-day sigma (profile x scenario), not the GARCH / slow / day sigma:
    # a jump landing in a volatility cluster must not compound with it (17-25 sigma minutes).
    # A scenario's calm (chop, pin) scales jumps down, its burst (news) does not scale them up (60 sigma moves).
    sigma_jump = model.es_sigma_1min / np.sqrt(60.0) * profile * np.minimum(plan.vol_mult_sec, 1.0)
    drift = plan.factor_drift + _jumps(rng, model, sigma_jump, step_sec, grid.sec_et_hour,
                                       grid.day_ordinal[grid.sec_day], scenario == "normal")
    L, _ = latent_log_paths(rng, shocks, sigma_sec, step_sec, drift, lags, model)
    per_step = np.sqrt(np.maximum(np.bincount(step_sec, minlength=n_sec), 1))
    sig = (sigma_sec / per_step)[step_sec][:, None] * ratio
    for shape in plan.shapes:
        shape(L, sig)
    inc = np.diff(L, axis=0, prepend=np.zeros((1, 2)))
    l1 = build_l1(rng, grid, model, start * np.exp(L), inc, sig, garch[step_sec], day_factor[step_sec],
                  plan, tick, cfg.l1_interval_ms, (cfg.base_size_mean, cfg.base_size_std))
    symbols = (cfg.symbol_es, cfg.symbol_nq)
    out["l1"] = _l1_table(grid.l1_ts, l1, tick, symbols)
    if "l2" in tables:
        chunks = []
        for book in book_chunks(rng_book, grid, l1, plan, cfg.book_levels, tick, ROW_GROUP_ROWS // 2):
            chunks.append(_l2_table(book, symbols, cfg.book_levels))
            out.chunk("l2", chunks[-1])
        out["l2"] = pa.concat_tables(chunks) if chunks else frames.empty("l2")
    if "bars" in tables or "footprint" in tables:
        out["bars"], out["footprint"] = _bar_tables(grid.l1_ts, l1, tick, cfg.bar_tf_s * 1000, symbols)
    if not {"context", "leadership_features", "ground_truth"} & set(tables):
        return out.result()

    first = _runs(step_sec)
    last = np.concatenate([first[1:], [grid.n_steps]]) - 1
    mid = (l1.bid + l1.ask)[last] * (tick / 2.0)
    es_mid_first = (l1.bid[first, 0] + l1.ask[first, 0]) * (tick / 2.0)
    ctx = build_context(rng_context, es_mid_first, cfg.vix_start, plan) if options_context else None
    out["context"] = (frames.table("context", {"ts": grid.l1_ts[first], **ctx}) if ctx is not None
                         else frames.empty("context"))

    sigma_sym = sigma_sec[:, None] * ratio
    vol = l1.last_size.astype(np.float64)
    buy = np.column_stack([np.bincount(step_sec, np.where(l1.side[:, j] > 0, vol[:, j], 0), n_sec) for j in (0, 1)])
    sell = np.column_stack([np.bincount(step_sec, np.where(l1.side[:, j] < 0, vol[:, j], 0), n_sec) for j in (0, 1)])
    vwap = _vwap_per_second(l1, vol, tick, grid.sec_day[step_sec], last, mid)
    feats = leadership_features(mid, vwap, buy, sell, sigma_sym, es_mid_first if ctx else None, ctx)
    ts2 = np.repeat(grid.l1_ts[last], 2)
    sym2 = frames.strings(np.tile([0, 1], n_sec), symbols)
    cols = {k: v.reshape(-1) for k, v in feats.items() if k != "volatility_regime"}
    cols["volatility_regime"] = frames.strings(feats["volatility_regime"].reshape(-1), REGIMES)
    out["leadership_features"] = frames.table("leadership_features", {"ts": ts2, "symbol": sym2, **cols})
    if include_labels:
        code, conf = ground_truth(mid, sigma_sym, grid.sec_ms, plan)
        sides = np.array([LABEL_SIDE[label] for label in LABELS], dtype=np.int8)[code.reshape(-1)]
        out["ground_truth"] = frames.table("ground_truth", {
            "ts": ts2, "symbol": sym2, "label": frames.strings(code.reshape(-1), LABELS),
            "confidence": conf.reshape(-1), "side": sides})
    else:
        out["ground_truth"] = frames.empty("ground_truth")
    return out.result()


class _Tables(dict):
    """Collects the requested tables, announcing each one once it is complete."""

    def __init__(self, wanted: tuple[str, ...], on_table, on_chunk):
        super().__init__()
        self.wanted, self.on_table, self.on_chunk = wanted, on_table, on_chunk

    def chunk(self, name: str, table: pa.Table) -> None:
        if self.on_chunk is not None:
            self.on_chunk(name, table)

    def __setitem__(self, name: str, table: pa.Table) -> None:
        super().__setitem__(name, table)
        if self.on_table is not None and name in self.wanted:
            self.on_table(name, table)

    def result(self) -> dict[str, pa.Table]:
        return {name: self[name] for name in self.wanted}


MONDAY_2000 = 730122  # date(2000, 1, 3).toordinal(): weekday 0 of the release calendars


def release_days(day_ordinal: np.ndarray, every: int, phase: int) -> np.ndarray:
    """True for the trading days (date ordinals) of a release calendar: the weekdays ``d`` (counted from
    Monday 2000-01-03) with ``d % every == phase``."""
    w = np.asarray(day_ordinal, dtype=np.int64) - MONDAY_2000
    weekday_index = 5 * (w // 7) + np.minimum(w % 7, 5)
    return weekday_index % every == phase


def release_seconds(sec_et_hour: np.ndarray, day_ordinal: np.ndarray, hour: float, every: int, phase: int) -> np.ndarray:
    """Indices of the seconds that start at ``hour`` ET on the release days of that calendar."""
    at = np.flatnonzero(np.abs(sec_et_hour - hour) < 0.5 / 3600.0)
    return at[release_days(day_ordinal[at], every, phase)]


def _jumps(rng: np.random.Generator, model: MarketModel, sigma_sec: np.ndarray, step_sec: np.ndarray,
           sec_et_hour: np.ndarray, day_ordinal: np.ndarray, scheduled: bool = True) -> np.ndarray:
    """Jumps of the common factor (log units per L1 step), sized in 1-min sigmas of ``sigma_sec`` (the
    caller passes the time-of-day sigma): rare unscheduled ones (Poisson) and, if ``scheduled``, the
    release / cash-open moves of ``model.scheduled_jumps`` on their calendar days (``day_ordinal``: the
    trading day of each second). Sizes are lognormal and capped; signs are fair coin flips."""
    out = np.zeros(len(step_sec))
    n_sec = len(sigma_sec)
    if n_sec == 0:
        return out
    secs, sizes = [], []
    if model.jumps_per_day > 0:
        k = rng.poisson(model.jumps_per_day * n_sec / (23 * 3600))
        secs.append(rng.integers(0, n_sec, k))
        sizes.append(np.minimum(model.jump_median * np.exp(model.jump_log_sd * rng.standard_normal(k)), model.jump_max))
    for hour, every, phase in model.scheduled_jumps if scheduled else ():
        at = release_seconds(sec_et_hour, day_ordinal, hour, every, phase)
        size = model.scheduled_jump_median * np.exp(model.scheduled_jump_log_sd * rng.standard_normal(len(at)))
        secs.append(at)
        sizes.append(np.minimum(size, model.scheduled_jump_max))
    if not secs:
        return out
    sec = np.concatenate(secs)
    size = np.concatenate(sizes) * np.where(rng.random(len(sec)) < 0.5, -1, 1)
    steps = np.searchsorted(step_sec, sec)
    np.add.at(out, steps, size * sigma_sec[sec] * np.sqrt(60.0))
    return out


def _l1_table(ts: np.ndarray, l1: L1Arrays, tick: float, symbols) -> pa.Table:
    n = len(ts)
    return frames.table("l1", {
        "ts": np.repeat(ts, 2), "symbol": frames.strings(np.tile([0, 1], n), symbols),
        "bid": l1.bid.reshape(-1) * tick, "ask": l1.ask.reshape(-1) * tick,
        "last_price": l1.last.reshape(-1) * tick, "bid_size": l1.bid_size.reshape(-1),
        "ask_size": l1.ask_size.reshape(-1), "last_size": l1.last_size.reshape(-1),
    })


def _l2_table(book, symbols, levels: int) -> pa.Table:
    m = len(book.ts)
    best_bid, best_ask = book.bid_px[:, :, 0].reshape(-1), book.ask_px[:, :, 0].reshape(-1)
    return frames.table("l2", {
        "ts": np.repeat(book.ts, 2), "symbol": frames.strings(np.tile([0, 1], m), symbols),
        "levels": np.full(2 * m, levels, dtype=np.int32),
        "bid_px": frames.lists(book.bid_px.reshape(2 * m, levels), levels),
        "bid_sz": frames.lists(book.bid_sz.reshape(2 * m, levels), levels),
        "ask_px": frames.lists(book.ask_px.reshape(2 * m, levels), levels),
        "ask_sz": frames.lists(book.ask_sz.reshape(2 * m, levels), levels),
        "mid": (best_bid + best_ask) / 2.0, "spread": best_ask - best_bid,
    })


def _bar_tables(ts: np.ndarray, l1: L1Arrays, tick: float, tf_ms: int, symbols) -> tuple[pa.Table, pa.Table]:
    bars, feet = [], []
    for j in (0, 1):
        traded = l1.last_size[:, j] > 0
        t = Trades(ts[traded], l1.last[traded, j] * tick, l1.last_size[traded, j], l1.side[traded, j])
        b = bars_of(t, tf_ms, trading_day(t.ts))
        b.pop("delta")
        b["symbol"] = np.full(len(b["ts"]), j)
        f = footprint_of(t, tf_ms, tick)
        f["symbol"] = np.full(len(f["bar_start_ts"]), j)
        bars.append(b)
        feet.append(f)
    out = []
    for name, parts, key in (("bars", bars, "ts"), ("footprint", feet, "bar_start_ts")):
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = np.argsort(merged[key], kind="stable")
        merged = {k: v[order] for k, v in merged.items()}
        merged["symbol"] = frames.strings(merged["symbol"], symbols)
        out.append(frames.table(name, merged))
    return out[0], out[1]


def _vwap_per_second(l1: L1Arrays, vol: np.ndarray, tick: float, step_day: np.ndarray, last: np.ndarray,
                     mid: np.ndarray) -> np.ndarray:
    """Session VWAP (reset each trading day) as of each second's last row; the mid before any trade."""
    px = l1.last * tick
    cum_v, cum_pv = np.cumsum(vol, axis=0), np.cumsum(vol * px, axis=0)
    day_start = _runs(step_day)
    base_v = np.vstack([np.zeros((1, 2)), cum_v[:-1]])[day_start]
    base_pv = np.vstack([np.zeros((1, 2)), cum_pv[:-1]])[day_start]
    run = np.searchsorted(day_start, last, side="right") - 1
    v = cum_v[last] - base_v[run]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(v > 0, (cum_pv[last] - base_pv[run]) / np.maximum(v, 1e-300), mid)
