"""Exports of a dataset bundle for outside tools (the guide's §3.3 ``export_ml_data.py``).

    start, end, tag = parse_period("2025-06")                 # or "last_month", "2025-06-23:2025-06-27"
    bundle = build_bundle(store, start, end)
    paths = export_dataset(bundle, layout.ml_ready_dir / "exports", PRESETS["full"], tag=tag)

Files (``<tag>`` is ``YYYYMM`` for a calendar month, else ``YYYYMMDD_YYYYMMDD``):

- ``features_dataset_<tag>.<ext>`` and ``labels_dataset_<tag>.<ext>``: one row per decision, the same rows
  in the same order, key ``signal_id`` (the Parquet index; the first column of CSV/JSON);
- ``splits_<tag>.<ext>`` (``include_splits``): long form ``scheme, fold, signal_id, role``;
- ``statistics_<tag>.json`` (``include_statistics``): per column count, missing, mean, std, min,
  quartiles, max (numbers), true share (booleans), min/max (times), distinct/top (text); label balance;
- ``metadata_<tag>.json`` (``include_metadata``): window, ML and split config, source partitions with
  their sha256, versions, generation time, and every file of the export with its rows, bytes, sha256,
  columns and dtypes (how to restore CSV/JSON types).

Formats: ``parquet`` keeps dtypes (read back with ``pd.read_parquet`` equals the frame); ``csv`` and
``json`` (JSON Lines, one object per row, ``.jsonl``) write times as ISO-8601 UTC (``...T13:36:15.802Z``),
missing values as an empty cell / ``null``, floats in shortest round-trip form. Compression: Parquet
``snappy`` (default) | ``zstd`` | ``gzip``; CSV/JSON none (default) or ``gzip`` (``.csv.gz``, ``.jsonl.gz``).

An export is converted from the dataset writer's own output: the bundle is written by ``write_bundle``
(the weekly asset's writer, same files and ``dataset.json``) into a temp folder beside the target, read
back and converted there; ``metadata_<tag>.json``'s ``bundle`` names those files by rows and sha256.
The set is then published with :func:`mia_pipeline.storage.publish.publish_files`: each file renamed
into place (metadata last); any failure restores the previous files and removes the new ones.
An export replaces every earlier export file of the same tag in that folder (whatever its format).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from mia_pipeline.layout import LayoutError, parse_day, parse_month
from mia_pipeline.ml.builder import MLConfig
from mia_pipeline.ml.bundle import (
    META_FILE,
    DatasetBundle,
    SplitConfig,
    columns_of,
    read_bundle,
    versions,
    write_bundle,
)
from mia_pipeline.ml.errors import DatasetError
from mia_pipeline.ml.export_files import jsonable, statistics, write_frame
from mia_pipeline.schemas.contract import FEATURE_COUNT
from mia_pipeline.storage.atomic import sha256_file
from mia_pipeline.storage.publish import publish_files, staging

FORMATS = ("parquet", "csv", "json")
PARQUET_CODECS = ("snappy", "zstd", "gzip")
SCHEMES = ("purged_kfold", "walk_forward")
KINDS = ("features_dataset", "labels_dataset", "splits")
BUNDLE_DIR = "bundle"        # the staging folder write_bundle fills inside an export's temp folder
_EXTS = {"parquet": "parquet", "csv": "csv", "json": "jsonl"}
_TAG_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_\-]{0,63}")
PERIOD_FORMS = "last_month, YYYY-MM (e.g. 2025-06) or START:END days (e.g. 2025-06-23:2025-06-27)"


class ExportConfigError(ValueError):
    """An export setting that cannot be used; the message names the key and what it accepts."""


class ExportValidationError(Exception):
    """``validate`` was asked and the dataset failed it; nothing was written. ``report`` says why."""

    def __init__(self, report) -> None:
        super().__init__("the dataset failed validation: nothing was exported")
        self.report = report


# ---------------------------------------------------------------------------------------------- periods
def period_tag(start: date, end: date) -> str:
    """``YYYYMM`` when [start, end] is one whole calendar month, else ``YYYYMMDD_YYYYMMDD``."""
    month_end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    if start.day == 1 and end == month_end:
        return f"{start:%Y%m}"
    return f"{start:%Y%m%d}_{end:%Y%m%d}"


def parse_period(text: str, today: date | None = None) -> tuple[date, date, str]:
    """``(start, end, tag)`` of ``last_month`` (the calendar month before ``today``, UTC), ``YYYY-MM`` or
    ``START:END`` (days, inclusive; tag ``YYYYMMDD_YYYYMMDD``). Anything else raises ValueError."""
    text = (text or "").strip()
    try:
        if text == "last_month":
            first = (today or datetime.now(UTC).date()).replace(day=1)
            start = (first - timedelta(days=1)).replace(day=1)
            return start, first - timedelta(days=1), f"{start:%Y%m}"
        if ":" in text:
            a, _, b = text.partition(":")
            start, end = parse_day(a.strip()), parse_day(b.strip())
            if end < start:
                raise ValueError(f"period {text!r}: END {end} is before START {start}")
            return start, end, f"{start:%Y%m%d}_{end:%Y%m%d}"
        year, month = parse_month(text)
    except LayoutError as exc:
        raise ValueError(f"period {text!r}: {exc}; accepted: {PERIOD_FORMS}") from None
    start = date(year, month, 1)
    end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return start, end, f"{start:%Y%m}"


# ---------------------------------------------------------------------------------------------- config
def _timedelta_ok(value) -> bool:
    try:
        return isinstance(value, str) and pd.Timedelta(0) <= pd.Timedelta(value) <= MAX_DURATION
    except (ValueError, OverflowError):
        return False


MAX_DURATION = pd.Timedelta(days=366)  # no window is sized from a number nobody meant (e.g. "100000days")
MAX_COUNT = 1_000_000  # windows, lags and split counts


def _check_ml(d) -> None:
    if not isinstance(d, dict):
        raise ExportConfigError(f"ml: expected an object of ML builder settings, got {d!r}")
    try:
        MLConfig.from_dict(d)
    except DatasetError as exc:
        raise ExportConfigError(f"ml: {exc}") from None
    for f in fields(MLConfig):
        if f.name not in d:
            continue
        v, default = d[f.name], f.default
        if f.name == "custom_features":
            from mia_pipeline.ml.registry import registered

            ok = isinstance(v, list) and all(isinstance(x, str) and registered(x) for x in v)
            want = "a list of names of feature functions registered with mia_pipeline.ml.registry.register_feature"
        elif f.name == "correlation_pairs":
            ok = isinstance(v, list) and bool(v) and all(
                isinstance(p, list) and len(p) == 2 and p[0] != p[1]
                and all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= FEATURE_COUNT for x in p)
                for p in v)
            want = f"a non-empty list of pairs [a, b] of two different feature numbers from 1 to {FEATURE_COUNT}"
        elif isinstance(default, tuple):
            flat = [x for item in v for x in (item if isinstance(item, list) else [item])] if isinstance(v, list) else None
            ok = flat is not None and bool(v) and all(isinstance(x, int) and not isinstance(x, bool)
                                                      and 0 < x <= MAX_COUNT for x in flat)
            want = f"a non-empty list of positive integers up to {MAX_COUNT:,}"
        elif isinstance(default, str):
            ok, want = _timedelta_ok(v), "a duration such as '30min' or '10s' (at most 366 days)"
        elif isinstance(default, float):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf")
            want = "a positive finite number"
        else:
            ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT
            want = f"an integer from 0 to {MAX_COUNT:,}"
        if not ok:
            raise ExportConfigError(f"ml.{f.name}: expected {want}, got {v!r}")


def _check_split(d) -> None:
    if not isinstance(d, dict):
        raise ExportConfigError(f"split: expected an object with n_splits, walk_forward_splits, embargo; got {d!r}")
    known = [f.name for f in fields(SplitConfig)]
    for k, v in d.items():
        if k not in known:
            raise ExportConfigError(f"split.{k}: unknown key (known: {', '.join(known)})")
        low = 2 if k == "n_splits" else 1
        if k == "embargo" and not _timedelta_ok(v):
            raise ExportConfigError(f"split.embargo: expected a duration such as '30min', got {v!r}")
        if k != "embargo" and (not isinstance(v, int) or isinstance(v, bool) or not low <= v <= 1000):
            raise ExportConfigError(f"split.{k}: expected an integer from {low} to 1000, got {v!r}")


@dataclass(frozen=True)
class ExportConfig:
    """What an export writes and how. ``ml``/``split`` (builder and split settings), ``period`` and
    ``output_dir`` are for the front door that builds the bundle; :func:`export_dataset` ignores them."""

    format: str = "parquet"                      # parquet | csv | json (JSON Lines)
    compression: str | None = None               # None: snappy for Parquet, none for CSV/JSON
    include_metadata: bool = True
    include_statistics: bool = True
    include_splits: bool = False
    split_schemes: tuple[str, ...] = SCHEMES
    columns: tuple[str, ...] | None = None       # feature subset (``t0`` is always kept); None: all
    validate: bool = False
    ml: dict | None = None                       # MLConfig keys
    split: dict | None = None                    # SplitConfig keys
    period: str | None = None
    output_dir: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ExportConfigError(f"format: {self.format!r} is not one of {', '.join(FORMATS)}")
        allowed = PARQUET_CODECS if self.format == "parquet" else ("gzip",)
        if self.compression is not None and self.compression not in allowed:
            raise ExportConfigError(
                f"compression: {self.compression!r} does not apply to {self.format}; "
                + ("Parquet takes snappy, zstd or gzip" if self.format == "parquet"
                   else "CSV and JSON take gzip (or no compression); snappy and zstd are for Parquet"))
        for k in ("include_metadata", "include_statistics", "include_splits", "validate"):
            if not isinstance(getattr(self, k), bool):
                raise ExportConfigError(f"{k}: expected true or false, got {getattr(self, k)!r}")
        if (not isinstance(self.split_schemes, tuple) or not self.split_schemes
                or any(s not in SCHEMES for s in self.split_schemes)):
            raise ExportConfigError(f"split_schemes: expected a non-empty list of {', '.join(SCHEMES)}; "
                                    f"got {self.split_schemes!r}")
        if self.columns is not None and (not isinstance(self.columns, tuple) or not self.columns
                                         or not all(isinstance(c, str) for c in self.columns)):
            raise ExportConfigError(f"columns: expected a non-empty list of feature names, got {self.columns!r}")
        if self.ml is not None:
            _check_ml(self.ml)
        if self.split is not None:
            _check_split(self.split)
        if self.period is not None:
            try:
                if not isinstance(self.period, str):
                    raise ValueError(f"expected text ({PERIOD_FORMS}), got {self.period!r}")
                parse_period(self.period)
            except ValueError as exc:
                raise ExportConfigError(f"period: {exc}") from None
        if self.output_dir is not None and (not isinstance(self.output_dir, str) or not self.output_dir):
            raise ExportConfigError(f"output_dir: expected a folder path, got {self.output_dir!r}")

    @classmethod
    def from_dict(cls, d: dict, base: ExportConfig | None = None) -> ExportConfig:
        """Settings of ``d`` over ``base`` (default: the standard export). Unknown keys and wrong types
        raise :class:`ExportConfigError` naming the key."""
        if not isinstance(d, dict):
            raise ExportConfigError(f"expected a JSON object of export settings, got {type(d).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ExportConfigError(f"unknown export config key(s): {', '.join(unknown)} (known: {', '.join(known)})")
        d = {k: (tuple(v) if k in ("split_schemes", "columns") and isinstance(v, list) else v) for k, v in d.items()}
        return replace(base or cls(), **d)

    @property
    def ml_config(self) -> MLConfig:
        return MLConfig.from_dict(self.ml)

    @property
    def split_config(self) -> SplitConfig:
        return SplitConfig(**(self.split or {}))

    @property
    def extension(self) -> str:
        return _EXTS[self.format] + (".gz" if self.format != "parquet" and self.compression else "")

    def select(self, bundle: DatasetBundle) -> dict[str, pd.DataFrame]:
        """The frames this export writes, by kind (``features_dataset``, ``labels_dataset``, ``splits``)."""
        features = bundle.features
        if self.columns is not None:
            missing = [c for c in self.columns if c not in features.columns]
            if missing:
                raise ExportConfigError(f"columns: no feature named {', '.join(missing)} in this dataset")
            features = features[list(dict.fromkeys(("t0", *self.columns)))]
        out = {"features_dataset": features, "labels_dataset": bundle.labels}
        if self.include_splits:
            out["splits"] = bundle.splits[bundle.splits["scheme"].isin(self.split_schemes)].reset_index(drop=True)
        return out


# Presets of `mia export`: standard (no preset flag) is the guide's CSV example; quick is the data only.
PRESETS = {
    "standard": ExportConfig(),
    "quick": ExportConfig(include_metadata=False, include_statistics=False),
    "full": ExportConfig(include_splits=True),
}


# ---------------------------------------------------------------------------------------------- the export
def family_names(tag: str) -> list[str]:
    """Every file name an export of ``tag`` may write, in any format (what a new export replaces)."""
    exts = sorted({e for f in FORMATS for e in (_EXTS[f], f"{_EXTS[f]}.gz")} - {"parquet.gz"})
    return [f"{k}_{tag}.{e}" for k in KINDS for e in exts] + [f"statistics_{tag}.json", f"metadata_{tag}.json"]


def validate_for_export(bundle: DatasetBundle, store=None):
    """The validation report of ``bundle`` (with ``store``, the PartitionStore it was built from, the
    lineage and point-in-time checks run too); raises :class:`ExportValidationError` when it fails."""
    from mia_pipeline.ml.validation import validate_dataset  # heavy (Great Expectations): only when asked

    report = validate_dataset(bundle, store=store)
    if not report.success:
        raise ExportValidationError(report)
    return report


def _write_json(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def _lineage(source: DatasetBundle) -> dict:
    """What an export was converted from: the bundle ``write_bundle`` wrote, by file rows and sha256."""
    files = source.metadata["files"]
    return {"writer": "mia_pipeline.ml.bundle.write_bundle", "generated_at": source.metadata["generated_at"],
            "files": {f: {"rows": d["rows"], "sha256": d["sha256"]} for f, d in files.items()},
            META_FILE: sha256_file(source.folder / META_FILE)}


def export_dataset(bundle: DatasetBundle, out_dir: Path, config: ExportConfig = PRESETS["standard"], *,
                   tag: str | None = None, store=None, validation=None) -> list[Path]:
    """Write the export of ``bundle`` to ``out_dir`` as a set; returns the paths written (metadata last).

    The bundle is first written by :func:`~mia_pipeline.ml.bundle.write_bundle` (the writer of the
    weekly dataset asset) into a staging folder, read back, and those frames are converted; the
    metadata's ``bundle`` names the bundle files by rows and sha256 (a rebuild of the same window and
    config gives the same bytes). ``tag`` defaults to :func:`period_tag` of the bundle's window. With
    ``config.validate`` the bundle is validated first (:func:`validate_for_export` with ``store``;
    ``validation``: a passed report to use instead): a failure raises :class:`ExportValidationError`
    and nothing is written. A bad ``columns`` raises :class:`ExportConfigError`. On any failure the
    folder is left as it was."""
    window = bundle.metadata.get("window") or {}
    if tag is None:
        tag = period_tag(date.fromisoformat(window["start"]), date.fromisoformat(window["end"]))
    if not _TAG_RE.fullmatch(tag):
        raise ExportConfigError(f"tag {tag!r}: use letters, digits, '_' and '-' (it becomes part of file names)")
    config.select(bundle)  # a bad column subset is refused before anything is written
    if config.validate and validation is None:
        validation = validate_for_export(bundle, store)
    out_dir = Path(out_dir)
    with staging(out_dir, f"export_{tag}") as tmp:
        source = read_bundle(write_bundle(replace(bundle), tmp / BUNDLE_DIR))  # a copy: the caller's keeps its folder
        frames = config.select(source)
        names, files = [], []
        for kind, frame in frames.items():
            name = f"{kind}_{tag}.{config.extension}"
            write_frame(frame, tmp / name, config.format, config.compression)
            names.append(name)
            files.append({"name": name, "kind": kind, "rows": len(frame), "columns": columns_of(frame)
                          if kind != "splits" else columns_of(frame.set_index("scheme"))})
        if config.include_statistics:
            _write_json(statistics(frames, source), tmp / f"statistics_{tag}.json")
            names.append(f"statistics_{tag}.json")
            files.append({"name": names[-1], "kind": "statistics"})
        for f in files:
            f |= {"bytes": (tmp / f["name"]).stat().st_size, "sha256": sha256_file(tmp / f["name"])}
        if config.include_metadata:
            meta = {**{k: v for k, v in source.metadata.items() if k != "files"},
                    "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "versions": versions(), "columns": {k.split("_")[0]: columns_of(frames[k]) for k in KINDS[:2]},
                    "bundle": _lineage(source),
                    "export": {"tag": tag, "format": config.format, "compression": config.compression
                               or ("snappy" if config.format == "parquet" else None), "files": files,
                               "timestamps": "ISO-8601 UTC text" if config.format != "parquet" else "typed",
                               "config": asdict(config)}}
            if validation is not None:
                meta["validation"] = validation.to_dict()
            _write_json(jsonable(meta), tmp / f"metadata_{tag}.json")
            names.append(f"metadata_{tag}.json")
        shutil.rmtree(tmp / BUNDLE_DIR)  # staging only: the export is its converted files
        publish_files(tmp, out_dir, names, family_names(tag))
    return [out_dir / n for n in names]
