"""The wheel is the product: the ``mia_pipeline`` package and its metadata, no test doubles, tests or data.

Built here with the project's own build backend (hatchling, PEP 517 ``build_wheel``), the same as
``uv build`` does, into a temporary folder.
"""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = "import sys; from hatchling.build import build_wheel; print(build_wheel(sys.argv[1]))"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-c", BUILD, str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out / proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def wheel_files(wheel) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_the_wheel_holds_the_package_and_its_metadata_only(wheel_files):
    tops = {name.split("/")[0] for name in wheel_files}
    assert tops == {"mia_pipeline", "mia_pipeline-0.1.0.dist-info"}, tops
    assert "mia_pipeline/definitions.py" in wheel_files and "mia_pipeline/cli/main.py" in wheel_files
    sources = {name for name in wheel_files if name.startswith("mia_pipeline/") and name.endswith(".py")}
    on_disk = {str(p.relative_to(REPO)) for p in (REPO / "mia_pipeline").rglob("*.py")}
    assert sources == on_disk  # every module of the package, nothing else


def test_no_test_double_test_or_compiled_code_ships(wheel_files):
    suspicious = [name for name in wheel_files
                  if any(part in name.lower() for part in ("test", "fake", "mock", "guide_examples", "conftest"))
                  or name.endswith((".so", ".pyd", ".c", ".pyc", ".parquet", ".jsonl", ".scid"))]
    assert suspicious == []


def test_the_entry_point_is_the_cli(wheel):
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read("mia_pipeline-0.1.0.dist-info/entry_points.txt").decode()
    assert "mia = mia_pipeline.cli.main:main" in text
