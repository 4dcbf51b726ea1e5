"""Great Expectations validation of an ML dataset bundle: completeness, balance, correlation, leakage.

    report = validate_dataset(read_bundle(folder), {"max_abs_correlation": 0.9}, docs_dir=layout.reports_dir / "gx")
    print(report.to_text()); report.success; report.docs_index

Every check is one or more GX 1.x expectations run in one ephemeral context (:func:`run_gx`); rows
GX finds failing name the column, feature, pair or fold. Raw-row checks run on the dataset itself
(critical values, as-of times, label times); statistics run on one small frame per check built by
:mod:`mia_pipeline.quality.ml_checks` (see there why). The checks, in report order, are :data:`CHECKS`.

A check whose name is in ``ValidationConfig.warn_only`` is reported (``WARN``) but does not fail the
dataset: by default only ``feature_correlation``, because redundant features hurt a model's
interpretability, not its honesty (the built datasets have rolling means of nearby windows with
|r| > 0.95). Set ``warn_only: []`` to make it blocking.

Nothing the dataset says about itself is trusted: the files are checked against the sha256 and row
counts ``dataset.json`` recorded, and every column is rebuilt from the daily partitions the dataset was
built from (:mod:`mia_pipeline.ml.recompute`: lineage, columns accounted for, point-in-time features on
sampled rows, labels and ``t1``), and the splits are re-derived from the labels with the split config
``dataset.json`` records. Those rebuild checks run when ``store`` is given; a check that cannot run (no store,
sources missing, lineage missing from ``dataset.json``, a column no registered function produces) is
UNVERIFIED with the reason, and the verdict is then UNVERIFIED, never PASSED.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from mia_pipeline.ml.builder import MLConfig
from mia_pipeline.ml.errors import DatasetError
from mia_pipeline.ml.features import ASOF_SUFFIX, feature_columns
from mia_pipeline.ml.leakage import STRICT_ASOF
from mia_pipeline.quality import ml_checks as S
from mia_pipeline.small_files import NotASmallFile, read_small_text, strict_json

CONFIG_BYTES = 1 << 20  # a validation config is a small JSON object
MAX_EMBARGO = pd.Timedelta(days=366)  # as the export config: no window sized from a number nobody meant

CHECKS = {
    "files_match_manifest": "each data file's sha256 and row count equal those dataset.json recorded at write time",
    "critical_values_present": "critical columns (t0, t1, symbol) have no missing value",
    "missing_rate_below_max": "each feature's missing rate after the warm-up rows is <= max_missing_rate",
    "label_balance": "each label class holds between min_class_share and max_class_share of the labelled rows",
    "feature_correlation": "no two features have |Pearson r| > max_abs_correlation",
    "asof_not_after_t0": "every *_asof time is <= t0 (success_asof < t0): inputs were known at decision",
    "label_times": "t1 > t0 for every label row, and features and labels agree on t0",
    "bar_features_match_label_entry": "bar_close/bar_asof equal the label's entry bar (tb_entry/tb_entry_asof)",
    "splits_purged": "no training row is a test row, names an unknown signal or overlaps the test fold in [t0, t1]",
    "splits_embargoed": "no training row starts within the embargo after its test fold",
    "splits_walk_forward_ordered": "every walk-forward training row starts and ends (t1) before its test block",
    "splits_rederived": "the splits file holds exactly the folds the split config in dataset.json gives these labels",
    "no_label_leak": "no feature alone predicts a label almost perfectly (AUC >= leak_auc, |r| >= leak_abs_r)",
    "sources_unchanged": "the daily partitions the dataset was built from are present and unchanged (sha256)",
    "columns_accounted": "every column of the features and labels files is produced by a registered function",
    "point_in_time": "every feature, any dtype, equals its recomputation from the data known at sampled rows' t0",
    "labels_rederived": "labels and t1 equal their recomputation from the source bars and trade exits",
}


@dataclass(frozen=True)
class ValidationConfig:
    max_missing_rate: float = 0.01
    critical_columns: tuple[str, ...] = ("t0", "t1", "symbol")
    warmup_rows: int | None = None          # None: the longest window of the dataset's ML config
    balance_labels: tuple[str, ...] = ("success", "tb_label")
    min_class_share: float = 0.05
    max_class_share: float = 0.95
    max_abs_correlation: float = 0.95
    leak_labels: tuple[str, ...] = ("success", "tb_label", "tb_return", "r_multiple")
    leak_auc: float = 0.99
    leak_abs_r: float = 0.98
    stats_sample_rows: int = 50_000         # correlations and AUCs on at most this many evenly spaced rows
    embargo: str | None = None              # None: the embargo the splits were made with (dataset.json)
    point_in_time_rows: int = 16            # sampled rows whose t0 is a cutoff of a point-in-time rebuild
    point_in_time_seed: int = 0
    warn_only: tuple[str, ...] = ("feature_correlation",)

    @classmethod
    def from_dict(cls, d: dict | None) -> ValidationConfig:
        """Raises :class:`DatasetError` for an unknown key or a value out of range (message says which)."""
        if d is not None and not isinstance(d, dict):
            raise DatasetError(f"validation config must be a JSON object, got {type(d).__name__}")
        d = dict(d or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise DatasetError(f"unknown validation config key(s): {', '.join(unknown)} "
                               f"(known: {', '.join(sorted(known))})")
        for k, v in d.items():
            if isinstance(v, list):
                d[k] = tuple(v)
        try:
            cfg = cls(**d)
        except TypeError as exc:
            raise DatasetError(f"invalid validation config: {exc}") from None
        cfg._check()
        return cfg

    @classmethod
    def from_file(cls, path: Path) -> ValidationConfig:
        try:
            d = strict_json(read_small_text(path, CONFIG_BYTES, "a validation config is a JSON object"))
        except NotASmallFile as exc:
            raise DatasetError(str(exc)) from None
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read the validation config ({exc.strerror})") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(d)

    def _check(self) -> None:
        def unit(name: str, lo: float = 0.0, hi: float = 1.0) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise DatasetError(f"validation config {name} must be a number in [{lo}, {hi}], got {v!r}")

        for name in ("max_missing_rate", "min_class_share", "max_class_share", "max_abs_correlation", "leak_abs_r"):
            unit(name)
        unit("leak_auc", 0.5)
        if self.min_class_share > self.max_class_share:
            raise DatasetError("validation config min_class_share is above max_class_share")
        for name in ("stats_sample_rows", "point_in_time_rows", "point_in_time_seed", "warmup_rows"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise DatasetError(f"validation config {name} must be a non-negative integer, got {v!r}")
        for name in ("critical_columns", "balance_labels", "leak_labels", "warn_only"):
            v = getattr(self, name)
            if not isinstance(v, tuple | list) or not all(isinstance(x, str) for x in v):
                raise DatasetError(f"validation config {name} must be a list of column or check names, got "
                                   f"{type(v).__name__} {str(v)[:60]!r}")
        bad = sorted(set(self.warn_only) - set(CHECKS))
        if bad:
            raise DatasetError(f"validation config warn_only names unknown check(s) {', '.join(bad)} "
                               f"(checks: {', '.join(CHECKS)})")
        if self.embargo is not None:
            try:
                ok = isinstance(self.embargo, str) and pd.Timedelta(0) <= pd.Timedelta(self.embargo) <= MAX_EMBARGO
            except (ValueError, TypeError, OverflowError):
                ok = False
            if not ok:
                raise DatasetError(f"validation config embargo {str(self.embargo)[:60]!r} is not a duration such as "
                                   "'30min' from 0 to 366 days (a text, not a number)")


@dataclass
class ExpectationResult:
    name: str
    success: bool
    observed: object
    detail: str
    severity: str = "error"                 # "warning": reported, does not fail the dataset
    unverified: bool = False                # could not run (``detail`` says why): never a pass
    gx_expectations: int = 0

    @property
    def skipped(self) -> bool:      # older name of ``unverified``
        return self.unverified

    @property
    def status(self) -> str:
        if self.unverified:
            return "UNVERIFIED"
        return "PASS" if self.success else "WARN" if self.severity == "warning" else "FAIL"


@dataclass
class ValidationReport:
    dataset: str
    rows: int
    results: list[ExpectationResult] = field(default_factory=list)
    docs_index: Path | None = None

    @property
    def success(self) -> bool:
        """True only when every check ran and none failed (warnings aside)."""
        return not self.failed and not self.unverified

    @property
    def failed(self) -> list[ExpectationResult]:
        return [r for r in self.results if r.status == "FAIL"]

    @property
    def unverified(self) -> list[ExpectationResult]:
        return [r for r in self.results if r.status == "UNVERIFIED"]

    @property
    def verdict(self) -> str:
        """``PASSED``, ``FAILED`` (a check failed) or ``UNVERIFIED`` (none failed, some could not run)."""
        return "FAILED" if self.failed else "UNVERIFIED" if self.unverified else "PASSED"

    def verdict_line(self) -> str:
        why = "; ".join(dict.fromkeys(r.detail for r in self.unverified))
        unv = f"{', '.join(r.name for r in self.unverified)} could not run: {why}"
        if self.failed:
            return (f"validation FAILED ({len(self.failed)} of {len(self.results)} checks: "
                    f"{', '.join(r.name for r in self.failed)})" + (f"; also UNVERIFIED: {unv}" if self.unverified else ""))
        return f"validation UNVERIFIED: {unv}" if self.unverified else "validation PASSED"

    def to_text(self) -> str:
        width = max(len(n) for n in CHECKS)
        lines = [f"dataset {self.dataset}: {self.rows:,} rows"]
        for r in self.results:
            lines.append(f"{r.status}  {r.name:<{width}}  {r.detail}")
        lines.append(self.verdict_line() + (f"; Data Docs: {self.docs_index}" if self.docs_index else ""))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        out = {"dataset": self.dataset, "rows": self.rows, "success": self.success, "verdict": self.verdict,
               "docs_index": str(self.docs_index) if self.docs_index else None, "results": []}
        for r in self.results:
            d = asdict(r)
            d["status"], d["observed"] = r.status, _jsonable(r.observed)
            out["results"].append(d)
        return out


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def warmup_of(metadata: dict) -> int:
    """Rows per symbol before every rolling window of the dataset's ML config is full."""
    def longest(c: MLConfig) -> int:
        return max([*c.rolling_windows, *(m + 1 for m in c.momentum), *(r + 1 for r in c.rate_of_change),
                    *c.lookback_periods, c.correlation_window, 0])

    try:   # a config edited into nonsense falls back to the defaults here (the rebuild reports it)
        return int(longest(MLConfig.from_dict(metadata.get("config"))))
    except (DatasetError, TypeError, ValueError, AttributeError):
        return longest(MLConfig())


