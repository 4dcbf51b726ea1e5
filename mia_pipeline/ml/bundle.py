"""A dataset on disk: features, labels, splits and metadata of one window, written and read as one.

    bundle = build_bundle(PartitionStore(layout), "2025-06-23", "2025-06-27")
    folder = write_bundle(bundle, layout.ml_ready_dir / bundle.name)
    again = read_bundle(folder)          # or read_bundle(folder / "features_dataset.parquet")

A bundle folder holds ``features_dataset.parquet`` and ``labels_dataset.parquet`` (one row per decision,
index ``signal_id``, the same rows in the same order), ``dataset_splits.parquet`` (long form: ``scheme``
``purged_kfold`` or ``walk_forward``, ``fold``, ``signal_id``, ``role`` ``train``/``test``) and
``dataset.json`` (window, config, embargo, source partitions with their sha256, columns and dtypes,
row counts). The folder is replaced as a whole (written beside it, then renamed): a reader sees the old
bundle or the new one, never a mix. The data files of the same window and config are byte-identical on
every re-run; only ``dataset.json``'s ``generated_at`` differs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mia_pipeline.ml.builder import MLConfig, MLDatasetBuilder
from mia_pipeline.ml.errors import DatasetError
from mia_pipeline.ml.splits import purged_kfold, splits_frame, walk_forward
from mia_pipeline.storage.atomic import atomic_write_json, sha256_file
from mia_pipeline.storage.publish import publish_folder

FEATURES_FILE = "features_dataset.parquet"
LABELS_FILE = "labels_dataset.parquet"
SPLITS_FILE = "dataset_splits.parquet"
META_FILE = "dataset.json"
SOURCE_DATASETS = ("signals", "trades", "trade_exits", "market_bars")


def week_of(day) -> tuple[str, str]:
    """(Sunday, Saturday) of the UTC week holding ``day``: the window of a weekly dataset partition."""
    d = pd.Timestamp(str(day)).date()
    sunday = d - timedelta(days=(d.weekday() + 1) % 7)
    return sunday.isoformat(), (sunday + timedelta(days=6)).isoformat()


@dataclass(frozen=True)
class SplitConfig:
    n_splits: int = 5                  # purged k-fold folds
    walk_forward_splits: int = 4
    embargo: str = "30min"             # rows whose t0 is within this after a test fold are not trained on

    @property
    def embargo_td(self) -> pd.Timedelta:
        td = pd.Timedelta(self.embargo)
        if td < pd.Timedelta(0) or td > pd.Timedelta(days=366):
            raise ValueError(f"embargo {self.embargo!r} must be a duration from 0 to 366 days")
        return td


@dataclass
class DatasetBundle:
    features: pd.DataFrame
    labels: pd.DataFrame
    splits: pd.DataFrame
    metadata: dict = field(default_factory=dict)
    folder: Path | None = None          # where it was written or read from (None: in memory only)

    @property
    def name(self) -> str:
        """``<start>_<end>`` of the window (the folder name under ``processed/ml_ready/``)."""
        w = self.metadata.get("window", {})
        return f"{w.get('start')}_{w.get('end')}"

    def fold(self, scheme: str, fold: int) -> tuple[pd.Index, pd.Index]:
        """(train signal_ids, test signal_ids) of one fold."""
        s = self.splits[(self.splits["scheme"] == scheme) & (self.splits["fold"] == fold)]
        return pd.Index(s.loc[s["role"] == "train", "signal_id"]), pd.Index(s.loc[s["role"] == "test", "signal_id"])


def make_splits(labels: pd.DataFrame, cfg: SplitConfig = SplitConfig()) -> pd.DataFrame:
    """Purged k-fold and walk-forward folds over ``labels`` (needs ``t0``, ``t1``; rows sorted by t0)."""
    t0, t1 = labels["t0"].to_numpy(), labels["t1"].to_numpy()
    parts = []
    n = len(labels)
    for scheme, splits in (("purged_kfold", purged_kfold(t0, t1, min(cfg.n_splits, n), cfg.embargo_td) if n >= 2 else []),
                           ("walk_forward", walk_forward(t0, t1, min(cfg.walk_forward_splits, max(n - 1, 1)),
                                                         cfg.embargo_td) if n >= 2 else [])):
        frame = splits_frame(splits, labels.index).rename(columns={"row": "signal_id"})
        frame.insert(0, "scheme", scheme)
        parts.append(frame)
    out = pd.concat(parts, ignore_index=True)
    out["fold"] = out["fold"].astype("int64")
    # Categoricals (dictionary-encoded in Parquet): the ids' categories are the dataset's rows in order,
    # so a reader maps a split row to its dataset row by code, without hashing millions of strings.
    out["scheme"] = pd.Categorical(out["scheme"], categories=["purged_kfold", "walk_forward"])
    out["signal_id"] = pd.Categorical(out["signal_id"].astype(str), categories=labels.index.astype(str).rename(None))
    out["role"] = pd.Categorical(out["role"], categories=["train", "test"])
    return out


def source_partitions(store, start: str, end: str, served: list[dict] | None = None) -> list[dict]:
    """``[{dataset, day, rows, sha256}]`` of the partitions a window reads (its lineage). ``served``: what the
    build's reads actually served (:meth:`PartitionStore.recording_reads`); it wins over the manifests
    listed now, so a partition rewritten between the read and this listing is recorded as it was read."""
    manifests, _ = store.readable_manifests(start, end)
    read = {(r["dataset"], r["day"]): r for r in served or () if not r.get("archived")}
    out = []
    for day in sorted(manifests):
        for ds in SOURCE_DATASETS:
            entry = manifests[day]["datasets"].get(ds)
            if entry:
                entry = read.get((ds, day), entry)
                out.append({"dataset": ds, "day": day, "rows": entry.get("rows"), "sha256": entry.get("sha256")})
    return out


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("mia-pipeline", "pandas", "numpy", "pyarrow", "duckdb", "scikit-learn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def build_bundle(store, start, end, config: MLConfig | dict | None = None,
                 split_config: SplitConfig = SplitConfig()) -> DatasetBundle:
    """Features, labels and splits of the window [start, end] (days, UTC) with their metadata.

    Raises :class:`DatasetError` (message says why) for an empty window, trades without exits, or a
    window where no decision has a known outcome."""
    builder = MLDatasetBuilder(store, config)
    start, end = str(pd.Timestamp(str(start)).date()), str(pd.Timestamp(str(end)).date())
    with store.recording_reads() as served:
        features, labels = builder.build_features_dataset(start, end)
    splits = make_splits(labels, split_config)
    meta = {
        "window": {"start": start, "end": end},
        "rows": len(features),
        "config": _jsonable(asdict(builder.config)),
        "splits": {**asdict(split_config), "schemes": sorted(splits["scheme"].unique().tolist()),
                   "folds": {s: int(g["fold"].nunique()) for s, g in splits.groupby("scheme")}},
        "source_partitions": source_partitions(store, start, end, served),
    }
    return DatasetBundle(features, labels, splits, meta)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def columns_of(frame: pd.DataFrame) -> list[dict]:
    """``[{name, dtype}]`` including the index (``signal_id``)."""
    flat = frame.reset_index()
    return [{"name": str(c), "dtype": str(t)} for c, t in flat.dtypes.items()]


def write_parquet(frame: pd.DataFrame, path: Path, compression: str = "zstd") -> None:
    """``frame`` (its index kept) as Parquet with no creation time in the file: same rows, same bytes."""
    table = pa.Table.from_pandas(frame, preserve_index=True)
    # No creation time or writer version in the file: the same rows give the same bytes.
    table = table.replace_schema_metadata({b"pandas": table.schema.metadata[b"pandas"]})
    pq.write_table(table, path, compression=compression)


def write_bundle(bundle: DatasetBundle, folder: Path) -> Path:
    """Write the bundle to ``folder`` as a whole (replacing any previous one), durably; returns ``folder``."""
    folder = Path(folder)
    with publish_folder(folder) as tmp:
        meta = {**bundle.metadata, "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "versions": versions(), "files": {}}
        for f, frame, described in ((FEATURES_FILE, bundle.features, bundle.features),
                                    (LABELS_FILE, bundle.labels, bundle.labels),
                                    (SPLITS_FILE, bundle.splits, bundle.splits.set_index("scheme"))):
            write_parquet(frame, tmp / f)
            meta["files"][f] = {"columns": columns_of(described), "rows": len(frame), "sha256": sha256_file(tmp / f)}
        atomic_write_json(tmp / META_FILE, meta, durable=False)   # the publish fsyncs the whole folder
    bundle.metadata, bundle.folder = meta, folder
    return folder


def _locate(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        return path
    if path.is_file() and path.name == FEATURES_FILE:
        return path.parent
    if not path.exists():
        raise DatasetError(f"{path}: no such dataset (give a dataset folder, e.g. data/processed/ml_ready/<start>_<end>)")
    raise DatasetError(f"{path}: not a dataset (expected a folder holding {FEATURES_FILE}, {LABELS_FILE}, "
                       f"{SPLITS_FILE} and {META_FILE}, or its {FEATURES_FILE})")


def read_bundle(path: Path, *, lenient_metadata: bool = False) -> DatasetBundle:
    """The bundle in folder ``path`` (or whose ``features_dataset.parquet`` is ``path``).

    Raises :class:`DatasetError` when a file is missing or is not what a bundle holds. With
    ``lenient_metadata`` (validation), a missing or unreadable ``dataset.json`` gives a bundle whose
    ``metadata`` is ``{"unreadable": why}``: the data files are still checked, the verdict cannot pass."""
    folder = _locate(path)
    needed = (FEATURES_FILE, LABELS_FILE, SPLITS_FILE) + (() if lenient_metadata else (META_FILE,))
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        raise DatasetError(f"{folder}: not a dataset: missing {', '.join(missing)}")
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or "window" not in meta:
            raise ValueError("no 'window' in it")
    except FileNotFoundError:
        meta = {"unreadable": f"{META_FILE} is missing"}
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        if not lenient_metadata:
            raise DatasetError(f"{folder / META_FILE}: not a dataset description ({exc})") from None
        meta = {"unreadable": f"{META_FILE} is not a dataset description ({exc})"}
    frames = {}
    for f in (FEATURES_FILE, LABELS_FILE, SPLITS_FILE):
        try:
            frames[f] = pq.read_table(folder / f).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise DatasetError(f"{folder / f}: not a readable Parquet file ({exc})") from None
    features, labels, splits = frames[FEATURES_FILE], frames[LABELS_FILE], frames[SPLITS_FILE]
    for f, frame, need in ((FEATURES_FILE, features, {"t0"}), (LABELS_FILE, labels, {"t0", "t1"}),
                           (SPLITS_FILE, splits, {"scheme", "fold", "signal_id", "role"})):
        lacking = need - set(frame.columns)
        if lacking:
            raise DatasetError(f"{folder / f}: not a dataset file: no column(s) {', '.join(sorted(lacking))}")
    for f, frame, cols in ((FEATURES_FILE, features, ("t0",)), (LABELS_FILE, labels, ("t0", "t1"))):
        for c in cols:
            if not pd.api.types.is_datetime64_any_dtype(frame[c]):
                raise DatasetError(f"{folder / f}: not a dataset file: {c} holds {frame[c].dtype}, not timestamps")
    if features.index.name != "signal_id" or labels.index.name != "signal_id":
        raise DatasetError(f"{folder}: features and labels must be indexed by signal_id")
    if not features.index.equals(labels.index):
        raise DatasetError(f"{folder}: features and labels do not have the same rows")
    return DatasetBundle(features, labels, splits, meta, folder)
