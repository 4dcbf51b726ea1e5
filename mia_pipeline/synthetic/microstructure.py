"""Quotes, trades and the order book on the tick grid, from the latent prices.

Every L1 row is one ``l1_interval_ms`` snapshot per symbol: the best bid/ask and their sizes after
the interval, and the trades printed during it aggregated into one print (``last_size`` contracts
at ``last_price``, all on one side: at the ask for buyer-initiated, at the bid for seller-initiated
flow). ``last_size == 0`` means no trade in the interval; ``last_price`` then repeats the previous
print. Prices are integers of ticks until the frames are built, so they sit exactly on the grid.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mia_pipeline.synthetic.model import MarketModel
from mia_pipeline.synthetic.scenarios import ScenarioPlan
from mia_pipeline.synthetic.schedule import Grid, volume_profile

GLOBEX_DAY_S = 23 * 3600
_ABS_NORMAL_MEAN = np.sqrt(2.0 / np.pi)
# Depth shape of the book: level k size relative to the top-of-book median.
_SIZE_PATTERNS = 4096
_DEPTH_SHAPE = np.array([1.0, 1.25, 1.5, 1.7, 1.85, 1.95, 2.05, 2.1, 2.15, 2.2])


@dataclass
class L1Arrays:
    """(n_steps, 2) arrays, column 0 = ES, 1 = NQ; prices in ticks."""

    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    last: np.ndarray
    last_size: np.ndarray
    side: np.ndarray  # +1 buyer-initiated, -1 seller-initiated, 0 no trade
    top_median: np.ndarray  # median top-of-book size per row (for the deeper book levels)


def build_l1(
    rng: np.random.Generator,
    grid: Grid,
    model: MarketModel,
    prices: np.ndarray,  # (n, 2) latent prices
    inc: np.ndarray,  # (n, 2) latent log moves per step
    sig: np.ndarray,  # (n, 2) latent log sigma per step
    activity: np.ndarray,  # (n,) stochastic volatility factor (GARCH x scenario), mean ~1
    day_factor: np.ndarray,  # (n,) trading-day volatility factor
    plan: ScenarioPlan,
    tick: float,
    l1_interval_ms: int,
    base_size: tuple[float, float] = (3.0, 2.0),
) -> L1Arrays:
    n, n_sec = grid.n_steps, grid.n_sec
    flat = not model.intraday
    vprof_sec = volume_profile(grid.sec_et_hour, flat)
    vprof = vprof_sec[grid.step_sec]

    # Spreads: drawn per second (quotes do not flicker width every 200 ms), widened by the scenario.
    u = rng.random((n_sec, 2))
    quiet = 1.0 - np.minimum(vprof_sec, 1.0)
    es_spread = 1 + (u[:, 0] < model.es_two_tick_share * (1.0 + 1.6 * quiet))
    p1, p2, _ = model.nq_spread_probs
    nq_spread = 1 + (u[:, 1] > p1) + (u[:, 1] > p1 + p2)
    spread = np.column_stack([es_spread, nq_spread])[grid.step_sec] + plan.spread_extra[:, None] * [1, 2]
    x = prices / tick
    bid = np.floor(x - spread / 2.0 + 0.5).astype(np.int64)
    ask = bid + spread
    for j, (side, level) in plan.absorb.items():  # the absorbing wall is never quoted through
        lvl, until = int(round(level / tick)), plan.absorb_until
        through = np.maximum(ask[:until, j] - lvl, 0) if side > 0 else np.minimum(bid[:until, j] - lvl, 0)
        bid[:until, j] -= through
        ask[:until, j] -= through

    # Top of book: lognormal around a median that follows liquidity (thin overnight / at news).
    depth = (np.ones(n) if flat else np.clip(vprof, 0.2, 4.0) ** 0.35) * plan.size_mult
    top_median = np.outer(depth, [model.es_top_size, model.nq_top_size])
    sizes = top_median[None] * np.exp(0.5 * rng.standard_normal((2, n, 2)))
    for j, (side, level) in plan.absorb.items():  # passive wall at the resistance / support
        at_level = (ask[:, j] if side > 0 else bid[:, j]) == int(round(level / tick))
        sizes[0 if side < 0 else 1, at_level, j] *= 4.0
    bid_size = np.maximum(sizes[0], 1).astype(np.int32)
    ask_size = np.maximum(sizes[1], 1).astype(np.int32)

    # Traded volume: profile x stochastic vol x own |move|, normalised to the day's contracts.
    z = np.abs(inc) / np.maximum(sig, 1e-300)
    w = (1.0 - model.volume_move_share) * activity[:, None] ** model.volume_vol_elasticity
    w = w + model.volume_move_share * z / _ABS_NORMAL_MEAN
    w /= w.mean(axis=0) if n else 1.0
    rows_per_day = GLOBEX_DAY_S * 1000.0 / l1_interval_ms
    per_row = np.array([model.es_daily_volume, model.nq_daily_volume]) / rows_per_day
    e, sd = model.daily_volume_elasticity, model.daily_vol_sd
    day_volume = day_factor**e / np.exp((e * e / 2.0 - e) * sd * sd)  # mean 1 over days
    lam = per_row * (vprof * day_volume * plan.volume_mult)[:, None] * w
    # The seed's base_size_mean/std rescale the calibrated volume (defaults 3/2 = CME volumes) and
    # set the dispersion of per-row traded size (gamma-Poisson shape).
    lam = lam * (base_size[0] / 3.0)
    k = model.trade_size_shape * (2.0 / max(base_size[1], 1e-3)) ** 2
    last_size = rng.poisson(rng.gamma(k, lam / k)).astype(np.int32)

    p_buy = 0.5 + model.flow_coupling * np.tanh(z * np.sign(inc)) + plan.buy_bias
    buy = rng.random((n, 2)) < np.clip(p_buy, 0.03, 0.97)
    traded = last_size > 0
    side = np.where(traded, np.where(buy, 1, -1), 0).astype(np.int8)
    print_px = np.where(buy, ask, bid)
    rows = np.arange(n)[:, None]
    carry = np.maximum.accumulate(np.where(traded, rows, 0), axis=0)  # ffill the last print
    last = np.take_along_axis(print_px, carry, axis=0)
    return L1Arrays(bid, ask, bid_size, ask_size, last, last_size, side, top_median)


@dataclass
class BookArrays:
    """(m, 2, levels) arrays for the L2 snapshots that have an L1 row at or before them."""

    ts: np.ndarray  # (m,)
    bid_px: np.ndarray  # float64 prices
    bid_sz: np.ndarray  # int32
    ask_px: np.ndarray
    ask_sz: np.ndarray


def _depth_shape(levels: int) -> np.ndarray:
    shape = np.full(levels, _DEPTH_SHAPE[-1], dtype=np.float32)
    k = min(levels, len(_DEPTH_SHAPE))
    shape[:k] = _DEPTH_SHAPE[:k]
    return shape


def book_chunks(rng: np.random.Generator, grid: Grid, l1: L1Arrays, plan: ScenarioPlan, levels: int,
                tick: float, snapshots_per_chunk: int) -> Iterator[BookArrays]:
    """Snapshots every ``l2_interval_ms``, in chunks: level 0 is the as-of L1 quote (price and size),
    deeper levels one tick apart (sometimes two where the book is thin around news), sizes growing
    with depth. Chunks let the caller write a chunk while the next one is built."""
    idx_all = np.searchsorted(grid.l1_ts, grid.l2_ts, side="right") - 1
    keep = idx_all >= 0
    idx_all, ts_all = idx_all[keep], grid.l2_ts[keep]
    # Deeper-level sizes: rows of a small random table of (depth shape x U[0.5, 1.5)) patterns, one
    # row per snapshot and side, scaled by the row's median size in integer fixed point (x 1024):
    # three passes over the 2 x 33M size values of a 24 h session.
    table = ((0.5 + rng.random((_SIZE_PATTERNS, levels))) * _depth_shape(levels) * 1024).astype(np.int32)
    flat = np.arange(levels, dtype=np.float64) * tick
    for lo in range(0, len(idx_all), snapshots_per_chunk):
        idx, ts = idx_all[lo:lo + snapshots_per_chunk], ts_all[lo:lo + snapshots_per_chunk]
        m = len(idx)
        thin = 1.0 - plan.size_mult[idx]
        offsets = flat
        if np.any(thin > 0.05):
            gap = rng.random((m, 2, levels), dtype=np.float32) < (0.35 * thin)[:, None, None].astype(np.float32)
            gap[:, :, 0] = False
            offsets = (np.cumsum(1 + gap, axis=2, dtype=np.int32) - 1).astype(np.float64) * tick
        med = np.maximum(l1.top_median[idx], 1.0).astype(np.int32)[:, :, None]
        bid_sz, ask_sz = (_sizes(rng, table, med, top[idx]) for top in (l1.bid_size, l1.ask_size))
        yield BookArrays(ts, (l1.bid[idx] * tick)[:, :, None] - offsets, bid_sz,
                         (l1.ask[idx] * tick)[:, :, None] + offsets, ask_sz)


def _sizes(rng: np.random.Generator, table: np.ndarray, med: np.ndarray, top: np.ndarray) -> np.ndarray:
    """(m, 2, levels) int32 sizes: table patterns x median (fixed point / 1024), level 0 = ``top``."""
    out = table[rng.integers(0, _SIZE_PATTERNS, size=top.shape)]
    out *= med
    out >>= 10
    np.maximum(out, 1, out=out)
    out[:, :, 0] = top
    return out
