"""Collection metrics of one day (guide §4.1), computed from stored data: completeness against the CME
session, validity from the quarantine, live vs landed-after-the-fact timeliness, snapshots per hour, the
stored JSON and the `collection_metrics` asset whose partition metadata carries each day's own figures.

Every figure below is worked out by hand from the lines landed; 2025-06-23 is a Monday (CME open all
UTC day except the 21:00-22:00 daily halt), 2025-06-21 a Saturday (closed all day)."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.defs.quality import collection_metrics
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.quality.metrics import (
    LIVE_MEDIAN_LAG_S,
    compute_day_metrics,
    read_day_metrics,
    within,
    write_day_metrics,
)
from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.guide_examples import make_event, to_line

DAY = "2025-06-23"


@pytest.fixture
def store(layout) -> PartitionStore:
    return PartitionStore(layout)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tick(i: int, t: datetime, **kw) -> bytes:
    return to_line(make_event("market_tick", seq=i, event_id=f"tick-{t:%Y%m%d}-{i}", timestamp=iso(t), **kw))


def land(layout, store, data: bytes, name: str = "a.jsonl"):
    """Write lines into the landing zone and run one ingestion pass (received_at = now)."""
    with open(layout.streaming_dir / name, "ab") as fh:
        fh.write(data)
    return ingest_once(layout, store)


def day_with_hole(day: str = DAY, start_hour: int = 15, quarantined: int = 2) -> bytes:
    """One tick every minute from start_hour:30 for 60 minutes (the last at (start_hour+1):29) except a
    10-minute hole (minutes 20-29 of the hour), plus 3 trades and 2 signals on covered minutes and
    ``quarantined`` invalid lines (a tick without ``seq``) timestamped on that day."""
    t0 = datetime.fromisoformat(f"{day}T{start_hour:02d}:30:00+00:00")
    lines = b"".join(tick(m, t0 + timedelta(minutes=m)) for m in range(60) if not 20 <= m < 30)
    for i, minute in enumerate((1, 10, 35)):     # hours: start, start, start+1
        lines += to_line(make_event("trade", event_id=f"tr-{day}-{i}", trade_id=f"T-{day}-{i}",
                                    timestamp=iso(t0 + timedelta(minutes=minute, seconds=5))))
    for i, minute in enumerate((15, 40)):        # hours: start, start+1
        lines += to_line(make_event("signal", event_id=f"sg-{day}-{i}", signal_id=f"S-{day}-{i}",
                                    timestamp=iso(t0 + timedelta(minutes=minute, seconds=7))))
    for i in range(quarantined):
        lines += to_line(make_event("market_tick", seq=None, event_id=f"bad-{day}-{i}",
                                    timestamp=iso(t0 + timedelta(minutes=2))))
    return lines


# -- pure figures -------------------------------------------------------------------------------------------

def test_a_past_day_with_a_hole_scores_completeness_times_validity(layout, store):
    land(layout, store, day_with_hole())
    m = compute_day_metrics(layout, store, DAY)
    assert m["day"] == DAY
    assert m["events"] == 50 + 3 + 2                     # the invalid lines are not stored...
    assert m["quarantined"] == 2                         # ...they are quarantined on their own day
    assert m["events_by_kind"] == {"market_tick": 50, "trade": 3, "signal": 2}
    assert m["recorded_session"] == ["2025-06-23T15:30:00+00:00", "2025-06-23T16:29:00+00:00"]
    # 60 open minutes 15:30..16:29 inside the recorded session, 50 of them hold an event
    assert m["completeness"] == pytest.approx(50 / 60, abs=1e-6)
    assert m["missing_data_rate"] == pytest.approx(10 / 60, abs=1e-6)
    assert m["validity"] == pytest.approx(1 - 2 / 57, abs=1e-6)
    # 5 snapshots (trades + signals; ticks are not snapshots) over a 59-minute session
    assert m["snapshots_per_hour"] == pytest.approx(5 / (59 / 60), abs=0.01)
    hourly = m["hourly_snapshots"]
    assert len(hourly) == 24
    assert (hourly[15], hourly[16], sum(hourly)) == (3, 2, 5)
    assert m["cme_open_minutes"] == 23 * 60              # a Monday: all day but the 21:00-22:00 halt
    assert m["session_coverage"] == pytest.approx(60 / 1380, abs=1e-6)
    # landed ~1.5 years after the fact: not live, timeliness says nothing, the score ignores it
    assert m["live"] is False
    assert m["timeliness"] is None
    assert m["ingestion_lag_p50_s"] > LIVE_MEDIAN_LAG_S
    assert m["ingestion_lag_p99_s"] >= m["ingestion_lag_p50_s"]
    assert m["data_quality_score"] == pytest.approx((50 / 60) * (1 - 2 / 57), abs=1e-5)
    assert m["storage_mb"] > 0


def test_the_daily_halt_is_not_a_hole(layout, store):
    """20:50..22:09 every minute except 21:00..21:59 (the CME daily halt): complete, not 60 minutes missing."""
    t0 = datetime(2025, 6, 23, 20, 50, tzinfo=UTC)
    land(layout, store, b"".join(tick(m, t0 + timedelta(minutes=m)) for m in range(80) if not 10 <= m < 70))
    m = compute_day_metrics(layout, store, DAY)
    assert m["completeness"] == 1.0
    assert m["missing_data_rate"] == 0.0
    assert m["session_coverage"] == pytest.approx(20 / 1380, abs=1e-6)


def test_system_metrics_samples_do_not_fill_holes_in_the_trading_data(layout, store):
    from mia_pipeline.collection.system_sampler import SOURCE

    t0 = datetime(2025, 6, 23, 15, 30, tzinfo=UTC)
    samples = b"".join(to_line(make_event(
        "performance", source=SOURCE, metric="host.cpu_pct", value=12.0, unit="pct", tags={"component": "host"},
        event_id=f"system_metrics:host.cpu_pct:{m}", timestamp=iso(t0 + timedelta(minutes=m, seconds=30))))
        for m in range(-60, 120))                      # the sampler runs before, during and after the session
    land(layout, store, day_with_hole(quarantined=0) + samples)
    m = compute_day_metrics(layout, store, DAY)
    assert m["completeness"] == pytest.approx(50 / 60, abs=1e-6)
    assert m["recorded_session"] == ["2025-06-23T15:30:00+00:00", "2025-06-23T16:29:00+00:00"]


def test_a_day_without_quarantine_is_fully_valid(layout, store):
    land(layout, store, day_with_hole(quarantined=0))
    m = compute_day_metrics(layout, store, DAY)
    assert (m["quarantined"], m["validity"]) == (0, 1.0)
    assert m["data_quality_score"] == pytest.approx(50 / 60, abs=1e-6)


def live_times(now: datetime) -> list[datetime]:
    """Three timestamps in the last minute, all on one UTC day (just after midnight: the seconds since)."""
    times = [now - timedelta(seconds=s) for s in (50, 30, 10)]
    if times[0].date() != now.date():
        times = [now - timedelta(milliseconds=ms) for ms in (30, 20, 10)]
    return times


def test_a_day_collected_live_is_timely(layout, store):
    now = datetime.now(UTC)
    times = live_times(now)
    land(layout, store, b"".join(tick(i, t) for i, t in enumerate(times)))
    m = compute_day_metrics(layout, store, times[0].date())
    assert m["events"] == 3
    assert m["live"] is True
    assert m["timeliness"] == 1.0
    assert 0 <= m["ingestion_lag_p50_s"] < 120
    assert 0 <= m["ingestion_lag_p99_s"] < 120
    # the market may be closed right now (weekend, holiday): then completeness is None and counts as 1
    expected = 1.0 if m["completeness"] is None else m["completeness"]
    assert m["data_quality_score"] == pytest.approx(expected * m["validity"] * 1.0, abs=1e-6)


def test_a_late_minority_lowers_timeliness_of_a_live_day(layout, store):
    """Three events landed seconds after their time and one 10 minutes late: live (median lag small),
    timeliness 3/4."""
    now = datetime.now(UTC)
    times = live_times(now)
    late = times[0] - timedelta(minutes=10)
    if late.date() != times[0].date():
        pytest.skip("too close to midnight UTC for a late event on the same day")
    land(layout, store, b"".join(tick(i, t) for i, t in enumerate([*times, late])))
    m = compute_day_metrics(layout, store, times[0].date())
    assert m["live"] is True
    assert m["timeliness"] == 0.75
    assert m["ingestion_lag_p99_s"] > 500


def test_a_weekend_day_has_no_completeness(layout, store):
    """Events on a Saturday (CME closed all day): nothing was expected, so nothing is missing."""
    t0 = datetime(2025, 6, 21, 10, 0, tzinfo=UTC)
    land(layout, store, b"".join(tick(m, t0 + timedelta(minutes=m)) for m in range(0, 30, 3)))
    m = compute_day_metrics(layout, store, "2025-06-21")
    assert m["events"] == 10
    assert m["cme_open_minutes"] == 0
    assert (m["completeness"], m["missing_data_rate"], m["session_coverage"]) == (None, None, None)
    assert m["data_quality_score"] == 1.0                # validity 1, the rest not applicable
    assert m["live"] is False


@pytest.mark.parametrize(("day", "open_minutes"), [
    ("2025-06-20", 21 * 60),     # Friday: closes 16:00 CT (21:00 UTC) for the weekend
    ("2025-06-21", 0),           # Saturday
    ("2025-06-22", 2 * 60),      # Sunday: opens 17:00 CT (22:00 UTC)
    ("2025-06-23", 23 * 60),     # Monday: the 21:00-22:00 UTC daily halt
    ("2025-07-04", 17 * 60),     # Independence Day: early close 12:00 CT (17:00 UTC)
    ("2025-12-25", 60),          # Christmas: closed until 17:00 CT (23:00 UTC)
])
def test_cme_open_minutes_follow_the_exchange_calendar(layout, store, day, open_minutes):
    m = compute_day_metrics(layout, store, day)
    assert m["cme_open_minutes"] == open_minutes
    assert m["session_coverage"] == (0.0 if open_minutes else None)


def test_events_on_a_holiday_while_closed_expect_nothing(layout, store):
    t0 = datetime(2025, 12, 25, 10, 0, tzinfo=UTC)
    land(layout, store, b"".join(tick(m, t0 + timedelta(minutes=m)) for m in range(0, 30, 5)))
    m = compute_day_metrics(layout, store, "2025-12-25")
    assert (m["events"], m["completeness"], m["session_coverage"]) == (6, None, 0.0)
    assert m["data_quality_score"] == 1.0


def test_an_empty_day_has_no_score(layout, store):
    m = compute_day_metrics(layout, store, DAY)
    assert m["events"] == 0
    assert m["quarantined"] == 0
    assert m["data_quality_score"] is None
    assert m["snapshots_per_hour"] is None
    assert m["completeness"] is None
    assert m["validity"] is None
    assert m["live"] is False
    assert m["session_coverage"] == 0.0                  # a trading day with nothing recorded
    assert m["hourly_snapshots"] == [0] * 24
    assert m["storage_mb"] == 0


def test_a_day_with_quarantine_only_is_zero_valid_and_unscored(layout, store):
    land(layout, store, to_line(make_event("market_tick", seq=None, timestamp="2025-06-23T15:00:00.000Z")))
    m = compute_day_metrics(layout, store, DAY)
    assert (m["events"], m["quarantined"], m["validity"]) == (0, 1, 0.0)
    assert m["data_quality_score"] is None


def test_figures_of_one_day_ignore_the_others(layout, store):
    land(layout, store, day_with_hole() + day_with_hole("2025-06-24", start_hour=13, quarantined=0))
    monday = compute_day_metrics(layout, store, DAY)
    tuesday = compute_day_metrics(layout, store, "2025-06-24")
    assert (monday["events"], monday["quarantined"]) == (55, 2)
    assert (tuesday["events"], tuesday["quarantined"]) == (55, 0)
    assert tuesday["hourly_snapshots"][13:15] == [3, 2]
    assert sum(tuesday["hourly_snapshots"]) == 5
    assert monday["data_quality_score"] != tuesday["data_quality_score"]


# -- stored figures -----------------------------------------------------------------------------------------

def test_write_and_read_round_trip(layout, store):
    land(layout, store, day_with_hole())
    written = write_day_metrics(layout, store, DAY)
    assert layout.metrics_file(DAY).is_file()
    assert read_day_metrics(layout, DAY) == written
    assert read_day_metrics(layout, "2025-06-24") is None          # never computed


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]", b'{"day": "2025-06-24", "events": 3}'],
                         ids=["empty", "not-json", "not-an-object", "another-day"])
def test_a_damaged_metrics_file_reads_as_none(layout, content):
    path = layout.metrics_file(DAY)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    assert read_day_metrics(layout, DAY) is None


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("snapshots_per_hour", 49.99, False), ("snapshots_per_hour", 50, True), ("snapshots_per_hour", 200, True),
    ("snapshots_per_hour", 200.5, False), ("data_quality_score", 0.95, True), ("data_quality_score", 0.9499, False),
    ("missing_data_rate", 0.01, True), ("missing_data_rate", 0.0101, False), ("missing_data_rate", None, None),
    ("validity", 0.1, None),
])
def test_within_targets(name, value, expected):
    assert within(name, value) is expected


# -- the Dagster asset --------------------------------------------------------------------------------------

def materialize_day(layout, day: str):
    return dg.materialize([collection_metrics], partition_key=day, instance=dg.DagsterInstance.ephemeral(),
                          resources={"mia": MiaResource(data_dir=str(layout.root))})


def partition_metadata(result) -> dict:
    [mat] = result.asset_materializations_for_node("collection_metrics")
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def test_each_partition_carries_its_own_figures(layout, store):
    land(layout, store, day_with_hole() + day_with_hole("2025-06-24", start_hour=13, quarantined=0))
    monday, tuesday = materialize_day(layout, DAY), materialize_day(layout, "2025-06-24")
    assert monday.success and tuesday.success
    for day, result in ((DAY, monday), ("2025-06-24", tuesday)):
        meta = partition_metadata(result)
        expected = compute_day_metrics(layout, store, day)
        assert meta["day"] == day
        for name in ("events", "quarantined", "data_quality_score", "snapshots_per_hour", "completeness",
                     "missing_data_rate", "validity", "session_coverage"):
            assert meta[name] == pytest.approx(expected[name]), name
        assert "timeliness" not in meta                    # None is left out, not plotted as 0
        assert meta["live"] is False
        assert meta["path"] == str(layout.metrics_file(day))
        assert read_day_metrics(layout, day)["events"] == expected["events"]
    assert partition_metadata(monday)["quarantined"] == 2
    assert partition_metadata(tuesday)["quarantined"] == 0
    # 16.67% missing and ~5 snapshots/h are both outside the guide's targets: the metadata says so
    targets = partition_metadata(monday)["targets"]
    assert "missing_data_rate" in targets and "snapshots_per_hour" in targets


def test_an_empty_partition_materializes_without_a_score(layout):
    result = materialize_day(layout, DAY)
    meta = partition_metadata(result)
    assert meta["events"] == 0
    assert "data_quality_score" not in meta
    assert read_day_metrics(layout, DAY)["data_quality_score"] is None


def test_definitions_hold_the_asset_the_freshness_checks_and_their_sensor():
    from mia_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("collection_metrics") in graph.get_all_asset_keys()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert {("landing_zone", "freshness_check"), ("live_session", "freshness_check")} <= checks
    sensor = defs.resolve_sensor_def("collection_freshness_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


# -- freshness of the live datasets -------------------------------------------------------------------------

LIVE_SPECS = [dg.AssetSpec("landing_zone"), dg.AssetSpec("live_session")]


def run_freshness_checks(instance) -> dict:
    from mia_pipeline.defs.quality import collection_freshness_checks

    result = dg.materialize([*collection_freshness_checks, *LIVE_SPECS], instance=instance,
                            selection=dg.AssetSelection.all_asset_checks(), raise_on_error=False)
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_freshness_checks_warn_on_a_dataset_never_updated():
    with dg.instance_for_test() as instance:
        first = run_freshness_checks(instance)
        assert {k: e.passed for k, e in first.items()} == {"landing_zone": False, "live_session": False}
        assert {e.severity for e in first.values()} == {dg.AssetCheckSeverity.WARN}  # warns, never blocks
        instance.report_runless_asset_event(dg.AssetMaterialization("landing_zone"))
        second = run_freshness_checks(instance)
        assert {k: e.passed for k, e in second.items()} == {"landing_zone": True, "live_session": False}


def test_freshness_sensor_over_two_ticks():
    """Tick 1 asks for both checks (never run); once they ran and failed, tick 2 asks for nothing new
    (the datasets were not updated since)."""
    from mia_pipeline.defs.quality import collection_freshness_checks, collection_freshness_sensor

    defs = dg.Definitions(assets=LIVE_SPECS, asset_checks=collection_freshness_checks,
                          sensors=[collection_freshness_sensor])
    with dg.instance_for_test() as instance:
        tick1 = dg.build_sensor_context(instance=instance, definitions=defs)
        request = collection_freshness_sensor(tick1)
        assert isinstance(request, dg.RunRequest)
        assert {k.asset_key.to_user_string() for k in request.asset_check_keys} == {"landing_zone", "live_session"}
        run_freshness_checks(instance)
        tick2 = collection_freshness_sensor(dg.build_sensor_context(instance=instance, definitions=defs,
                                                                    cursor=tick1.cursor))
        assert isinstance(tick2, dg.SkipReason)
