"""CME Globex schedule: no rows in the daily halt or at the weekend; sessions of any length."""

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from mia_pipeline.synthetic import GenConfig, MIA_IA_DataGenerator, check_invariants
from mia_pipeline.synthetic.schedule import (
    ET,
    _calendar_sessions,
    calendar_session,
    closed_days,
    et_hour,
    globex_status,
    is_open,
    open_intervals,
    weekly_session,
)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def test_open_intervals_follow_the_weekly_schedule():
    start = datetime(2025, 8, 22, 12, 0, tzinfo=ET)  # Friday noon ET
    ivs = open_intervals(_ms(start), _ms(start + timedelta(days=4)))
    opens = [datetime.fromtimestamp(i.open_ms / 1000, ET) for i in ivs]
    closes = [datetime.fromtimestamp(i.close_ms / 1000, ET) for i in ivs]
    assert closes[0] == datetime(2025, 8, 22, 17, 0, tzinfo=ET)  # Friday close
    assert opens[1] == datetime(2025, 8, 24, 18, 0, tzinfo=ET)  # Sunday reopen
    assert closes[1] == datetime(2025, 8, 25, 17, 0, tzinfo=ET) and opens[2] == datetime(2025, 8, 25, 18, 0, tzinfo=ET)


@pytest.mark.parametrize(("day", "expected"), [
    (datetime(2025, 3, 10, 12, 0, tzinfo=ET), 12.0),  # EDT after the March switch
    (datetime(2025, 12, 10, 12, 0, tzinfo=ET), 12.0),  # EST
])
def test_et_hours_follow_daylight_saving(day, expected):
    assert et_hour(np.array([_ms(day)]))[0] == pytest.approx(expected)


def test_halt_has_no_rows_and_prices_continue_across_it():
    start = datetime(2025, 8, 21, 16, 30, tzinfo=ET)
    data = MIA_IA_DataGenerator(seed=2).generate_realistic_session(GenConfig(start=start, minutes=120))
    halt = (_ms(datetime(2025, 8, 21, 17, 0, tzinfo=ET)), _ms(datetime(2025, 8, 21, 18, 0, tzinfo=ET)))
    for name, df in data.items():
        ts = df["bar_start_ts" if name == "footprint" else "ts"].to_numpy()
        assert not ((ts >= halt[0]) & (ts < halt[1])).any(), name
        assert is_open(ts).all(), name
    assert len(data["l1"]) == 2 * 60 * 60 * 5  # 16:30-17:00 and 18:00-18:30
    assert all(r.passed for r in check_invariants(data))


def test_weekend_has_no_rows():
    start = datetime(2025, 8, 22, 16, 0, tzinfo=ET)  # Friday 16:00 ET, through Sunday 19:00 ET
    cfg = GenConfig(start=start, minutes=(2 * 24 + 3) * 60)
    data = MIA_IA_DataGenerator(seed=3).generate_realistic_session(cfg, include_labels=False)
    ts = data["l1"]["ts"].to_numpy()
    assert len(ts) == 2 * (60 + 60) * 60 * 5  # Friday 16-17 and Sunday 18-19
    assert is_open(ts).all()
    saturday = _ms(datetime(2025, 8, 23, 0, 0, tzinfo=ET)), _ms(datetime(2025, 8, 24, 0, 0, tzinfo=ET))
    assert not ((ts >= saturday[0]) & (ts < saturday[1])).any()


def test_closed_window_gives_empty_tables_with_the_columns():
    start = datetime(2025, 8, 23, 10, 0, tzinfo=ET)  # Saturday
    data = MIA_IA_DataGenerator(seed=1).generate_realistic_session(GenConfig(start=start, minutes=60))
    assert all(df.empty for df in data.values())
    assert list(data["l1"].columns)[:2] == ["ts", "symbol"]


