"""ML exports (library): periods and their file tags, ExportConfig refusing unknown keys and wrong types,
Parquet keeping dtypes, CSV/JSON Lines with ISO-8601 UTC times and exact floats, metadata naming its
source partitions by sha256, statistics matching pandas, and the set written all-or-nothing (a failure
at any step leaves the folder exactly as it was)."""

import gzip
import io
import json
import os
import sys
import types
from dataclasses import replace
from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import END, START

from mia_pipeline.ml import export as ex
from mia_pipeline.ml.bundle import DatasetBundle, build_bundle, columns_of, read_bundle, write_bundle
from mia_pipeline.ml.export import (
    PRESETS,
    ExportConfig,
    ExportConfigError,
    ExportValidationError,
    export_dataset,
    parse_period,
    period_tag,
)
from mia_pipeline.storage import publish
from mia_pipeline.storage.atomic import sha256_file

TAG = "20250623_20250625"
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"


@pytest.fixture(scope="module")
def bundle(sim_store):
    return build_bundle(sim_store, START, END)


def _strict(text: str):
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


# ------------------------------------------------------------------------------------------ periods
@pytest.mark.parametrize("text, today, expected", [
    ("last_month", date(2025, 7, 15), (date(2025, 6, 1), date(2025, 6, 30), "202506")),
    ("last_month", date(2025, 1, 1), (date(2024, 12, 1), date(2024, 12, 31), "202412")),
    ("2024-02", None, (date(2024, 2, 1), date(2024, 2, 29), "202402")),
    ("2025-06", None, (date(2025, 6, 1), date(2025, 6, 30), "202506")),
    ("2025-06-23:2025-06-27", None, (date(2025, 6, 23), date(2025, 6, 27), "20250623_20250627")),
    ("2025-06-23:2025-06-23", None, (date(2025, 6, 23), date(2025, 6, 23), "20250623_20250623")),
])
def test_periods(text, today, expected):
    assert parse_period(text, today=today) == expected


@pytest.mark.parametrize("bad", ["june", "2025-13", "2025", "", "2025-06-31:2025-07-01", "2025-06-23:",
                                 "../../etc", "2025-06-23:2025-06-27:2025-06-28", "last month"])
def test_bad_periods_list_the_accepted_forms(bad):
    with pytest.raises(ValueError, match="accepted: last_month, YYYY-MM .* START:END"):
        parse_period(bad)


def test_end_before_start_is_refused():
    with pytest.raises(ValueError, match="END 2025-06-23 is before START 2025-06-27"):
        parse_period("2025-06-27:2025-06-23")


