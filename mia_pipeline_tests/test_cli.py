"""The `mia` command's surface: help on every command, exit codes 0/1/2, dates that never become paths."""

import json
import subprocess
import sys
from pathlib import Path

import click
import pyarrow as pa
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.storage import PartitionStore


def run(layout, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args], catch_exceptions=False)


def test_help_on_every_command():
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0, top.output
    assert "Usage:" in top.output
    names = cli.list_commands(click.Context(cli))  # subcommands load lazily: not all in cli.commands yet
    assert {"init", "status", "check-integrity", "collect", "import", "rebuild", "simulate", "generate",
            "report", "demo"} <= set(names)
    for name in names:
        assert name in top.output
        res = runner.invoke(cli, [name, "--help"])
        assert res.exit_code == 0, name
        assert "Usage:" in res.output


def test_console_script_is_installed():
    exe = Path(sys.executable).with_name("mia")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    assert "init" in out and "status" in out


def test_init_is_idempotent(tmp_path):
    root = tmp_path / "d"
    runner = CliRunner()
    first = runner.invoke(cli, ["--data-dir", str(root), "init"])
    assert first.exit_code == 0 and "folders created" in first.output
    assert (root / "snapshots" / "daily").is_dir() and (root / "warehouse.duckdb").exists()
    again = runner.invoke(cli, ["--data-dir", str(root), "init"])
    assert again.exit_code == 0 and "0 folders created" in again.output


def test_status_reports_days_rows_bytes(layout):
    store = PartitionStore(layout)
    store.write("2025-06-23", "trades", pa.table({"trade_id": ["a", "b"]}))
    store.write("2025-06-24", "trades", pa.table({"trade_id": ["c"]}))
    res = run(layout, "status", "--json")
    assert res.exit_code == 0
    trades = json.loads(res.output)["datasets"]["trades"]
    assert trades["days"] == 2 and trades["rows"] == 3 and trades["bytes"] > 0
    assert trades["first_day"] == "2025-06-23" and trades["last_day"] == "2025-06-24"
    windowed = json.loads(run(layout, "status", "--json", "--from", "2025-06-24").output)
    assert windowed["datasets"]["trades"]["rows"] == 1
    table = run(layout, "status")
    assert "trades" in table.output and "2025-06-24" in table.output
    assert "\x1b" not in table.output  # not a terminal: plain text, no colour codes
    [row] = [line.split() for line in table.output.splitlines() if line.split()[:1] == ["trades"]]
    assert row[:5] == ["trades", "2", "2025-06-23", "2025-06-24", "3"]
    [empty] = [line.split() for line in table.output.splitlines() if line.split()[:1] == ["signals"]]
    assert empty[:5] == ["signals", "0", "-", "-", "0"]


@pytest.mark.parametrize("bad", ["2025-13-01", "../../etc", "2025-06-23/.."])
@pytest.mark.parametrize("command", [["status", "--from"], ["check-integrity", "--date"]])
def test_bad_dates_exit_2_with_a_message(layout, command, bad):
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *command, bad])
    assert res.exit_code == 2
    assert "invalid date" in res.output and "YYYY-MM-DD" in res.output


def test_bad_config_exits_2(tmp_path):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text("ibkr: {port: nope}\n")
    res = CliRunner().invoke(cli, ["--config", str(cfg), "status"])
    assert res.exit_code == 2 and "ibkr.port: expected an integer" in res.output


def test_every_settings_problem_is_listed_and_exits_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"MIA_RETENTION_DAYS": "abc", "MIA_COMPRESSION": "foo", "MIA_CONFIG": None, "MIA_DATA_DIR": str(tmp_path)}
    res = CliRunner().invoke(cli, ["status"], env=env)
    assert res.exit_code == 2
    assert res.output.startswith("Error: 2 problems in the settings:")
    assert "MIA_RETENTION_DAYS=abc: expected an integer" in res.output
    assert "MIA_COMPRESSION=foo: 'foo' is not one of zstd, snappy, gzip, lz4, none" in res.output
    assert "Traceback" not in res.output


def test_check_integrity_exit_codes(layout):
    store = PartitionStore(layout)
    store.write("2025-06-23", "trades", pa.table({"trade_id": ["a"]}))
    ok = run(layout, "check-integrity")
    assert ok.exit_code == 0 and "0 problem(s)" in ok.output
    layout.dataset_file("2025-06-23", "trades").write_bytes(b"garbage")
    bad = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "check-integrity"])
    assert bad.exit_code == 1 and "sha256" in bad.output


def test_demo_days_are_the_last_complete_trading_days():
    """The demo's days hold a Globex session (its synthetic partitions exist): weekends and CME
    holidays are skipped, today is never one of them, and they fall in one UTC week (one weekly ML
    dataset partition holds them all)."""
    from datetime import date

    from mia_pipeline.cli.demo import demo_days

    assert demo_days(date(2026, 12, 26)) == ["2026-12-22", "2026-12-23", "2026-12-24"]  # Christmas skipped
    assert demo_days(date(2026, 4, 6)) == ["2026-03-31", "2026-04-01", "2026-04-02"]    # Good Friday, weekend
    assert demo_days(date(2026, 12, 1)) == ["2026-11-25", "2026-11-26", "2026-11-27"]   # Monday alone: the week before


EXIT_PROBE = """
import atexit, sys
from pathlib import Path
from mia_pipeline.cli import common
from mia_pipeline.cli.main import main
marker, init = Path(sys.argv[1]), common.CliState.__init__

def start(self, *a, **k):  # a library's exit hook, registered while the command runs (as on import)
    atexit.register(lambda: marker.write_text("hook ran"))
    init(self, *a, **k)

common.CliState.__init__ = start
sys.argv = ["mia", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("args, code", [(["status", "--json"], 0), (["status", "--bogus"], 2),
                                        (["check-integrity"], 0), (["import", "/no/such/file.scid"], 2)])
def test_the_process_exits_with_the_commands_code_its_output_whole_and_exit_hooks_run(tmp_path, args, code):
    """`mia` ends without the interpreter's teardown (cli.main): the exit code is the command's, what it
    printed reaches a pipe whole, and exit hooks registered by libraries still run."""
    marker = tmp_path / "hook"
    assert CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "init"]).exit_code == 0
    proc = subprocess.run([sys.executable, "-c", EXIT_PROBE, str(marker), "--data-dir", str(tmp_path / "data"), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert marker.read_text() == "hook ran"
    assert "Traceback" not in proc.stderr
    if "--json" in args:
        json.loads(proc.stdout)  # the whole document reached the pipe
    if code == 2:
        assert "Error:" in proc.stderr
