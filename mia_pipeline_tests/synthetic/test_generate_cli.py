"""`mia generate` and `mia report realism` through click's CliRunner: exit codes 0 / 1 / 2 and messages."""

import json

import pytest
from click.testing import CliRunner

from mia_pipeline.cli.generate import generate, realism_report
from mia_pipeline.synthetic import SCENARIOS, TABLES
from mia_pipeline.synthetic.seeding import session_seed

START = "2025-08-21T13:30:00+00:00"


def invoke(*args, env=None):
    return CliRunner().invoke(generate, list(args), env=env)


def test_list_shows_every_scenario():
    res = invoke("--list")
    assert res.exit_code == 0
    assert all(name in res.output for name in SCENARIOS) and "NQ_leads" in res.output


@pytest.mark.parametrize(("args", "message"), [
    (["--scenario", "sideways"], "valid: normal, trend_up"),
    (["--leadership", "YM_leads"], "valid: NQ_leads, ES_leads, balanced"),
    (["--strength", "0.5"], "outside [0.0, 0.4]"),
    (["--strength", "-0.1"], "outside [0.0, 0.4]"),
    (["--minutes", "0"], "is not a session length"),
    (["--days", "0"], "is not a day count"),
])
def test_invalid_values_exit_2_with_the_valid_values(args, message):
    res = invoke("--start", START, *args)
    assert res.exit_code == 2, res.output
    assert message in res.output


@pytest.mark.parametrize("start", ["2025-08-21T13:30:00", "yesterday"])
def test_naive_or_unparsable_start_exits_2(start):
    res = invoke("--start", start)
    assert res.exit_code == 2 and "--start" in res.output


def test_missing_start_exits_2():
    assert invoke().exit_code == 2


def test_generates_days_under_the_data_dir(tmp_path):
    res = invoke("--scenario", "chop", "--start", START, "--minutes", "3", "--days", "2", "--seed", "9",
                 "--no-labels", env={"MIA_DATA_DIR": str(tmp_path)})
    assert res.exit_code == 0, res.output
    for day, seed in (("2025-08-21", session_seed(9, "2025-08-21", "chop")),
                      ("2025-08-22", session_seed(9, "2025-08-22", "chop"))):
        target = tmp_path / "backtest" / day / "chop"
        assert sorted(p.name for p in target.iterdir()) == sorted([f"{t}.parquet" for t in TABLES] + ["meta.json"])
        meta = json.loads((target / "meta.json").read_text())
        assert meta["seed"] == seed and meta["include_labels"] is False and meta["rows"]["ground_truth"] == 0
    assert "[2/2]" in res.output and "l1=1800" in res.output


def test_out_and_flags(tmp_path):
    res = invoke("--scenario", "news_spike", "--start", "2025-08-21T09:30:00-04:00", "--minutes", "2",
                 "--leadership", "ES_leads", "--strength", "0.3", "--no-options", "--out", str(tmp_path / "s"))
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["leadership"] == "ES_leads" and meta["strength"] == 0.3 and meta["rows"]["context"] == 0


def test_realism_report_exits_1_on_the_gaussian_walk():
    res = CliRunner().invoke(realism_report, ["--sessions", "2", "--seed", "1", "--gaussian"])
    assert res.exit_code == 1, res.output
    assert "excess_kurtosis_1m" in res.output and "FAIL" in res.output


@pytest.mark.parametrize(("start", "why", "next_open"), [
    ("2025-08-23T12:00:00-04:00", "weekend", "2025-08-24T18:00:00-04:00"),  # Saturday
    ("2025-08-21T17:30:00-04:00", "daily halt", "2025-08-21T18:00:00-04:00"),
    ("2026-04-03T09:30:00-04:00", "CME holiday", "2026-04-05T18:00:00-04:00"),  # Good Friday
    ("2026-12-25T09:30:00-05:00", "CME holiday", "2026-12-27T18:00:00-05:00"),  # Christmas
    ("2026-07-03T14:00:00-04:00", "early close at 13:00 ET", "2026-07-05T18:00:00-04:00"),
])
def test_closed_start_exits_2_with_the_next_open(tmp_path, start, why, next_open):
    res = invoke("--start", start, "--minutes", "5", env={"MIA_DATA_DIR": str(tmp_path)})
    assert res.exit_code == 2, res.output
    assert why in res.output and f"next open {next_open}" in res.output
    assert not (tmp_path / "backtest").exists()


def test_a_closed_later_day_refuses_the_whole_run(tmp_path):
    res = invoke("--start", "2025-08-22T09:30:00-04:00", "--minutes", "5", "--days", "2",
                 env={"MIA_DATA_DIR": str(tmp_path)})  # Friday then Saturday
    assert res.exit_code == 2 and "day 2: weekend" in res.output
    assert not (tmp_path / "backtest").exists()


def test_early_close_ends_the_session_early(tmp_path):
    res = invoke("--start", "2026-07-03T12:00:00-04:00", "--minutes", "120", "--no-labels", "--no-options",
                 "--out", str(tmp_path / "s"))
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["rows"]["l1"] == 2 * 60 * 60 * 5  # 12:00-13:00 ET only, 200 ms rows, ES + NQ


def test_out_never_replaces_what_is_not_a_session(tmp_path):
    """`--out` pointing at a user's folder, a file or a system path exits 2 and touches nothing; a
    session folder written before is replaced (a re-run)."""
    from click.testing import CliRunner

    from mia_pipeline.cli.main import cli

    mine = tmp_path / "mywork"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("precious")
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    args = ["--data-dir", str(tmp_path / "data"), "generate", "--minutes", "1", "--start", "2025-06-23T14:30:00Z"]
    for out, hint in ((mine, "not a session folder"), (afile, "is a file"), ("/proc/self", "system folder"),
                      ("/dev/null", "system folder")):
        result = CliRunner().invoke(cli, [*args, "--out", str(out)])
        assert result.exit_code == 2 and hint in result.output and "Traceback" not in result.output, result.output
    assert (mine / "notes.txt").read_text() == "precious" and (mine / "sub").is_dir()
    session = tmp_path / "session"
    for _ in range(2):  # the second run replaces the first session
        assert CliRunner().invoke(cli, [*args, "--out", str(session)]).exit_code == 0
    assert (session / "meta.json").exists()