def test_period_tag_is_a_month_only_for_a_whole_month():
    assert period_tag(date(2025, 6, 1), date(2025, 6, 30)) == "202506"
    assert period_tag(date(2025, 6, 1), date(2025, 6, 29)) == "20250601_20250629"
    assert period_tag(date(2025, 6, 23), date(2025, 6, 25)) == TAG


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("settings, message", [
    ({"bogus": 1}, "unknown export config key.*bogus"),
    ({"format": "xls"}, "format: 'xls' is not one of"),
    ({"format": "csv", "compression": "snappy"}, "compression: 'snappy' does not apply to csv"),
    ({"compression": "lz4"}, "Parquet takes snappy, zstd or gzip"),
    ({"include_splits": "yes"}, "include_splits: expected true or false"),
    ({"split_schemes": ["kfold"]}, "split_schemes: expected a non-empty list"),
    ({"columns": "feature_1"}, "columns: expected a non-empty list"),
    ({"ml": {"bogus": 1}}, r"ml: unknown ML config key\(s\): bogus"),
    ({"ml": {"tb_horizon": 5}}, "ml.tb_horizon: expected a duration"),
    ({"ml": {"rolling_windows": [5, "x"]}}, "ml.rolling_windows: expected a non-empty list of positive integers"),
    ({"ml": {"tb_profit_take": True}}, "ml.tb_profit_take: expected a positive finite number"),
    ({"ml": {"tb_horizon": "100000days"}}, r"ml.tb_horizon: expected a duration .*at most 366 days"),
    ({"ml": {"correlation_pairs": [[1, 9]]}}, "ml.correlation_pairs: expected a non-empty list of pairs"),
    ({"ml": {"correlation_pairs": [[]]}}, "ml.correlation_pairs: expected a non-empty list of pairs"),
    ({"ml": {"tb_vol_window": 10**12}}, "ml.tb_vol_window: expected an integer from 0 to 1,000,000"),
    ({"split": {"n_splits": 10**9}}, r"split.n_splits: expected an integer from 2 to 1000"),
    ({"split": {"embargo": "-5min"}}, r"split.embargo: expected a duration"),
    ({"split": {"n_splits": 1}}, r"split.n_splits: expected an integer from 2 to 1000"),
    ({"split": {"embargo": "soon"}}, "split.embargo: expected a duration"),
    ({"split": {"folds": 3}}, "split.folds: unknown key"),
    ({"period": "june"}, "period: period 'june'"),
    ({"period": 202506}, "period: expected text"),
    ([1, 2], "expected a JSON object"),
])
def test_config_refuses_unknown_keys_and_wrong_types(settings, message):
    with pytest.raises(ExportConfigError, match=message):
        ExportConfig.from_dict(settings)


def test_config_from_dict_builds_the_builder_and_split_settings():
    cfg = ExportConfig.from_dict({"format": "csv", "compression": "gzip", "columns": ["feature_1"],
                                  "ml": {"tb_horizon": "15min", "lookback_periods": [5, 10]},
                                  "split": {"n_splits": 3, "embargo": "1h"}}, base=PRESETS["full"])
    assert cfg.include_splits and cfg.columns == ("feature_1",) and cfg.extension == "csv.gz"
    assert cfg.ml_config.tb_horizon == "15min" and cfg.ml_config.lookback_periods == (5, 10)
    assert cfg.split_config.n_splits == 3 and cfg.split_config.embargo_td == pd.Timedelta("1h")
    assert not PRESETS["quick"].include_metadata and not PRESETS["quick"].include_statistics
    assert PRESETS["full"].include_splits and PRESETS["full"].include_metadata and PRESETS["full"].include_statistics


# ------------------------------------------------------------------------------------------ formats
@pytest.mark.parametrize("codec", ["snappy", "zstd", "gzip"])
def test_parquet_keeps_dtypes_and_index(bundle, tmp_path, codec):
    paths = export_dataset(bundle, tmp_path, replace(PRESETS["full"], compression=codec))
    assert [p.name for p in paths] == [f"features_dataset_{TAG}.parquet", f"labels_dataset_{TAG}.parquet",
                                       f"splits_{TAG}.parquet", f"statistics_{TAG}.json", f"metadata_{TAG}.json"]
    pd.testing.assert_frame_equal(pd.read_parquet(paths[0]), bundle.features, check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(paths[1]), bundle.labels, check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(paths[2]), bundle.splits, check_exact=True)
    assert pq.ParquetFile(paths[0]).metadata.row_group(0).column(0).compression == codec.upper()


def test_csv_has_signal_id_iso_utc_times_and_exact_values(bundle, tmp_path):
    [feat, lab] = export_dataset(bundle, tmp_path, replace(PRESETS["quick"], format="csv"))
    assert feat.name == f"features_dataset_{TAG}.csv"
    assert feat.read_text().splitlines()[0].startswith('"signal_id","t0",')
    back = pd.read_csv(lab, keep_default_na=False, na_values=[""])
    y = bundle.labels
    assert back["signal_id"].tolist() == y.index.tolist()
    for col in ("t0", "t1", "tb_t1"):
        assert back[col].dropna().str.match(ISO).all()
        pd.testing.assert_series_equal(pd.to_datetime(back[col], utc=True).dt.as_unit("ns"),
                                       y[col].dt.as_unit("ns").reset_index(drop=True), check_names=False)
    for col in ("tb_return", "tb_sigma", "pnl"):   # shortest round-trip text: bit-exact, missing stays missing
        pd.testing.assert_series_equal(back[col], y[col].reset_index(drop=True), check_exact=True,
                                       check_names=False)
    assert back["executed"].tolist() == y["executed"].tolist()
    assert "nan" not in feat.read_text().lower().replace("_nan", "")


