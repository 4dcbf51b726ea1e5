"""GX validation of ML datasets: an honest dataset built from simulated days passes every check, and
each check fails on a copy of it broken in exactly the way that check exists to catch (missing values,
imbalance, duplicate features, as-of after t0, t1 <= t0, unpurged or unembargoed splits, a label with
tiny noise, a feature shifted one step into the future)."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import END, START

from mia_pipeline.ml import DatasetError
from mia_pipeline.ml.bundle import DatasetBundle, build_bundle
from mia_pipeline.ml.validation import CHECKS, ValidationConfig, validate_dataset


@pytest.fixture(scope="module")
def bundle(sim_store):
    return build_bundle(sim_store, START, END)


@pytest.fixture(scope="module")
def honest(bundle, sim_store):
    return validate_dataset(bundle, store=sim_store)


def copy(b: DatasetBundle) -> DatasetBundle:
    return DatasetBundle(b.features.copy(), b.labels.copy(), b.splits.copy(), json.loads(json.dumps(b.metadata)))


def result(report, name):
    return next(r for r in report.results if r.name == name)


def failing(report) -> set[str]:
    return {r.name for r in report.results if r.status == "FAIL"}


def shift_future(X: pd.DataFrame, col: str) -> pd.DataFrame:
    """Each row gets the next row's value of ``col`` (same symbol): one step into the future."""
    bad = X.copy()
    bad[col] = X.groupby("symbol")[col].shift(-1)
    return bad


def test_honest_dataset_passes_every_check(honest, bundle):
    assert [r.name for r in honest.results] == list(CHECKS)
    assert honest.success, honest.to_text()
    assert not [r for r in honest.results if r.unverified], "the store is given: every check must run"
    # built datasets hold rolling means of nearby windows: reported, not blocking by default
    assert {r.name for r in honest.results if r.status == "WARN"} <= {"feature_correlation"}
    # in memory (not read from files): the only check without an expectation is the files' checksums
    assert [r.name for r in honest.results if not r.gx_expectations] == ["files_match_manifest"]
    text = honest.to_text().splitlines()
    assert len(text) == len(CHECKS) + 2 and text[-1].startswith("validation PASSED")
    assert json.loads(json.dumps(honest.to_dict()))["success"] is True


def test_without_store_the_recomputations_are_unverified_not_passed(bundle):
    report = validate_dataset(bundle)
    assert {r.name for r in report.unverified} == {"splits_rederived", "sources_unchanged", "columns_accounted",
                                                    "point_in_time", "labels_rederived"}
    assert not report.failed and not report.success and report.verdict == "UNVERIFIED"
    assert report.to_text().splitlines()[-1].startswith(
        "validation UNVERIFIED: splits_rederived, sources_unchanged, columns_accounted, point_in_time, "
        "labels_rederived could not run: no data root given")


def test_missing_values_above_one_percent_fail(bundle):
    b = copy(bundle)
    rows = b.features.index[100::40]                       # 2.5 % of the rows, all after the warm-up
    b.features.loc[rows, "bar_ret_std_10"] = np.nan
    report = validate_dataset(b)
    assert failing(report) == {"missing_rate_below_max"}
    assert "bar_ret_std_10" in result(report, "missing_rate_below_max").detail
    assert not report.success


def test_missing_critical_value_fails(bundle):
    b = copy(bundle)
    b.labels.iloc[7, b.labels.columns.get_loc("t1")] = pd.NaT
    report = validate_dataset(b)
    assert "critical_values_present" in failing(report)
    assert b.labels.index[7] in result(report, "critical_values_present").detail


def test_label_imbalance_fails(bundle):
    b = copy(bundle)
    y = b.labels["tb_label"].to_numpy(copy=True)
    y[: int(len(y) * 0.97)] = 1.0
    b.labels["tb_label"] = y
    report = validate_dataset(b, {"leak_labels": []})
    assert failing(report) == {"label_balance"}
    assert "class=-1" in result(report, "label_balance").detail or "class=0" in result(report, "label_balance").detail


def test_two_identical_features_fail_the_correlation_check(bundle):
    keep = ["t0", "symbol", "features_asof", "bar_asof", "bar_close", *[f"feature_{i}" for i in range(1, 9)]]
    b = copy(bundle)
    b.features = b.features[keep]
    strict = {"warn_only": []}
    assert not failing(validate_dataset(b, strict))
    rng = np.random.default_rng(0)
    b.features["feature_1_copy"] = b.features["feature_1"] * 2 + rng.normal(0, 1e-3, len(b.features))
    report = validate_dataset(b, strict)
    assert failing(report) == {"feature_correlation"} and not report.success
    assert "feature_1_copy" in result(report, "feature_correlation").detail
    lenient = validate_dataset(b)          # default: a warning, the dataset still passes
    assert result(lenient, "feature_correlation").status == "WARN" and not lenient.failed


def test_asof_after_t0_fails(bundle):
    b = copy(bundle)
    b.features.iloc[50, b.features.columns.get_loc("features_asof")] = b.features["t0"].iloc[50] + pd.Timedelta("1s")
    report = validate_dataset(b)
    assert failing(report) == {"asof_not_after_t0"}
    assert b.features.index[50] in result(report, "asof_not_after_t0").detail


