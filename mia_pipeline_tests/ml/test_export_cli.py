"""`mia export` (the guide's export_ml_data.py flags): each flag changes what is written where, and every
bad input — flags, periods, config files with unknown keys or wrong types, an empty window, trades without
exits, a failed validation — exits 2 or 1 with a one-line message and writes nothing."""

import json
import shutil
import sys
import types
from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.layout import Layout
from mia_pipeline.ml.export import parse_period

TAG = "20250623_20250625"


@pytest.fixture(scope="module")
def root(sim_store, tmp_path_factory):
    """A private copy of the three simulated days (exports write under <root>/processed)."""
    dst = tmp_path_factory.mktemp("export_cli") / "data"
    shutil.copytree(sim_store.layout.root, dst)
    return dst


@pytest.fixture(scope="module")
def n_rows(sim_store):
    """Decisions in the three simulated days (what every whole-window export holds)."""
    from mia_pipeline.ml.bundle import build_bundle

    return len(build_bundle(sim_store, "2025-06-23", "2025-06-25").features)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.delenv("MIA_CONFIG", raising=False)
    monkeypatch.delenv("MIA_DATA_DIR", raising=False)


def mia(root, *args):
    res = CliRunner().invoke(cli, ["--data-dir", str(root), "export", *args])
    assert "Traceback" not in res.output, res.output
    return res


