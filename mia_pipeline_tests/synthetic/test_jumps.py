"""Jumps of `normal` days (issue 11): rare unscheduled ones, and release-time moves at 08:30 / 09:30 /
10:00 ET on a calendar; over many 23-h Globex days the largest deseasonalised 1-min moves fall at those
times and none reaches 15 sigma (a news scenario's signature), while news_spike keeps its 8 sigma event.

Moves are deseasonalised exactly as the realism battery does (``realism.deseasonalised_moves``): each
1-min mid log return divided by the pooled mean |return| of its 5-minute ET bucket, in units of the
pooled SD.
"""

from datetime import date, datetime, timedelta

import numpy as np
import pytest
from synth_helpers import RELEASE_HOURS, near_release, seed_set

from mia_pipeline.synthetic import GenConfig, MIA_IA_DataGenerator, realism
from mia_pipeline.synthetic.model import DEFAULT_MODEL
from mia_pipeline.synthetic.schedule import ET, build_grid
from mia_pipeline.synthetic.seeding import session_seed
from mia_pipeline.synthetic.session import _jumps, release_days, release_seconds


def _weekdays(first: date, n_weeks: int) -> np.ndarray:
    days = (first + timedelta(days=i) for i in range(7 * n_weeks))
    return np.array([d.toordinal() for d in days if d.weekday() < 5])


def test_release_calendars_fire_on_an_eighth_of_weekdays_one_release_a_day_at_most():
    days = _weekdays(date(2025, 1, 6), 104)
    assert {hour for hour, _, _ in DEFAULT_MODEL.scheduled_jumps} == set(RELEASE_HOURS)
    fired = np.array([release_days(days, every, phase) for _, every, phase in DEFAULT_MODEL.scheduled_jumps])
    assert np.allclose(fired.mean(axis=1), 1 / 8, atol=0.005)  # each slot on 1 weekday in 8
    assert fired.sum(axis=0).max() == 1  # never two scheduled moves on one day
    window = fired[:, :20].sum()  # any 20 consecutive trading days hold 7-8 of them
    assert all(fired[:, i:i + 20].sum() in (7, 8) for i in range(len(days) - 20)) and window in (7, 8)


@pytest.fixture(scope="module")
def globex_day():
    """One 23-h Globex day (Tuesday 2025-06-03 18:00 ET -> Wednesday 17:00 ET): its grid and the seconds
    at which the calendar schedules a release (Wednesday 2025-06-04: 08:30 ET)."""
    start = datetime(2025, 6, 3, 18, 0, tzinfo=ET)
    start_ms = int(start.timestamp() * 1000)
    grid = build_grid(start_ms, start_ms + 24 * 3_600_000, 200, 100)
    day = grid.day_ordinal[grid.sec_day]
    releases = np.concatenate([release_seconds(grid.sec_et_hour, day, hour, every, phase)
                               for hour, every, phase in DEFAULT_MODEL.scheduled_jumps])
    return grid, day, releases


def test_jumps_are_rare_off_the_release_times_and_capped(globex_day):
    """The jump process alone (sizes in 1-min sigmas of the time of day), 1000 draws of one Globex day:
    unscheduled jumps < 1 a day and <= 7.5 sigma, the scheduled ones exactly at the calendar's release
    seconds, median ~11.5 and at most 12 sigma; `scheduled=False` (every other scenario) has none of them."""
    grid, day, releases = globex_day
    assert len(releases) == 1 and grid.sec_et_hour[releases[0]] == 8.5
    sigma = np.full(grid.n_sec, 1 / np.sqrt(60.0))  # so a jump's size reads in sigmas
    release_steps = set(np.searchsorted(grid.step_sec, releases).tolist())
    unscheduled, scheduled = [], []
    for seed in range(1000):
        out = _jumps(np.random.default_rng(seed), DEFAULT_MODEL, sigma, grid.step_sec, grid.sec_et_hour, day)
        steps = np.flatnonzero(out)
        at_release = np.isin(steps, list(release_steps))
        assert at_release.sum() == len(releases)
        scheduled += np.abs(out[steps[at_release]]).tolist()
        unscheduled += np.abs(out[steps[~at_release]]).tolist()
        if seed < 50:
            off = _jumps(np.random.default_rng(seed), DEFAULT_MODEL, sigma, grid.step_sec, grid.sec_et_hour, day,
                         scheduled=False)
            assert not np.isin(np.flatnonzero(off), list(release_steps)).any()
    assert 0.8 <= len(unscheduled) / 1000 <= 1.0  # Poisson, 0.9 a day
    assert max(unscheduled) <= 7.5 + 1e-9 and 3.5 <= np.median(unscheduled) <= 6.5
    assert 5.0 <= min(scheduled) and 10.5 <= np.median(scheduled) and max(scheduled) <= 12.0 + 1e-9


