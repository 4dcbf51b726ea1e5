"""`mia generate` and `mia report realism` through click's CliRunner: exit codes 0 / 1 / 2 and messages."""

import json

import pytest
from click.testing import CliRunner

from mia_pipeline.cli.generate import generate, realism_report
from mia_pipeline.synthetic import SCENARIOS, TABLES

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
    (["--minutes", "0"], "must be > 0"),
    (["--days", "0"], "must be > 0"),
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
    for day, seed in (("2025-08-21", 9), ("2025-08-22", 10)):
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
