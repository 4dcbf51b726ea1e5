"""`mia validate`: exit 0 with a readable report and Data Docs for an honest dataset, 1 when a check
fails (a leak), 2 for a path that is not a dataset or a config with unknown keys or broken JSON, and
the daily suites behind `--day`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import END, START

from mia_pipeline.cli.main import cli
from mia_pipeline.layout import Layout, init_tree
from mia_pipeline.ml.bundle import build_bundle, write_bundle


@pytest.fixture(scope="module")
def folders(sim_store, tmp_path_factory):
    """(data root without source partitions, honest dataset folder, leaky dataset folder)."""
    root = tmp_path_factory.mktemp("val") / "data"
    init_tree(Layout(root))
    b = build_bundle(sim_store, START, END)
    good = write_bundle(b, root / "processed" / "ml_ready" / b.name)
    b.features["leak"] = b.labels["tb_label"].to_numpy() + np.random.default_rng(0).normal(0, 0.01, len(b.labels))
    bad = write_bundle(b, root / "processed" / "ml_ready" / "leaky")
    return root, good, bad


def run(root, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(root), "validate", *args], catch_exceptions=False)


def test_honest_dataset_with_its_sources_exits_0_with_report_and_data_docs(sim_store, folders):
    _, good, _ = folders
    root = sim_store.layout.root
    res = run(root, "--dataset", str(good))
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f"dataset {START}_{END}:")
    for check in ("no_label_leak", "files_match_manifest", "point_in_time", "labels_rederived", "sources_unchanged"):
        assert any(line.startswith(f"PASS  {check}") for line in lines), check
    assert lines[-1].startswith("validation PASSED")
    assert (root / "reports" / "gx" / "index.html").is_file()
    assert "Data Docs:" in lines[-1]


def test_honest_dataset_without_its_sources_is_unverified_exit_1(folders):
    root, good, _ = folders
    res = run(root, "--dataset", str(good), "--no-docs")
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    assert any(line.startswith("UNVERIFIED  point_in_time") for line in lines), "this root holds no source days"
    assert lines[-1].startswith("validation UNVERIFIED: sources_unchanged, columns_accounted, point_in_time, "
                                "labels_rederived could not run: the data root lacks")
    assert "FAIL" not in res.output


def test_leaky_dataset_exits_1_and_names_the_feature(folders):
    root, _, bad = folders
    res = run(root, "--dataset", str(bad), "--no-docs", "--json")
    assert res.exit_code == 1
    out = json.loads(res.output)
    failed = [r for r in out["results"] if r["status"] == "FAIL"]
    assert [r["name"] for r in failed] == ["no_label_leak"] and "feature=leak" in failed[0]["detail"]
    assert out["verdict"] == "FAILED"


def test_bad_inputs_exit_2_with_a_message(folders, tmp_path):
    root, good, _ = folders
    res = run(root, "--dataset", str(tmp_path / "nope"))
    assert res.exit_code == 2 and "no such dataset" in res.output
    cfg = tmp_path / "v.json"
    cfg.write_text(json.dumps({"max_corr": 0.9}))
    res = run(root, "--dataset", str(good), "--config", str(cfg))
    assert res.exit_code == 2 and "unknown validation config key(s): max_corr" in res.output
    cfg.write_text("{not json")
    res = run(root, "--dataset", str(good), "--config", str(cfg))
    assert res.exit_code == 2 and "not valid JSON" in res.output
    assert run(root).exit_code == 2
    assert run(root, "--dataset", str(good), "--day", "2025-06-23").exit_code == 2


def test_config_thresholds_apply(folders, tmp_path):
    root, good, _ = folders
    cfg = tmp_path / "v.json"
    cfg.write_text(json.dumps({"warn_only": [], "max_abs_correlation": 0.95}))
    res = run(root, "--dataset", str(good), "--config", str(cfg), "--no-docs")
    assert res.exit_code == 1 and "FAIL  feature_correlation" in res.output


def test_day_runs_the_daily_suites(sim_store):
    res = run(sim_store.layout.root, "--day", "2025-06-24", "--dataset-name", "trades", "--dataset-name", "signals",
              "--no-docs")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[:2] == ["PASS  trades       all expectations met",
                                           "PASS  signals      all expectations met"]
