"""`mia --help` stays quick: the command modules import no heavy library until a command runs.

No timing here (speed goals live in benchmarks/): the guard is what gets imported, which is what the
time was spent on (pandas, pyarrow, numpy, duckdb and dagster took ~1.2 s of `mia --help`).
"""

import ast
import subprocess
import sys

HEAVY = {"pandas", "pyarrow", "dagster", "duckdb", "numpy"}


def _heavy_modules_after(code: str) -> list[str]:
    probe = f"{code}\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(HEAVY)!r}))"
    out = subprocess.run([sys.executable, "-c", f"import sys\n{probe}"], capture_output=True, text=True, check=True)
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_heavy_library():
    assert _heavy_modules_after("import mia_pipeline.cli.main") == []


def test_help_of_every_command_loads_no_heavy_library():
    # `mia --help` imports every command module (for the one-line summaries); each `--help` below
    # parses that command's options. None of it may pull in the data libraries.
    code = """
from click.testing import CliRunner
from mia_pipeline.cli.main import cli
runner = CliRunner()
names = cli.list_commands(None)
args = [["--help"]] + [[n, "--help"] for n in names] + [["collect", n, "--help"] for n in ("start", "stop", "status")]
args += [["report", "realism", "--help"]]
for a in args:
    res = runner.invoke(cli, a)
    assert res.exit_code == 0 and "Usage:" in res.output, (a, res.output)
"""
    assert _heavy_modules_after(code) == []


def test_a_subcommand_does_not_load_the_other_commands_modules(tmp_path):
    code = f"""
from click.testing import CliRunner
from mia_pipeline.cli.main import cli
res = CliRunner().invoke(cli, ["--data-dir", {str(tmp_path)!r}, "status", "--json"])
assert res.exit_code == 0, res.output
loaded = sorted(m for m in sys.modules if m.startswith("mia_pipeline.cli."))
assert loaded == ["mia_pipeline.cli.common", "mia_pipeline.cli.main", "mia_pipeline.cli.status"], loaded
"""
    subprocess.run([sys.executable, "-c", f"import sys\n{code}"], check=True)