def names(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _fake_validation(monkeypatch, success):
    calls = []
    report = types.SimpleNamespace(success=success, to_text=lambda: "check t1_after_t0: 3 rows\nvalidation " + ("PASSED" if success else "FAILED"),
                                   to_dict=lambda: {"success": success})
    module = types.ModuleType("mia_pipeline.ml.validation")
    module.validate_dataset = lambda bundle, config=None, docs_dir=None, store=None: calls.append(store) or report
    monkeypatch.setitem(sys.modules, "mia_pipeline.ml.validation", module)
    return calls


# ------------------------------------------------------------------------------------------ what each flag does
def test_default_export_goes_to_ml_ready_exports(root, n_rows):
    res = mia(root)
    assert res.exit_code == 0, res.output
    out = Layout(root).ml_ready_dir / "exports"
    assert names(out) == [f"features_dataset_{TAG}.parquet", f"labels_dataset_{TAG}.parquet",
                          f"metadata_{TAG}.json", f"statistics_{TAG}.json"]
    assert f"wrote {out / f'features_dataset_{TAG}.parquet'} ({n_rows:,} rows, " in res.output
    assert f"exported {n_rows:,} decisions of 2025-06-23..2025-06-25 as parquet (4 files, tag {TAG})" in res.output


def test_csv_for_a_month_uses_the_guide_names(root, tmp_path, n_rows):
    res = mia(root, "--format", "csv", "--period", "2025-06", "--output", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert names(tmp_path) == ["features_dataset_202506.csv", "labels_dataset_202506.csv", "metadata_202506.json",
                               "statistics_202506.json"]
    meta = json.loads((tmp_path / "metadata_202506.json").read_text())
    assert meta["window"] == {"start": "2025-06-01", "end": "2025-06-30"} and meta["export"]["format"] == "csv"
    assert pd.read_csv(tmp_path / "features_dataset_202506.csv").shape[0] == n_rows


def test_days_period_and_parquet_compression(root, tmp_path):
    res = mia(root, "--period", "2025-06-24:2025-06-25", "--compression", "zstd", "--output", str(tmp_path))
    assert res.exit_code == 0, res.output
    path = tmp_path / "features_dataset_20250624_20250625.parquet"
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    assert pd.read_parquet(path)["t0"].min() >= pd.Timestamp("2025-06-24", tz="UTC")


def test_json_gzip_include_metadata_and_quick(root, tmp_path):
    res = mia(root, "--quick", "--format", "json", "--compression", "gzip", "--output", str(tmp_path / "q"))
    assert res.exit_code == 0, res.output
    assert names(tmp_path / "q") == [f"features_dataset_{TAG}.jsonl.gz", f"labels_dataset_{TAG}.jsonl.gz"]
    res = mia(root, "--quick", "--format", "json", "--include-metadata", "--output", str(tmp_path / "m"))
    assert names(tmp_path / "m") == [f"features_dataset_{TAG}.jsonl", f"labels_dataset_{TAG}.jsonl",
                                     f"metadata_{TAG}.json"]


def test_full_writes_splits_and_validate_passes(root, tmp_path, monkeypatch):
    calls = _fake_validation(monkeypatch, success=True)
    res = mia(root, "--full", "--validate", "--output", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert [c.layout.root for c in calls] == [root], "validated once, with the store (lineage checks)"
    assert "validation PASSED" in res.output
    assert f"splits_{TAG}.parquet" in names(tmp_path) and len(names(tmp_path)) == 5
    assert json.loads((tmp_path / f"metadata_{TAG}.json").read_text())["validation"] == {"success": True}


def test_failed_validation_exits_1_prints_the_report_and_writes_nothing(root, tmp_path, monkeypatch):
    _fake_validation(monkeypatch, success=False)
    res = mia(root, "--full", "--validate", "--output", str(tmp_path / "out"))
    assert res.exit_code == 1
    assert "check t1_after_t0: 3 rows\nvalidation FAILED" in res.output
    assert "failed validation (report above); nothing was exported" in res.output
    assert names(tmp_path / "out") == []


def test_custom_config(root, tmp_path):
    cfg = tmp_path / "export_config.json"
    cfg.write_text(json.dumps({"format": "csv", "include_splits": True, "split_schemes": ["walk_forward"],
                               "columns": ["feature_1"], "period": "2025-06-23:2025-06-24",
                               "output_dir": str(tmp_path / "custom"), "ml": {"tb_horizon": "15min"},
                               "split": {"walk_forward_splits": 2}}))
    res = mia(root, "--custom", "--config", str(cfg))
    assert res.exit_code == 0, res.output
    out = tmp_path / "custom"
    tag = "20250623_20250624"
    assert pd.read_csv(out / f"features_dataset_{tag}.csv", nrows=1).columns.tolist() == ["signal_id", "t0", "feature_1"]
    splits = pd.read_csv(out / f"splits_{tag}.csv")
    assert set(splits["scheme"]) == {"walk_forward"} and splits["fold"].nunique() == 2
    meta = json.loads((out / f"metadata_{tag}.json").read_text())
    assert meta["config"]["tb_horizon"] == "15min" and meta["splits"]["walk_forward_splits"] == 2
    res = mia(root, "--custom", "--config", str(cfg), "--format", "parquet", "--output", str(tmp_path / "flag"))
    assert res.exit_code == 0 and f"features_dataset_{tag}.parquet" in names(tmp_path / "flag"), "flags win"


# ------------------------------------------------------------------------------------------ bad input
BAD_CONFIGS = [
    ('{"format": "csv", "bogus": 1}', "unknown export config key(s): bogus"),
    ('{"format": "csv",', "is not valid JSON"),
    ('{"include_splits": "yes"}', "include_splits: expected true or false"),
    ('{"ml": {"nope": 3}}', "ml: unknown ML config key(s): nope"),
    ('{"split": {"n_splits": "5"}}', "split.n_splits: expected an integer"),
    ('{"columns": ["no_such_feature"]}', "columns: no feature named no_such_feature"),
    ('["csv"]', "expected a JSON object"),
]


@pytest.mark.parametrize("text, message", BAD_CONFIGS)
def test_bad_config_file_exits_2_naming_the_key(root, tmp_path, text, message):
    cfg = tmp_path / "export_config.json"
    cfg.write_text(text)
    res = mia(root, "--custom", "--config", str(cfg), "--output", str(tmp_path / "out"))
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert names(tmp_path / "out") == []


@pytest.mark.parametrize("args, message", [
    (["--period", "june"], "accepted: last_month, YYYY-MM"),
    (["--period", "2025-06-25:2025-06-23"], "END 2025-06-23 is before START 2025-06-25"),
    (["--period", "../../etc"], "accepted: last_month"),
    (["--format", "xls"], "'xls' is not one of"),
    (["--format", "csv", "--compression", "snappy"], "CSV and JSON take gzip"),
    (["--compression", "lz4"], "'lz4' is not one of"),
    (["--quick", "--full"], "--quick and --full exclude each other"),
    (["--custom"], "--custom needs --config FILE"),
    (["--config", "x.json"], "does not exist"),
    (["--custom", "--config", "/no/such/export_config.json"], "does not exist"),
])
def test_bad_flags_exit_2(root, tmp_path, args, message):
    res = mia(root, *args, "--output", str(tmp_path / "out"))
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert names(tmp_path / "out") == []


def test_config_without_custom_exits_2(root, tmp_path):
    cfg = tmp_path / "export_config.json"
    cfg.write_text("{}")
    res = mia(root, "--config", str(cfg))
    assert res.exit_code == 2 and "--config FILE goes with --custom" in res.output


def test_output_that_is_a_file_exits_2(root, tmp_path):
    (tmp_path / "f").write_text("x")
    res = mia(root, "--output", str(tmp_path / "f"))
    assert res.exit_code == 2 and "is a file" in res.output


def test_empty_window_exits_1_and_writes_nothing(root, tmp_path):
    res = mia(root, "--period", "2024-01", "--output", str(tmp_path / "out"))
    assert res.exit_code == 1
    assert "no signals between 2024-01-01 and 2024-01-31" in res.output and "nothing was exported" in res.output
    assert names(tmp_path / "out") == []
    start, end, _ = parse_period("last_month")   # the simulated days are in 2025-06, long before last month
    res = mia(root, "--period", "last_month", "--output", str(tmp_path / "out"))
    assert res.exit_code == 1 and f"no signals between {start} and {end}" in res.output


def test_trades_without_exits_exits_1(layout, tmp_path):
    from mia_pipeline.collection.collector import ingest_once
    from mia_pipeline.sources.paper_trading import simulate
    from mia_pipeline.storage.partitions import PartitionStore

    simulate(layout.streaming_dir, start=date(2025, 6, 23), days=1, seed=7)
    store = PartitionStore(layout)
    ingest_once(layout, store, None)
    assert store.delete("2025-06-23", "trade_exits")
    res = mia(layout.root, "--period", "2025-06-23:2025-06-23")
    assert res.exit_code == 1
    assert "trade(s) but no trade_exits" in res.output and "nothing was exported" in res.output
    assert names(layout.ml_ready_dir / "exports") == []


def test_no_days_and_no_data_root(layout, tmp_path):
    res = mia(layout.root)
    assert res.exit_code == 1 and "no days under" in res.output
    res = mia(tmp_path / "missing")
    assert res.exit_code == 2 and "does not exist" in res.output


@pytest.mark.slow
def test_full_validate_with_the_real_checks(root, tmp_path):
    res = mia(root, "--full", "--validate", "--output", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "validation PASSED" in res.output and "PASS  sources_unchanged" in res.output
    meta = json.loads((tmp_path / f"metadata_{TAG}.json").read_text())
    assert meta["validation"]["success"] and len(names(tmp_path)) == 5
