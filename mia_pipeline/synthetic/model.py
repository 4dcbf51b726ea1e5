"""Calibration of the market model (volatility, co-movement, volume, book), in one place.

The defaults reproduce the stylized facts of ``realism.md``; ``GAUSSIAN_WALK`` switches every
stylized ingredient off and is the negative control of the realism battery.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class MarketModel:
    # Volatility: GARCH(1,1) on 1-s Student-t shocks x intraday profile x per-trading-day factor.
    garch_alpha: float = 0.022
    garch_beta: float = 0.976
    t_nu: float = 4.5
    # The stochastic sigma multiplier (GARCH x slow component x trading-day factor) is clipped to
    # [1/cap, cap], and the GARCH variance itself is capped at cap^2 inside its recursion: an uncapped
    # GARCH on t(4.5) shocks climbs to 50x its mean after a run of large shocks and, clipped only
    # afterwards, held the whole multiplier at the cap for an hour (hours that, alone, set the 60-min
    # kurtosis); capped inside, a burst decays from the cap at once.
    garch_cap: float = 2.5
    # Day-to-day and slow (tens of minutes) volatility survive aggregation to 60 min: together with
    # the GARCH they set the 60-min kurtosis, so they stay moderate (0.30 / 0.35 / 1 h gave a 60-min
    # kurtosis close to the 1-min one, failing aggregational Gaussianity).
    daily_vol_sd: float = 0.15  # lognormal sd of the trading-day volatility factor
    slow_vol_sd: float = 0.25  # sd of a slow log-volatility AR(1) component
    # 2.5 h: the slow component carries the |r| autocorrelation out to 30 min, so its power-law decay
    # exponent stays well inside 0.1..0.6 on any seed set (a 40 min half-life gave 0.35..0.63).
    slow_vol_half_life_s: float = 9000.0
    # Jumps of the common factor, sized in the time-of-day 1-min sigma (the intraday profile, not the
    # GARCH / slow / day multiplier: a jump's size is the surprise, and it never compounds with a
    # volatility cluster). A deseasonalised 1-min move beyond 15 sigma is a news scenario's signature
    # (news_spike's 8 sigma event is its own drift), never a quiet day's.
    # Unscheduled (headlines): rare, Poisson per Globex day, lognormal size (median 5, capped at 7.5).
    jumps_per_day: float = 0.9
    jump_median: float = 5.0
    jump_log_sd: float = 0.3
    jump_max: float = 7.5
    # Scheduled, in `normal` only: the US data releases (08:30, 10:00 ET) and the cash open (09:30 ET),
    # each on a calendar of its own, (ET hour, every n-th weekday, phase): a release on the weekdays d
    # with d % n == phase, d counted from Monday 2000-01-03, the same days whatever the seed (a release
    # calendar is public; its surprise is not). Sizes are lognormal (median 11.5, capped at 12): after
    # deseasonalisation, which divides by the release-inflated mean |move| of the 5-min bucket, they are
    # the session's largest moves (~7-12 sigma). Frequent or smaller releases are absorbed into the
    # time-of-day profile by that same division; larger ones would pass 15 sigma in a window holding a
    # single release.
    scheduled_jumps: tuple[tuple[float, int, int], ...] = ((8.5, 8, 0), (9.5, 8, 3), (10.0, 8, 5))
    scheduled_jump_median: float = 11.5
    scheduled_jump_log_sd: float = 0.2
    scheduled_jump_max: float = 12.0
    intraday: bool = True  # ET time-of-day profiles for volatility, volume and book depth
    es_sigma_1min: float = 2.6e-4  # ES 1-min log-return sigma, RMS over a Globex day (1.4 pt at 5000)
    # ES-NQ co-movement and leadership.
    nq_vol_ratio: float = 1.35  # NQ / ES volatility in return terms
    es_nq_corr: float = 0.92  # correlation of the 1-s shocks (the common factor's share)
    # Leadership: the follower sees a share (strength x lead_share_per_strength) of the common moves
    # lead_delay_s late, the rest at once (paths.py). Real index futures move mostly within the same
    # second; a follower that repeated *every* common move 1-2 s late had a lag-0 correlation of ~0.
    lead_delay_s: float = 1.0
    lead_share_per_strength: float = 1.0  # strength 0.15 -> 15 % of the co-movement arrives 1 s late
    # Overnight moves between consecutive sessions (overnight.py): the Globex-open minutes not simulated
    # at this fraction of the day's 1-min sigma, plus a variance per closed hour (halt, weekend,
    # holiday), Student-t(t_nu) shocks clipped at overnight_z_max sigmas. US session to US session:
    # 0.41 % on a weeknight, 0.58 % over a weekend.
    overnight_vol_ratio: float = 0.5
    closed_sigma_per_hour: float = 5.9e-4
    overnight_z_max: float = 5.0
    # Volume: contracts per Globex day, split over L1 rows by the volume profile.
    es_daily_volume: float = 1.75e6
    nq_daily_volume: float = 0.65e6
    volume_vol_elasticity: float = 1.0  # expected volume ~ (stochastic vol factor) ** elasticity
    volume_move_share: float = 0.4  # share of expected volume driven by the row's own |price move|
    daily_volume_elasticity: float = 0.3  # day volume ~ (day vol factor) ** this
    trade_size_shape: float = 0.8  # gamma shape of the Poisson mixture (lower = burstier prints)
    flow_coupling: float = 0.20  # P(buy) shift toward the direction of the row's price move
    # Book: median top-of-book size (contracts) at average liquidity.
    es_top_size: float = 240.0
    nq_top_size: float = 18.0
    es_two_tick_share: float = 0.025  # ES spread 2 ticks this often in RTH (more overnight)
    nq_spread_probs: tuple[float, float, float] = (0.50, 0.33, 0.17)  # NQ spread 1, 2, 3 ticks


DEFAULT_MODEL = MarketModel()

GAUSSIAN_WALK = replace(
    DEFAULT_MODEL,
    garch_alpha=0.0,
    garch_beta=0.0,
    t_nu=float("inf"),
    daily_vol_sd=0.0,
    slow_vol_sd=0.0,
    jumps_per_day=0.0,
    scheduled_jumps=(),
    intraday=False,
    volume_vol_elasticity=0.0,
    volume_move_share=0.0,
    daily_volume_elasticity=0.0,
    trade_size_shape=50.0,
    flow_coupling=0.0,
)