def _embargo(cfg: ValidationConfig, meta: dict) -> tuple[pd.Timedelta, str]:
    """The embargo of the splits: the config's, else the one dataset.json recorded; why when unknown."""
    splits = meta.get("splits") if isinstance(meta.get("splits"), dict) else {}
    raw = cfg.embargo or splits.get("embargo")
    if raw is None:
        return pd.Timedelta(0), "dataset.json records no embargo (give one in --config: {\"embargo\": \"30min\"})"
    try:
        return pd.Timedelta(raw), ""
    except (ValueError, TypeError):
        return pd.Timedelta(0), f"dataset.json's embargo {raw!r} is not a duration"


RECOMPUTED = ("splits_rederived", "sources_unchanged", "columns_accounted", "point_in_time", "labels_rederived")


def validate_dataset(bundle, config: ValidationConfig | dict | None = None, docs_dir: Path | None = None,
                     *, store=None, run_name: str | None = None) -> ValidationReport:
    """Run every check of :data:`CHECKS` on ``bundle`` (a :class:`~mia_pipeline.ml.bundle.DatasetBundle`).

    ``docs_dir``: render GX Data Docs there (``report.docs_index`` is its index.html). ``store``: the
    :class:`~mia_pipeline.storage.PartitionStore` holding the bundle's source days, for the lineage,
    column, point-in-time and label checks (UNVERIFIED without it: the verdict cannot be PASSED).
    A check that cannot run is UNVERIFIED with the reason. ``run_name`` names the GX run.
    Raises :class:`DatasetError` for a bad config."""
    from mia_pipeline.ml.recompute import files_frame, recomputed_frames, splits_frame_rederived
    from mia_pipeline.quality.gx import ml_batches, run_gx

    cfg = config if isinstance(config, ValidationConfig) else ValidationConfig.from_dict(config)
    F, L = bundle.features, bundle.labels
    names = feature_columns(F)
    meta = bundle.metadata if isinstance(bundle.metadata, dict) else {"unreadable": "dataset.json is not an object"}
    embargo, no_embargo = _embargo(cfg, meta)
    warm = cfg.warmup_rows if cfg.warmup_rows is not None else warmup_of(meta)
    sample = S.sample_rows(len(L), cfg.stats_sample_rows)
    X = S.feature_matrix(F.iloc[sample], names)
    frames = {
        "feature_missing": S.missing_frame(F, names, S.warmup_mask(F, warm)),
        "label_balance": S.balance_frame(L, cfg.balance_labels),
        "feature_pairs": S.correlation_frame(X, names),
        "label_leaks": S.leak_frame(X, names, L.iloc[sample], cfg.leak_labels),
        "folds": S.fold_frame(L, bundle.splits, embargo),
    }
    unverified: dict[str, str] = {"splits_embargoed": no_embargo} if no_embargo else {}
    files, why = files_frame(bundle)
    in_memory = bundle.folder is None
    if files is not None:
        frames["files"] = files
    elif not in_memory:
        unverified["files_match_manifest"] = why
    if store is None:
        unverified.update(dict.fromkeys(RECOMPUTED, "no data root given: nothing recomputed from the source days"))
    else:
        try:
            more, why_not = recomputed_frames(bundle, store, cfg.point_in_time_rows, cfg.point_in_time_seed)
        except Exception as exc:   # noqa: BLE001 -- whatever the input, the verdict says it could not check
            more, why_not = {}, dict.fromkeys(RECOMPUTED[1:], f"recomputation could not run ({type(exc).__name__}: {exc})")
        frames.update(more)
        unverified.update(why_not)
        try:
            folds, why = splits_frame_rederived(bundle)
        except Exception as exc:   # noqa: BLE001
            folds, why = None, f"the splits could not be re-derived ({type(exc).__name__}: {exc})"
        if folds is not None:
            frames["splits_rederived"] = folds
        else:
            unverified["splits_rederived"] = why
        cols = more.get("columns")
        if cols is not None and not cols["accounted"].all():
            lost = cols.loc[~cols["accounted"]]
            why = cols.attrs.get("why") or "no registered feature function produces them"
            unverified["columns_accounted"] = (f"{len(lost)} column(s) cannot be recomputed: "
                                               f"{', '.join(lost['file'] + ':' + lost['column'])} ({why})")
    asof = [c for c in F.columns if c.endswith(ASOF_SUFFIX)]
    batches = ml_batches(F, L, frames, cfg, asof, STRICT_ASOF)
    outcomes, index = run_gx(batches, docs_dir, run_name=run_name)
    name = bundle.name if isinstance(meta.get("window"), dict) else "(in memory)"
    report = ValidationReport(name, len(F), docs_index=index)
    for check in CHECKS:
        mine = [o for o in outcomes if o.check == check]
        severity = "warning" if check in cfg.warn_only else "error"
        if check == "files_match_manifest" and in_memory:
            report.results.append(ExpectationResult(check, True, None, "bundle in memory, not read from files: "
                                                    "no file to compare", severity))
            continue
        if check in unverified or not mine:
            reason = unverified.get(check, "nothing to check (the columns it needs are absent)")
            report.results.append(ExpectationResult(check, False, None, reason, severity, True, len(mine)))
            continue
        observed, detail = S.summarise(check, mine, frames, cfg, len(names), F.index)
        report.results.append(ExpectationResult(check, all(o.success for o in mine), observed, detail, severity,
                                                False, len(mine)))
    return report
