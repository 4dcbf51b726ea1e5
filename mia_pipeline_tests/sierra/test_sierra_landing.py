"""Sierra files land in the daily partitions exactly (ticks with their same-millisecond seq, complete
order-flow bars, L2 depth updates in the new market_depth dataset), idempotently, resumably from a
record-count checkpoint (a cut inside one millisecond gives the same rows as one read), and a damaged
record is quarantined while the rest lands."""

from datetime import UTC, datetime

import pyarrow.compute as pc
from conftest import T0
from sierra_writer import append_scid, es_session, f32, scid_header, write_scid

from mia_pipeline.collection.quarantine import read_rejects
from mia_pipeline.quality.checks import checks_for, run_day_checks
from mia_pipeline.sources.sierra import order_flow_bars, scid_ticks
from mia_pipeline.sources.sierra.files import configured_files, import_file, symbol_from_name
from mia_pipeline.sources.sierra.ingest import land_depth, land_scid
from mia_pipeline.sources.sierra.tail import SierraTail, growth
from mia_pipeline.storage import PartitionStore

DAY = "2025-06-23"


def today() -> str:
    return datetime.now(UTC).date().isoformat()
LATER = T0 + 10**12  # "now" long after the session: every bar is complete
KNOWN = frozenset({"ES", "NQ"})


def _expected_seq(recs):
    out, prev, k = [], None, 0
    for r in recs:
        ms = r.time_us // 1000
        k = k + 1 if ms == prev else 0
        out.append(k)
        prev = ms
    return out


