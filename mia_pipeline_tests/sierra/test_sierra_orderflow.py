"""Order-flow bars (bid/ask volume, delta, VWAP) and the volume profile (POC, value area) agree with a
plain-Python recomputation from the same trades; the text readers (.dly, study exports) convert the
chart's time zone to UTC and refuse unreadable lines naming file and offset."""

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from sierra_writer import es_session, f32, unix_us, write_scid

from mia_pipeline.sources.sierra import (
    SierraFileError,
    daily_volume_profiles,
    order_flow_bars,
    read_dly,
    read_study_export,
    scid_ticks,
    study_columns,
    volume_profile,
)

T0 = unix_us(datetime(2025, 6, 23, 13, 30, tzinfo=UTC))


@pytest.fixture
def trades(tmp_path):
    recs = es_session(T0, 6000, step_us=410_000)
    return recs, scid_ticks(write_scid(tmp_path / "es.scid", recs))


@pytest.mark.parametrize("minutes", [1, 5, 15])
def test_bars_match_a_plain_recomputation(trades, minutes):
    recs, ticks = trades
    period = minutes * 60_000_000
    want = defaultdict(list)
    for r in recs:
        want[r.time_us // period * period].append(r)
    bars = order_flow_bars(ticks, minutes).to_pylist()
    assert [int(b["ts"].timestamp() * 1e6) for b in bars] == sorted(want)
    for b in bars:
        rs = want[int(b["ts"].timestamp() * 1e6)]
        prices = [f32(r.close) for r in rs]
        assert (b["open"], b["high"], b["low"], b["close"]) == (prices[0], max(prices), min(prices), prices[-1])
        assert b["volume"] == sum(r.total_volume for r in rs)
        assert b["ask_volume"] == sum(r.ask_volume for r in rs) and b["bid_volume"] == sum(r.bid_volume for r in rs)
        assert b["delta"] == b["ask_volume"] - b["bid_volume"] and b["trade_count"] == len(rs)
        assert b["vwap"] == pytest.approx(sum(p * r.total_volume for p, r in zip(prices, rs, strict=True)) / b["volume"], rel=1e-12)


def test_volume_profile_poc_and_value_area(trades):
    recs, ticks = trades
    per_level = defaultdict(int)
    for r in recs:
        per_level[f32(r.close)] += r.total_volume
    vp = volume_profile(ticks)
    assert vp.tick_size == 0.25 and vp.total_volume == sum(per_level.values())
    assert dict(zip(vp.levels.column("price").to_pylist(), vp.levels.column("volume").to_pylist(), strict=True)) == per_level
    top = max(per_level.values())
    assert vp.poc == min(p for p, v in per_level.items() if v == top)
    inside = sum(v for p, v in per_level.items() if vp.value_area_low <= p <= vp.value_area_high)
    assert inside == vp.value_area_volume >= 0.7 * vp.total_volume
    # the area is minimal at its growing edge: without the level added last it would hold < 70 %
    levels = sorted(per_level)
    lo, hi = levels.index(vp.value_area_low), levels.index(vp.value_area_high)
    assert min(inside - per_level[levels[lo]] if lo < levels.index(vp.poc) else inside,
               inside - per_level[levels[hi]] if hi > levels.index(vp.poc) else inside) < 0.7 * vp.total_volume


def test_volume_profile_per_utc_day(tmp_path):
    recs = es_session(unix_us(datetime(2025, 6, 23, 23, 50, tzinfo=UTC)), 3000)
    ticks = scid_ticks(write_scid(tmp_path / "es.scid", recs))
    profiles = daily_volume_profiles(ticks)
    assert [d.isoformat() for d in profiles] == ["2025-06-23", "2025-06-24"]
    assert sum(p.total_volume for p in profiles.values()) == sum(r.total_volume for r in recs)


def test_dly_daily_bars(tmp_path):
    path = tmp_path / "ES.dly"
    path.write_bytes(b"Date, Open, High, Low, Close, Volume, OpenInterest\r\n"
                     b"2025/6/20, 6001.25, 6010.5, 5990, 6005.75, 1523441, 2100334\r\n"
                     b"2025-06-23, 6005.75, 6020, 6000.25, 6018.5, 1402211, 2099870\r\n")
    t = read_dly(path)
    assert [str(d) for d in t.column("date").to_pylist()] == ["2025-06-20", "2025-06-23"]
    assert t.column("close").to_pylist() == [6005.75, 6018.5]
    assert t.column("open_interest").to_pylist() == [2100334, 2099870]
    path.write_bytes(b"Date, Open, High, Low, Close, Volume, OpenInterest\n2025/6/20, 1, 2, 1, x, 5, 6\n")
    with pytest.raises(SierraFileError, match=r"ES\.dly: at byte 51: line 2: Close 'x' is not a number"):
        read_dly(path)


STUDY = (b"Date, Time, Open, High, Low, Last, Volume, # of Trades, OHLC Avg, HLC Avg, HL Avg, Bid Volume, "
         b"Ask Volume, VWAP, Top Band, Bottom Band, RSI, Battle Navale\n")


def _line(day: str, time: str, close: float, rsi: str = "55.2") -> bytes:
    return (f"{day}, {time}, 6000, 6001, 5999, {close}, 120, 40, 6000.1, 6000.2, 6000, 60, 60, 6000.4, "
            f"6003, 5997, {rsi}, 1\n").encode()


def test_study_export_times_go_from_the_chart_zone_to_utc(tmp_path):
    path = tmp_path / "ES_study.txt"
    path.write_bytes(STUDY + _line("2025/6/23", "09:30:00", 6000.5, rsi="") + _line("2025/6/23", "09:31:00", 6001)
                     + _line("2025/11/2", "01:30:00", 6002) + _line("2025/11/2", "01:30:00", 6003))
    t = read_study_export(path, "America/New_York")
    assert [x.isoformat() for x in t.column("ts").to_pylist()] == [
        "2025-06-23T13:30:00+00:00", "2025-06-23T13:31:00+00:00",
        "2025-11-02T05:30:00+00:00", "2025-11-02T06:30:00+00:00"]  # the repeated hour, in bar order
    assert study_columns(t) == ["VWAP", "Top Band", "Bottom Band", "RSI", "Battle Navale"]
    assert t.column("RSI").to_pylist() == [None, 55.2, 55.2, 55.2]
    assert t.column("close").to_pylist() == [6000.5, 6001.0, 6002.0, 6003.0]
    assert t.column("trade_count").to_pylist() == [40] * 4


@pytest.mark.parametrize("bad, match", [
    (b"2025/6/23, 09:31:00, 6000, 6001\n", r"at byte 267: line 3: 4 fields where the header has 18"),
    (_line("2025/6/23", "9h31", 6000), r"at byte 267: line 3: Time '9h31' is not a time"),
    (_line("2025/6/31", "09:31:00", 6000), r"at byte 267: line 3: Date: 2025-06-31 .* is not a valid date"),
    (_line("2025/6/23", "09:31:00", 6000, rsi="n/a"), r"at byte 267: line 3: RSI 'n/a' is not a number"),
])
def test_unreadable_study_lines_name_file_and_offset(tmp_path, bad, match):
    path = tmp_path / "study.txt"
    first = _line("2025/6/23", "09:30:00", 6000)
    path.write_bytes(STUDY + first + bad)
    assert len(STUDY + first) == 267
    with pytest.raises(SierraFileError, match=r"study\.txt: " + match):
        read_study_export(path, "America/New_York")


def test_study_export_needs_a_real_time_zone(tmp_path):
    path = tmp_path / "study.txt"
    path.write_bytes(STUDY + _line("2025/6/23", "09:30:00", 6000))
    with pytest.raises(ValueError, match="unknown chart time zone 'Mars/Olympus'"):
        read_study_export(path, "Mars/Olympus")