def test_24h_and_multi_day_sessions():
    start = datetime(2025, 8, 19, 18, 0, tzinfo=ET)  # Tuesday 18:00 ET: one Globex day
    gen = MIA_IA_DataGenerator(seed=4)
    day = gen.generate_tables(GenConfig(start=start, minutes=24 * 60), tables=("l1",))["l1"]
    assert day.num_rows == 2 * 23 * 3600 * 5
    two = gen.generate_tables(GenConfig(start=start, minutes=48 * 60), tables=("l1", "bars"))
    ts = two["l1"].column("ts").to_numpy()
    assert len(ts) == 2 * 2 * 23 * 3600 * 5 and np.all(np.diff(ts) >= 0)
    hours = et_hour(ts)
    overnight = (hours >= 19) | (hours < 2)
    rth = (hours >= 9.5) & (hours < 16)
    volume = two["l1"].column("last_size").to_numpy()
    assert volume[rth].mean() > 3 * volume[overnight].mean()  # quieter overnight


def test_naive_start_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        GenConfig(start=datetime(2025, 8, 21, 13, 30))
    with pytest.raises(ValueError, match="minutes"):
        GenConfig(start=datetime(2025, 8, 21, 13, 30, tzinfo=UTC), minutes=0)


def test_calendar_and_weekly_rule_agree_on_ordinary_weeks():
    """Eight holiday-free weeks: same trading days and opens; the CMES calendar closes at 17:00 CT
    (18:00 ET, it has no daily halt), so the 17:00 ET halt stays the weekly rule's."""
    cs = _calendar_sessions()
    for first in (date(2025, 10, 6), date(2026, 2, 23)):
        for i in range(28):
            day = first + timedelta(days=i)
            assert calendar_session(day) == weekly_session(day), day
            k = np.searchsorted(cs.days, day.toordinal())
            if weekly_session(day) is not None:
                assert cs.opens[k] == weekly_session(day)[0] and cs.closes[k] == weekly_session(day)[1] + 3_600_000


@pytest.mark.parametrize(("day", "closed"), [
    (date(2026, 4, 3), True),  # Good Friday
    (date(2026, 12, 25), True),  # Christmas
    (date(2025, 1, 1), True),  # New Year
    (date(2026, 7, 3), False),  # early close, still a session
])
def test_cme_holidays_come_from_the_calendar(day, closed):
    assert (day in closed_days(day, day)) is closed


def test_early_close_ends_the_interval():
    s = _ms(datetime(2026, 7, 2, 18, 0, tzinfo=ET))
    (iv,) = open_intervals(s, s + 23 * 3_600_000)
    assert datetime.fromtimestamp(iv.close_ms / 1000, UTC) == datetime(2026, 7, 3, 17, 0, tzinfo=UTC)


def test_holiday_has_no_rows():
    data = MIA_IA_DataGenerator(seed=1).generate_tables(
        GenConfig(start=datetime(2026, 4, 3, 9, 30, tzinfo=ET), minutes=60), "normal", "NQ_leads", tables=("l1",))
    assert data["l1"].num_rows == 0


@pytest.mark.parametrize(("when", "is_open_", "next_open", "reason"), [
    (datetime(2025, 8, 23, 12, 0, tzinfo=ET), False, datetime(2025, 8, 24, 18, 0, tzinfo=ET), "weekend"),
    (datetime(2025, 8, 22, 17, 30, tzinfo=ET), False, datetime(2025, 8, 24, 18, 0, tzinfo=ET), "weekend"),
    (datetime(2025, 8, 21, 17, 0, tzinfo=ET), False, datetime(2025, 8, 21, 18, 0, tzinfo=ET), "daily halt"),
    (datetime(2026, 4, 3, 9, 30, tzinfo=ET), False, datetime(2026, 4, 5, 18, 0, tzinfo=ET), "CME holiday"),
    (datetime(2025, 8, 21, 9, 30, tzinfo=ET), True, datetime(2025, 8, 21, 9, 30, tzinfo=ET), ""),
])
def test_globex_status(when, is_open_, next_open, reason):
    o, nxt, why = globex_status(when)
    assert o is is_open_ and nxt == next_open and reason in why
