"""A data root that does not exist: reading commands refuse with exit 2 and say how to create it;
the commands that create data create it."""

import pytest
from click.testing import CliRunner

from mia_pipeline.cli.common import CREATES_DATA_ROOT
from mia_pipeline.cli.main import cli

READERS = [
    ["status"],
    ["status", "--json"],
    ["check-integrity"],
    ["collect", "status"],
    ["collect", "stop"],
    ["rebuild", "--date", "2025-06-23"],
]


def invoke(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_reading_a_missing_data_dir_exits_2_and_says_how_to_create_it(tmp_path, command):
    missing = tmp_path / "nowhere"
    res = invoke("--data-dir", str(missing), *command)
    assert res.exit_code == 2, res.output
    assert f"data folder {missing} does not exist" in res.output
    assert f"mia --data-dir {missing} init" in res.output and "MIA_DATA_DIR" in res.output
    assert "Traceback" not in res.output
    assert not missing.exists()  # refusing leaves no empty tree behind


def test_missing_data_dir_from_the_environment_is_refused_too(tmp_path):
    missing = tmp_path / "nowhere"
    res = invoke("status", env={"MIA_DATA_DIR": str(missing), "MIA_CONFIG": None})
    assert res.exit_code == 2 and f"data folder {missing} does not exist" in res.output


def test_a_file_is_not_a_data_dir(tmp_path):
    cfg = tmp_path / "mia.yaml"
    afile = tmp_path / "afile"
    afile.write_text("x")
    cfg.write_text(f"data_dir: {afile}\n")
    res = invoke("--config", str(cfg), "status", env={"MIA_DATA_DIR": None})
    assert res.exit_code == 2 and "is not a folder" in res.output


def test_the_creating_commands_are_exactly_the_documented_ones():
    assert CREATES_DATA_ROOT == {"init", "demo", "generate", "simulate", "import", "collect start", "materialize"}


@pytest.mark.parametrize("command", [["init"], ["collect", "start", "--once"]], ids=" ".join)
def test_creating_commands_create_the_data_dir(tmp_path, command):
    root = tmp_path / "fresh"
    res = invoke("--data-dir", str(root), *command)
    assert res.exit_code == 0, res.output
    assert root.is_dir()
    assert invoke("--data-dir", str(root), "status").exit_code == 0


def test_generate_creates_the_data_dir(tmp_path):
    root = tmp_path / "fresh"
    res = invoke("--data-dir", str(root), "generate", "--start", "2025-08-21T13:30:00+00:00", "--minutes", "1")
    assert res.exit_code == 0, res.output
    assert list((root / "backtest").glob("*/normal/meta.json"))