def test_json_lines_are_strict_json_with_exact_values(bundle, tmp_path):
    [feat, lab] = export_dataset(bundle, tmp_path, replace(PRESETS["quick"], format="json"))
    assert feat.name == f"features_dataset_{TAG}.jsonl"
    rows = [_strict(line) for line in lab.read_text().splitlines()]
    y = bundle.labels
    assert len(rows) == len(y) and list(rows[0]) == ["signal_id", *y.columns]
    assert [r["signal_id"] for r in rows] == y.index.tolist()
    assert all(pd.isna(v) if r["tb_sigma"] is None else r["tb_sigma"] == v for r, v in zip(rows, y["tb_sigma"], strict=True))
    assert [r["executed"] for r in rows] == y["executed"].tolist()
    assert all(r["t0"].endswith("Z") for r in rows)
    assert pd.to_datetime(pd.Series([r["t1"] for r in rows]), utc=True).tolist() == y["t1"].tolist()
    assert sum(r["pnl"] is None for r in rows) == int(y["pnl"].isna().sum())


def test_text_is_escaped_and_compression_is_gzip(tmp_path):
    odd = ['say "hi"', "back\\slash", "line\nbreak", "café ✓", None]
    t0 = pd.Series(pd.date_range("2025-06-23 13:00", periods=5, freq="1min", tz="UTC"), name="t0")
    ids = pd.Index([f"S{i}" for i in range(5)], name="signal_id")
    features = pd.DataFrame({"t0": t0.to_numpy(), "note": pd.array(odd, dtype="str"), "x": [1.5, None, 1e-7, 2.0, 1e300]},
                            index=ids)
    labels = pd.DataFrame({"t0": t0.to_numpy(), "t1": (t0 + pd.Timedelta("5min")).to_numpy()}, index=ids)
    tiny = DatasetBundle(features, labels, pd.DataFrame(columns=["scheme", "fold", "signal_id", "role"]),
                         {"window": {"start": "2025-06-23", "end": "2025-06-23"}})
    [plain] = [p for p in export_dataset(tiny, tmp_path / "a", replace(PRESETS["quick"], format="json"))
               if "features" in p.name]
    rows = [_strict(line) for line in plain.read_text(encoding="utf-8").splitlines()]
    assert [r["note"] for r in rows] == odd
    assert [r["x"] for r in rows] == [1.5, None, 1e-7, 2.0, 1e300]
    assert rows[0]["t0"] == "2025-06-23T13:00:00.000Z"
    for fmt in ("json", "csv"):
        [gz, _] = export_dataset(tiny, tmp_path / fmt, replace(PRESETS["quick"], format=fmt, compression="gzip"))
        assert gz.name.endswith(".jsonl.gz" if fmt == "json" else ".csv.gz")
        [same, _] = export_dataset(tiny, tmp_path / f"{fmt}-plain", replace(PRESETS["quick"], format=fmt))
        assert gzip.decompress(gz.read_bytes()) == same.read_bytes()
    back = pd.read_csv(io.BytesIO(same.read_bytes()), keep_default_na=False, na_values=[""])
    assert back["note"].tolist()[:4] == odd[:4] and pd.isna(back["note"].iloc[4])