def test_ticks_and_bars_land_exactly(layout, store, sierra_dir):
    recs = es_session(T0, 600)
    landed = land_scid(layout, store, sierra_dir / "ESU25_FUT_CME.scid", "ES", known_symbols=KNOWN, now_us=LATER)
    assert landed.next_record == 600 and landed.report.landed["market_ticks"] == 600
    ticks = store.read(DAY, "market_ticks").sort_by([("ts", "ascending"), ("seq", "ascending")])
    assert ticks.column("ts").cast("int64").to_pylist() == [r.time_us // 1000 for r in recs]
    assert ticks.column("seq").to_pylist() == _expected_seq(recs)
    assert ticks.column("last").to_pylist() == [f32(r.close) for r in recs]
    assert ticks.column("last_size").to_pylist() == [float(r.total_volume) for r in recs]
    assert ticks.column("bid").to_pylist() == [f32(r.low) for r in recs]
    assert ticks.column("ask").to_pylist() == [f32(r.high) for r in recs]
    assert set(ticks.column("source").to_pylist()) == {"sierra"} and set(ticks.column("symbol").to_pylist()) == {"ES"}
    bars = store.read(DAY, "market_bars")
    want = order_flow_bars(scid_ticks(sierra_dir / "ESU25_FUT_CME.scid"), 1)
    one = bars.filter(pc.equal(bars.column("timeframe"), "1min")).sort_by("ts")
    assert one.column("volume").to_pylist() == [float(v) for v in want.column("volume").to_pylist()]
    assert one.column("bid_volume").to_pylist() == [float(v) for v in want.column("bid_volume").to_pylist()]
    assert one.column("ask_volume").to_pylist() == [float(v) for v in want.column("ask_volume").to_pylist()]
    assert set(bars.column("timeframe").to_pylist()) == {"1min", "5min", "15min"}
    figures = landed.figures[DAY]
    assert figures["trades"] == 600 and figures["volume"] == sum(r.total_volume for r in recs)
    assert figures["delta"] == sum(r.ask_volume - r.bid_volume for r in recs) and figures["poc"] > 0
    again = land_scid(layout, store, sierra_dir / "ESU25_FUT_CME.scid", "ES", known_symbols=KNOWN, now_us=LATER)
    assert not again.report.landed and again.report.duplicates["market_ticks"] == 600


def test_an_incomplete_bar_waits_for_a_later_record(layout, store, sierra_dir):
    land_scid(layout, store, sierra_dir / "ESU25_FUT_CME.scid", "ES", now_us=T0 + 200_000_000)
    bars = store.read(DAY, "market_bars")
    last_us = es_session(T0, 600)[-1].time_us
    ends = {tf: m * 60_000_000 for tf, m in (("1min", 1), ("5min", 5), ("15min", 15))}
    for row in bars.to_pylist():
        assert int(row["ts"].timestamp() * 1e6) + ends[row["timeframe"]] <= last_us


def test_a_tail_cut_inside_one_millisecond_gives_the_rows_of_one_read(layout, tmp_path, sierra_dir):
    recs = es_session(T0, 600)
    assert recs[300].time_us == recs[299].time_us  # the cut falls between two trades of one millisecond
    path = write_scid(tmp_path / "ESU25_FUT_CME.scid", recs[:300])
    tail = SierraTail(layout, PartitionStore(layout), configured_files(_settings(tmp_path)), known_symbols=KNOWN)
    assert tail.poll(now_us=LATER).records == {str(path): 300}
    append_scid(path, recs[300:])
    assert tail.poll(now_us=LATER).records == {str(path): 300}
    assert tail.poll(now_us=LATER).records == {}
    split = PartitionStore(layout).read(DAY, "market_ticks").sort_by([("ts", "ascending"), ("seq", "ascending")])
    other = type(layout)(tmp_path / "one_read")
    other_store = PartitionStore(other)
    land_scid(other, other_store, sierra_dir / "ESU25_FUT_CME.scid", "ES", now_us=LATER)
    whole = other_store.read(DAY, "market_ticks").sort_by([("ts", "ascending"), ("seq", "ascending")])
    cols = ["ts", "seq", "last", "last_size", "bid", "ask", "content_hash"]
    assert split.select(cols).equals(whole.select(cols))
    assert PartitionStore(layout).read(DAY, "raw_events").num_rows == other_store.read(DAY, "raw_events").num_rows


def _settings(folder):
    from mia_pipeline.settings import SierraConfig

    return SierraConfig(data_dir=str(folder))


def test_depth_lands_in_market_depth_with_its_checks(layout, store, sierra_dir):
    path = sierra_dir / "MarketDepthData" / "ESU25_FUT_CME.2025-06-23.depth"
    landed = land_depth(layout, store, path, "ES", known_symbols=KNOWN)
    assert landed.report.landed["market_depth"] == 26 and landed.figures == {DAY: {"depth_updates": 26}}
    rows = store.read(DAY, "market_depth").sort_by([("ts", "ascending"), ("seq", "ascending")]).to_pylist()
    assert [r["command"] for r in rows[:4]] == ["clear", "add_bid", "add_ask", "modify_bid"]
    assert rows[0]["price"] is None and rows[1]["price"] == 6000.0 and rows[1]["quantity"] == 5
    assert sum(r["end_of_batch"] for r in rows) == 2 and [r["seq"] for r in rows[:3]] == [0, 1, 2]
    outcomes = run_day_checks(store, [DAY], ["market_depth"])["market_depth"][DAY]
    assert {o.name for o in outcomes} == set(checks_for("market_depth")) and all(o.passed for o in outcomes)


def test_a_damaged_record_is_quarantined_and_the_rest_lands(layout, store, tmp_path):
    """Issue 25: one record with a garbage time no longer refuses the whole file."""
    recs = es_session(T0, 50)
    bad = bytearray(scid_header() + b"".join(r.pack() for r in recs))
    bad[56 + 40 * 30: 56 + 40 * 30 + 8] = (45831.5).hex().encode()[:8]  # garbage time in record 30
    path = tmp_path / "ES.scid"
    path.write_bytes(bytes(bad))
    import_file(layout, store, path, symbol="ES")
    assert store.read(DAY, "market_ticks").num_rows == 49
    rejects = read_rejects(layout, today())
    assert rejects.column("reason").to_pylist() == ["bad_timestamp"]
    assert rejects.column("offset").to_pylist() == [30] and rejects.column("file").to_pylist() == ["sierra:ES.scid"]


def test_growth_counts_whole_records_and_names_the_days(tmp_path):
    recs = es_session(T0 - 3_600_000_000 * 15, 10, step_us=3_600_000_000)  # hourly from 06-22 23:30
    path = write_scid(tmp_path / "ES.scid", recs[:4], partial=recs[4].pack()[:3])
    cursor, days = growth([path], {})
    assert cursor == {str(path): 4} and days == {str(path): ["2025-06-22", "2025-06-23"]}
    assert growth([path], cursor) == (cursor, {})
    with open(path, "r+b") as f:  # Sierra completes record 4, then appends the rest
        f.seek(56 + 4 * 40)
        f.write(b"".join(r.pack() for r in recs[4:]))
    cursor2, days2 = growth([path], cursor)
    assert cursor2 == {str(path): 10} and days2 == {str(path): ["2025-06-23"]}
    with open(path, "ab") as f:  # a damaged record alone: no day to name (never thousands of days); it is
        f.write(b"\xff" * 40)      # quarantined when landed
    cursor3, days3 = growth([path], cursor2)
    assert cursor3 == {str(path): 11} and days3 == {str(path): []}


def test_symbols_come_from_file_names():
    from pathlib import Path

    assert [symbol_from_name(Path(n)) for n in ("ESU25_FUT_CME.scid", "NQZ4.scid", "EURUSD.scid", "6EM25-CME.depth")] \
        == ["ES", "NQ", "EURUSD", "6E"]


def test_raw_lines_rebuild_the_same_rows(layout, store, sierra_dir, tmp_path):
    """`mia rebuild` recreates a day from its raw lines: Sierra's column-built lines must parse back to
    the very rows landed (same content_hash), for ticks, bars, depth and study bars (with extra)."""
    from mia_pipeline.collection.rebuild import rebuild_day

    land_scid(layout, store, sierra_dir / "ESU25_FUT_CME.scid", "ES", known_symbols=KNOWN, now_us=LATER)
    land_depth(layout, store, sierra_dir / "MarketDepthData" / "ESU25_FUT_CME.2025-06-23.depth", "ES")
    study = tmp_path / "ES_study.txt"
    study.write_text("Date, Time, Open, High, Low, Last, Volume, # of Trades, OHLC Avg, HLC Avg, HL Avg, "
                     "Bid Volume, Ask Volume, RSI\n2025-06-23, 15:00, 6000, 6001, 5999, 6000.5, 120, 40, 1, 1, 1, "
                     "50, 70, 51.5\n2025-06-23, 15:05, 6000, 6001, 5999, 6000.5, 120, 40, 1, 1, 1, 50, 70, \n")
    import_file(layout, store, study, symbol="NQ", tz="UTC")
    before = {ds: store.read(DAY, ds) for ds in ("market_ticks", "market_bars", "market_depth")}
    rebuild_day(store, DAY, KNOWN)
    for ds, table in before.items():
        after = store.read(DAY, ds)
        assert sorted(after.column("content_hash").to_pylist()) == sorted(table.column("content_hash").to_pylist()), ds
        assert after.sort_by("content_hash").equals(table.sort_by("content_hash")), ds


def test_daily_gx_suite_covers_market_depth(layout, store, sierra_dir):
    from mia_pipeline.quality.gx import validate_daily

    land_depth(layout, store, sierra_dir / "MarketDepthData" / "ESU25_FUT_CME.2025-06-23.depth", "ES")
    outcome = validate_daily(store, DAY, "market_depth")
    assert outcome.passed and {e.name for e in outcome.per_expectation} == {
        "required_fields_present", "keys_unique", "values_in_domain"}