def test_success_known_at_t0_fails_strict_asof(bundle):
    b = copy(bundle)
    i = int(np.flatnonzero(b.features["success_asof"].notna())[0])
    b.features.iloc[i, b.features.columns.get_loc("success_asof")] = b.features["t0"].iloc[i]
    assert "asof_not_after_t0" in failing(validate_dataset(b))


def test_label_known_before_decision_fails(bundle):
    b = copy(bundle)
    b.labels.iloc[5, b.labels.columns.get_loc("t1")] = b.labels["t0"].iloc[5]
    report = validate_dataset(b)
    assert "label_times" in failing(report)


def _fold(b, scheme="purged_kfold", fold=1):
    s = b.splits
    return s[(s["scheme"] == scheme) & (s["fold"] == fold)]


def test_training_row_overlapping_the_test_fold_fails(bundle):
    b = copy(bundle)
    f = _fold(b)
    test_ids = f.loc[f["role"] == "test", "signal_id"]
    extra = pd.DataFrame({"scheme": "purged_kfold", "fold": 1, "signal_id": test_ids.iloc[:3], "role": "train"})
    b.splits = pd.concat([b.splits, extra], ignore_index=True)
    report = validate_dataset(b)
    assert failing(report) == {"splits_purged"}
    assert "scheme=purged_kfold, fold=1" in result(report, "splits_purged").detail


def test_training_row_inside_the_embargo_fails(bundle):
    b = copy(bundle)
    L = b.labels
    f = _fold(b)
    end = L.loc[f.loc[f["role"] == "test", "signal_id"], "t1"].max()
    inside = L.index[(L["t0"] > end) & (L["t0"] <= end + pd.Timedelta("30min"))]
    assert len(inside), "the embargo of fold 1 holds rows"
    assert not set(inside) & set(f.loc[f["role"] == "train", "signal_id"]), "the shipped split embargoes them"
    extra = pd.DataFrame({"scheme": "purged_kfold", "fold": 1, "signal_id": inside[:2], "role": "train"})
    b.splits = pd.concat([b.splits, extra], ignore_index=True)
    report = validate_dataset(b)
    assert failing(report) == {"splits_embargoed"}


def test_label_plus_tiny_noise_is_flagged(bundle):
    b = copy(bundle)
    rng = np.random.default_rng(1)
    b.features["leak_tb"] = b.labels["tb_label"].to_numpy() + rng.normal(0, 0.01, len(b.labels))
    report = validate_dataset(b)
    assert failing(report) == {"no_label_leak"}
    assert "feature=leak_tb, label=tb_label" in result(report, "no_label_leak").detail


def test_bar_feature_shifted_one_step_into_the_future_is_caught_without_sources(bundle):
    """Its as-of time still says t0: the label's independently computed entry bar disagrees."""
    b = copy(bundle)
    b.features = shift_future(b.features, "bar_close")
    report = validate_dataset(b)
    assert failing(report) == {"bar_features_match_label_entry"}


@pytest.mark.slow
def test_features_shifted_one_step_into_the_future_are_caught_by_recomputation(bundle, sim_store):
    b = copy(bundle)
    b.features = shift_future(shift_future(b.features, "bar_close"), "feature_3_mean_5")
    report = validate_dataset(b, store=sim_store)
    assert {"point_in_time", "bar_features_match_label_entry"} <= failing(report)
    detail = result(report, "point_in_time").detail
    assert "feature=bar_close" in detail or "feature=feature_3_mean_5" in detail
    changed = result(report, "point_in_time")
    assert not changed.success and changed.observed >= 2


def test_shifted_with_its_asof_time_is_caught_by_asof(bundle):
    b = copy(bundle)
    b.features = shift_future(shift_future(b.features, "feature_1"), "features_asof")
    assert "asof_not_after_t0" in failing(validate_dataset(b))


def test_config_refuses_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(DatasetError, match="unknown validation config key.*max_corr"):
        ValidationConfig.from_dict({"max_corr": 0.9})
    with pytest.raises(DatasetError, match="max_missing_rate must be a number in"):
        ValidationConfig.from_dict({"max_missing_rate": 2})
    with pytest.raises(DatasetError, match="warn_only names unknown check"):
        ValidationConfig.from_dict({"warn_only": ["nope"]})
    with pytest.raises(DatasetError, match="min_class_share is above"):
        ValidationConfig.from_dict({"min_class_share": 0.6, "max_class_share": 0.5})
    p = tmp_path / "v.json"
    p.write_text("{oops")
    with pytest.raises(DatasetError, match="not valid JSON"):
        ValidationConfig.from_file(p)
    p.write_text(json.dumps({"max_abs_correlation": 0.9, "leak_labels": ["tb_label"]}))
    cfg = ValidationConfig.from_file(p)
    assert cfg.max_abs_correlation == 0.9 and cfg.leak_labels == ("tb_label",)


def test_data_docs_are_rendered(bundle, tmp_path):
    report = validate_dataset(bundle, docs_dir=tmp_path / "gx")
    assert report.docs_index == tmp_path / "gx" / "index.html" and report.docs_index.is_file()
    assert any((tmp_path / "gx" / "validations").rglob("*.html"))