# ------------------------------------------------------------------------------------------ metadata & statistics
def test_metadata_names_sources_files_and_dtypes(bundle, sim_store, tmp_path):
    paths = export_dataset(bundle, tmp_path, PRESETS["full"])
    meta = _strict(paths[-1].read_text())
    assert meta["window"] == {"start": START, "end": END} and meta["rows"] == len(bundle.features)
    for p in meta["source_partitions"]:   # lineage: the sha256 of the very partition files read
        assert p["sha256"] == sha256_file(sim_store.layout.dataset_file(p["day"], p["dataset"]))
    assert {p["dataset"] for p in meta["source_partitions"]} == {"signals", "trades", "trade_exits", "market_bars"}
    files = {f["name"]: f for f in meta["export"]["files"]}
    assert set(files) == {p.name for p in paths[:-1]}
    for p in paths[:-1]:
        assert files[p.name]["sha256"] == sha256_file(p) and files[p.name]["bytes"] == p.stat().st_size
    assert files[f"features_dataset_{TAG}.parquet"]["rows"] == len(bundle.features)
    assert meta["columns"]["features"] == columns_of(bundle.features)
    assert {"name": "t1", "dtype": "datetime64[ns, UTC]"} in meta["columns"]["labels"]
    assert meta["splits"]["folds"] == {"purged_kfold": 5, "walk_forward": 4}
    assert meta["config"]["tb_horizon"] == "30min" and "pandas" in meta["versions"] and meta["generated_at"]
    assert meta["export"]["format"] == "parquet" and meta["export"]["compression"] == "snappy"


def test_export_is_converted_from_the_weekly_writers_bundle(bundle, tmp_path):
    """Regression (issue 20 item 6): `mia export` builds through write_bundle, the writer of the weekly
    asset; its rows are the bundle's and its metadata names the bundle files by sha256."""
    folder = write_bundle(replace(bundle), tmp_path / "weekly")
    weekly = read_bundle(folder)
    paths = export_dataset(bundle, tmp_path / "out", PRESETS["full"])
    for path, frame in zip(paths[:2], (weekly.features, weekly.labels), strict=True):
        pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    weekly_meta = json.loads((folder / "dataset.json").read_text())
    lineage = _strict(paths[-1].read_text())["bundle"]
    assert lineage["writer"] == "mia_pipeline.ml.bundle.write_bundle"
    assert lineage["files"] == {f: {"rows": d["rows"], "sha256": d["sha256"]} for f, d in weekly_meta["files"].items()}
    assert bundle.folder is None, "the caller's bundle does not point at the export's staging folder"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths), "no staging left"


def test_statistics_match_pandas_and_balance_labels(bundle, tmp_path):
    paths = export_dataset(bundle, tmp_path, PRESETS["standard"])
    stats = _strict(paths[2].read_text())
    assert paths[2].name == f"statistics_{TAG}.json"
    col = bundle.features["bar_close_mom_14"]
    s = stats["features"]["bar_close_mom_14"]
    assert s["count"] == col.count() and s["missing"] == col.isna().sum() > 0
    assert s["mean"] == pytest.approx(col.mean()) and s["std"] == pytest.approx(col.std())
    assert [s["min"], s["q25"], s["median"], s["q75"], s["max"]] == pytest.approx(col.quantile([0, .25, .5, .75, 1]).tolist())
    assert stats["features"]["symbol"]["distinct"] == bundle.features["symbol"].nunique()
    assert stats["labels"]["executed"]["true"] == int(bundle.labels["executed"].sum())
    assert stats["labels"]["t0"]["min"].startswith(START)
    tb = stats["label_balance"]["tb_label"]
    counts = bundle.labels["tb_label"].value_counts()
    assert {k: v["rows"] for k, v in tb["values"].items()} == {f"{k:g}": int(n) for k, n in counts.items()}
    assert sum(v["share"] for v in tb["values"].values()) == pytest.approx(1.0)
    assert stats["label_balance"]["success"]["missing"] == int(bundle.labels["success"].isna().sum())


