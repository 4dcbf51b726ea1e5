"""One seeding rule: `mia generate` and the `synthetic_session` asset write byte-identical sessions."""

from datetime import date, datetime

import dagster as dg
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.defs.synthetic import synthetic_session
from mia_pipeline.sources.paper_trading import plan_day
from mia_pipeline.synthetic import TABLES
from mia_pipeline.synthetic.schedule import ET
from mia_pipeline.synthetic.seeding import DEFAULT_BASE_SEED, session_day, session_seed


def test_rule_is_stable_and_distinguishes_day_scenario_and_base():
    s = session_seed(5, date(2025, 8, 21), "chop")
    assert s == session_seed(5, "2025-08-21", "chop") == session_seed(5, datetime(2025, 8, 21, 9, 30, tzinfo=ET), "chop")
    assert 0 <= s < 2**32
    assert len({s, session_seed(6, "2025-08-21", "chop"), session_seed(5, "2025-08-22", "chop"),
                session_seed(5, "2025-08-21", "normal")}) == 4
    assert session_seed(-1, "2025-08-21", "chop") == session_seed(DEFAULT_BASE_SEED, "2025-08-21", "chop")


def test_session_day_is_the_et_date_of_the_start():
    assert session_day(datetime.fromisoformat("2025-06-02T01:00:00+00:00")) == date(2025, 6, 1)  # 21:00 ET
    with pytest.raises(ValueError):
        session_day(datetime(2025, 6, 2))


def test_paper_trading_market_uses_the_rule():
    plan = plan_day(7, date(2025, 6, 23))
    assert plan.gen_seed == session_seed(7, date(2025, 6, 23), plan.scenario)


@pytest.mark.parametrize(("cli_seed", "config_seed"), [(["--seed", "11"], 11), ([], -1)])
def test_cli_and_asset_write_identical_parquet(tmp_path, cli_seed, config_seed):
    day, scenario = "2025-08-21", "gamma_pin"
    cli_root, asset_root = tmp_path / "cli", tmp_path / "asset"
    res = CliRunner().invoke(cli, ["--data-dir", str(cli_root), "generate", "--scenario", scenario,
                                            "--start", f"{day}T09:30:00-04:00", "--minutes", "5", *cli_seed])
    assert res.exit_code == 0, res.output
    result = dg.materialize(
        [synthetic_session], partition_key=dg.MultiPartitionKey({"date": day, "scenario": scenario}),
        resources={"mia": MiaResource(data_dir=str(asset_root))},
        run_config={"ops": {"synthetic_session": {"config": {"minutes": 5, "seed": config_seed}}}},
    )
    assert result.success
    a_dir = asset_root / "backtest" / day / scenario
    c_dir = cli_root / "backtest" / day / scenario
    for table in TABLES:
        assert (c_dir / f"{table}.parquet").read_bytes() == (a_dir / f"{table}.parquet").read_bytes(), table
