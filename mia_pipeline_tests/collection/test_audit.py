"""The cross-day findings of `mia check-integrity`: what no single day's manifest vouches for.

Protects: a trade_id stored on two days is reported (and one stored once is not); a CME trading day
missing between stored days is a gap while weekends and full holidays (Good Friday) are not; an explicit --start/--end
range reports the trading days it lacks; archived months are reported until a verified backup holds
them; quarantine totals are summed per reason; the CLI exits 1 on any of these and 2 on a bad range.
"""

from collections import Counter
from datetime import date

import pyarrow as pa
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.collection.audit import audit, duplicate_ids, gaps


def _trades(store, day, ids):
    store.write(day, "trades", pa.table({"trade_id": ids, "ts": pa.array([day + "T15:00:00Z"] * len(ids))}))


def test_an_id_on_two_days_is_reported(store):
    _trades(store, "2025-06-23", ["T1", "T2"])
    _trades(store, "2025-06-24", ["T2", "T3"])
    found = duplicate_ids(store, ["2025-06-23", "2025-06-24"])
    assert len(found) == 1 and "trade_id T2 is stored on 2 days (2025-06-23, 2025-06-24)" in found[0]


def test_gaps_follow_the_cme_calendar():
    # Good Friday 2025-04-18 and the weekend are closed; Thursday 2025-04-17 is a trading day.
    assert gaps(["2025-04-16", "2025-04-21"]) == ["2025-04-17: a CME Globex (exchange_calendars CMES) "
                                                  "trading day with no stored data (collection missed it?)"]
    assert gaps(["2025-04-17", "2025-04-21"]) == []
    assert [g[:10] for g in gaps(["2025-07-07"], date(2025, 7, 3), date(2025, 7, 8))] == [
        "2025-07-03", "2025-07-04", "2025-07-08"]  # July 4th: an early close, still a session


def test_audit_reports_archives_without_backup_and_quarantine_totals(layout, store, monkeypatch):
    from mia_pipeline.collection import audit as audit_mod
    from mia_pipeline.settings import load_settings

    _trades(store, "2025-06-23", ["T1"])
    settings = load_settings(env={"MIA_DATA_DIR": str(layout.root)})
    monkeypatch.setattr(audit_mod, "quarantine_totals", lambda _l: Counter({"malformed_json": 3}))
    report = audit(layout, store, settings)
    assert report.problems == [] and report.quarantine == Counter({"malformed_json": 3})
    monkeypatch.setattr(audit_mod, "unbacked_archives", lambda *_: ["archive 2025-06: trades not in any verified backup"])
    assert audit(layout, store, settings).problems == ["archive 2025-06: trades not in any verified backup"]


def test_cli_exits_1_on_cross_day_problems_and_2_on_a_bad_range(layout, store):
    _trades(store, "2025-06-23", ["T1"])
    _trades(store, "2025-06-25", ["T1"])
    run = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "check-integrity"])
    assert run.exit_code == 1 and "ids on several days: 1" in run.output and "gaps: 1" in run.output
    assert "PROBLEM 2025-06-24: a CME Globex (exchange_calendars CMES) trading day" in run.output
    bad = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "check-integrity", "--start", "2025-06-25",
                                   "--end", "2025-06-23"])
    assert bad.exit_code == 2 and "--end 2025-06-23 is before --start 2025-06-25" in bad.output
    both = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "check-integrity", "--date", "2025-06-23",
                                    "--start", "2025-06-23"])
    assert both.exit_code == 2