def test_release_days_do_not_depend_on_the_seed(globex_day):
    grid, day, releases = globex_day
    sigma = np.full(grid.n_sec, 1 / np.sqrt(60.0))
    at = [set(np.flatnonzero(_jumps(np.random.default_rng(seed), DEFAULT_MODEL, sigma, grid.step_sec,
                                    grid.sec_et_hour, day)).tolist()) for seed in (1, 2)]
    release_steps = set(np.searchsorted(grid.step_sec, releases).tolist())
    assert release_steps <= at[0] & at[1]


SETS = 5  # the realism battery's seed sets: 5 x 20 consecutive 23-h `normal` Globex days


@pytest.mark.slow
def test_normal_days_move_most_at_the_releases_and_never_15_sigma():
    """Over the 5 seed sets (100 days, each set of 20 days and each half of 10 days deseasonalised on
    its own): no deseasonalised 1-min move of ES or NQ reaches 15 sigma; the largest ones fall within
    +-2 min of 08:30 / 09:30 / 10:00 ET (which hold 15 of the day's 1380 minutes): a clear majority of
    each set's 5 largest (>= 60 % over the sets) and at least half of its 10 largest. Off the release
    windows, moves beyond 8 sigma are rare (< 1 in 4 days)."""
    top5, top10, off_release_8 = [], [], 0
    for k in range(SETS):
        _, moves, halves = seed_set(k)
        for pool in (moves, *halves):
            assert len(np.unique(pool["session"])) >= 10
            for sym in ("es", "nq"):
                assert np.nanmax(np.abs(pool[sym])) < 15.0, (k, sym)
        near = near_release(moves["et_hour"])
        for sym in ("es", "nq"):
            size = np.nan_to_num(np.abs(moves[sym]))
            order = np.argsort(size)[::-1]
            top5 += near[order[:5]].tolist()
            top10 += near[order[:10]].tolist()
            off_release_8 += int(np.sum((size > 8.0) & ~near))
    assert np.mean(top5) >= 0.6, top5
    assert np.mean(top10) >= 0.5, top10
    assert off_release_8 / 2 < SETS * realism.SET_SIZE / 4


@pytest.mark.slow
def test_news_spike_keeps_its_8_sigma_event_on_globex_days():
    """news_spike on the first 10 days of the seed sets (23-h sessions): the labelled event moves the
    mid, within 10 s, by >= 8 x the standard deviation of the session's 1-min mid changes before it."""
    for start in realism.globex_day_starts(10, realism.FIRST_DAY):
        gen = MIA_IA_DataGenerator(seed=session_seed(0, start, "news_spike"))
        tables = gen.generate_tables(GenConfig(start=start, minutes=24 * 60), "news_spike", options_context=False,
                                     tables=("l1", "ground_truth"))
        l1, gt = tables["l1"].to_pandas(), tables["ground_truth"].to_pandas()
        t0 = int(gt.loc[gt["label"] == "volatility_event", "ts"].min()) // 1000  # the event's first second
        for symbol in ("ES", "NQ"):
            q = l1[l1["symbol"] == symbol]
            mid = ((q["bid"] + q["ask"]) / 2).groupby(q["ts"] // 1000).last()
            minute = mid.groupby(mid.index // 60).last()
            before = minute[minute.index < t0 // 60].to_numpy()
            move = np.abs(mid.loc[t0: t0 + 9].to_numpy() - mid.loc[: t0 - 1].iloc[-1]).max()
            assert move >= 8.0 * np.std(np.diff(before), ddof=1), (start, symbol)