def test_column_subset_and_split_schemes(bundle, tmp_path):
    cfg = replace(PRESETS["full"], columns=("feature_1", "feature_3"), split_schemes=("walk_forward",))
    paths = export_dataset(bundle, tmp_path, cfg)
    assert list(pd.read_parquet(paths[0]).columns) == ["t0", "feature_1", "feature_3"]
    assert set(pd.read_parquet(paths[2])["scheme"]) == {"walk_forward"}
    with pytest.raises(ExportConfigError, match="no feature named nope"):
        export_dataset(bundle, tmp_path / "x", replace(cfg, columns=("nope",)))
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------------------------------ all or nothing
def test_failure_while_writing_leaves_the_previous_export(bundle, tmp_path, monkeypatch):
    export_dataset(bundle, tmp_path, PRESETS["full"])
    before = _snapshot(tmp_path)
    real = ex.write_frame

    def flaky(frame, path, fmt, compression):
        if path.name.startswith("splits"):
            raise OSError("disk gave up")
        real(frame, path, fmt, compression)

    monkeypatch.setattr(ex, "write_frame", flaky)
    with pytest.raises(OSError, match="disk gave up"):
        export_dataset(bundle, tmp_path, replace(PRESETS["full"], format="csv"))
    assert _snapshot(tmp_path) == before, "no new file, no temp folder, the previous export intact"


def test_failure_while_renaming_rolls_back(bundle, tmp_path, monkeypatch):
    export_dataset(bundle, tmp_path, PRESETS["full"])
    before = _snapshot(tmp_path)
    moves = []

    def flaky(src, dst):
        moves.append(dst.name)
        if len(moves) == 3:
            raise OSError("rename refused")
        os.replace(src, dst)

    monkeypatch.setattr(publish, "_move", flaky)
    with pytest.raises(OSError, match="rename refused"):
        export_dataset(bundle, tmp_path, replace(PRESETS["full"], compression="zstd"))
    assert _snapshot(tmp_path) == before
    monkeypatch.setattr(publish, "_move", lambda s, d: (_ for _ in ()).throw(OSError("no")))
    with pytest.raises(OSError):
        export_dataset(bundle, tmp_path / "fresh", PRESETS["quick"])
    assert _snapshot(tmp_path / "fresh") == {}


def test_an_export_replaces_the_whole_set_of_its_tag(bundle, tmp_path):
    export_dataset(bundle, tmp_path, replace(PRESETS["full"], format="csv"))
    export_dataset(bundle, tmp_path, PRESETS["quick"], tag="other")
    export_dataset(bundle, tmp_path, PRESETS["quick"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"features_dataset_{TAG}.parquet", f"labels_dataset_{TAG}.parquet",
         "features_dataset_other.parquet", "labels_dataset_other.parquet"])
    with pytest.raises(ExportConfigError, match="tag '../x'"):
        export_dataset(bundle, tmp_path, PRESETS["quick"], tag="../x")


def _fake_validation(monkeypatch, success: bool):
    report = types.SimpleNamespace(success=success, to_text=lambda: "FAILED: t1 before t0",
                                   to_dict=lambda: {"success": success, "checks": 3})
    module = types.ModuleType("mia_pipeline.ml.validation")
    module.validate_dataset = lambda bundle, config=None, docs_dir=None, store=None: report
    monkeypatch.setitem(sys.modules, "mia_pipeline.ml.validation", module)


def test_validation_failure_writes_nothing(bundle, tmp_path, monkeypatch):
    _fake_validation(monkeypatch, success=False)
    with pytest.raises(ExportValidationError) as err:
        export_dataset(bundle, tmp_path / "out", replace(PRESETS["full"], validate=True))
    assert err.value.report.to_text() == "FAILED: t1 before t0"
    assert not (tmp_path / "out").exists()
    _fake_validation(monkeypatch, success=True)
    paths = export_dataset(bundle, tmp_path / "out", replace(PRESETS["full"], validate=True))
    assert _strict(paths[-1].read_text())["validation"] == {"success": True, "checks": 3}
