"""What validation re-derives instead of trusting: the files against ``dataset.json``, and every column
against a recomputation from the source days.

- :func:`files_frame`: one row per data file, its sha256 and row count now vs. recorded at write time;
- :func:`recomputed_frames`: from the daily partitions the dataset names (unchanged since the build),
  the builder's own pipeline (built-in and registered feature functions, with the dataset's config)
  rebuilds features and labels:

  * ``point_in_time``: one row per stored feature column, how many stored values differ from the
    value recomputed from only the data known at a sampled row's ``t0`` (each of ``n_rows`` sampled
    rows is a cutoff; every row decided by then is compared), and from all the data;
  * ``labels``: one row per label column, how many stored values differ from the recomputation
    (triple barrier from the source bars, trade outcomes from the trade exits; a column the file
    lacks differs on every row);
  * ``columns``: one row per stored column, whether a registered function produced it.

  Values are compared by kind, whatever the dtype: numbers (and bools) within 1e-7 relative, times
  exactly, anything else (strings, categories) by text; missing equals missing.

Each function returns ``(frames, why)``; ``why`` is empty when everything could be checked, else the
reason the missing frames could not be built (the verdict is then UNVERIFIED, never PASSED).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mia_pipeline.ml.errors import DatasetError

FILE_NAMES = ("features_dataset.parquet", "labels_dataset.parquet", "dataset_splits.parquet")


def files_frame(bundle) -> tuple[pd.DataFrame | None, str]:
    """Recorded vs actual sha256 and rows of each data file (``None`` + why when nothing is recorded)."""
    from mia_pipeline.storage.atomic import sha256_file

    if bundle.folder is None:
        return None, "in memory"
    meta = bundle.metadata
    if "unreadable" in meta:
        return None, meta["unreadable"]
    files = meta.get("files") if isinstance(meta.get("files"), dict) else {}
    rows = []
    lacking = []
    frames = dict(zip(FILE_NAMES, (bundle.features, bundle.labels, bundle.splits), strict=True))
    for name, frame in frames.items():
        rec = files.get(name) if isinstance(files.get(name), dict) else {}
        if not rec.get("sha256") or rec.get("rows") is None:
            lacking.append(name)
            continue
        sha = sha256_file(bundle.folder / name)
        rows.append({"file": name, "same": bool(sha == rec["sha256"] and rec["rows"] == len(frame)),
                     "sha256_matches": sha == rec["sha256"], "rows": len(frame), "recorded_rows": rec["rows"]})
    if lacking:
        return None, (f"dataset.json records no sha256/row count of {', '.join(lacking)} "
                      "(written before checksums were recorded, or removed: rebuild the dataset)")
    return pd.DataFrame(rows), ""


def differs(a: pd.Series, b: pd.Series, rtol: float = 1e-7, atol: float = 1e-9) -> np.ndarray:
    """Element-wise "not the same value" for two aligned series of any dtypes (missing == missing)."""
    a_na, b_na = a.isna().to_numpy(), b.isna().to_numpy()
    both_num = all(pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) for s in (a, b))
    both_time = all(pd.api.types.is_datetime64_any_dtype(s) for s in (a, b))
    try:
        if both_num:
            x = a.astype("float64").to_numpy(na_value=np.nan)
            y = b.astype("float64").to_numpy(na_value=np.nan)
            return ~np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=True)
        if both_time:
            x = pd.to_datetime(a, utc=True).dt.as_unit("ns").astype("int64").to_numpy()
            y = pd.to_datetime(b, utc=True).dt.as_unit("ns").astype("int64").to_numpy()
            return np.where(a_na | b_na, a_na != b_na, x != y)
    except (TypeError, ValueError, OverflowError):
        return np.ones(len(a), dtype=bool)
    x = a.astype(object).astype(str).to_numpy()
    y = b.astype(object).astype(str).to_numpy()
    return np.where(a_na | b_na, a_na != b_na, x != y)


def changed_counts(a: pd.DataFrame, b: pd.DataFrame, columns) -> np.ndarray:
    """Per column of ``columns``, how many rows of ``a`` and ``b`` (same rows) differ (see :func:`differs`);
    the columns numeric in both are compared in one matrix."""
    def num(s):
        return pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)

    columns = list(columns)
    numeric = [j for j, c in enumerate(columns) if num(a[c]) and num(b[c])]
    out = np.zeros(len(columns), dtype=np.int64)
    if numeric:
        cols = [columns[j] for j in numeric]
        try:
            x = a[cols].astype("float64").to_numpy(na_value=np.nan)
            y = b[cols].astype("float64").to_numpy(na_value=np.nan)
            out[numeric] = (~np.isclose(x, y, rtol=1e-7, atol=1e-9, equal_nan=True)).sum(axis=0)
        except (TypeError, ValueError):
            numeric = []
    done = set(numeric)
    for j, c in enumerate(columns):
        if j not in done:
            out[j] = int(differs(a[c], b[c]).sum())
    return out


def sample_positions(n: int, k: int, seed: int = 0) -> np.ndarray:
    """``k`` row positions out of ``n``: the last row and ``k - 1`` drawn at random (seeded, sorted)."""
    if n == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    picked = rng.choice(n - 1, size=min(k - 1, n - 1), replace=False) if n > 1 else np.zeros(0, dtype=np.int64)
    return np.unique(np.r_[picked, n - 1]).astype(np.int64)


def _lineage(bundle, store) -> tuple[pd.DataFrame | None, str, str]:
    """(sources frame, why not recomputable, why sources unverifiable)."""
    from mia_pipeline.ml.bundle import source_partitions

    meta = bundle.metadata
    if "unreadable" in meta:
        return None, meta["unreadable"], meta["unreadable"]
    window, built = meta.get("window"), meta.get("source_partitions")
    if not isinstance(window, dict) or not window.get("start") or not window.get("end"):
        why = "dataset.json records no window"
        return None, why, why
    if not isinstance(built, list) or not built or not all(isinstance(p, dict) for p in built):
        why = "dataset.json records no source_partitions (lineage)"
        return None, why, why
    now = source_partitions(store, window["start"], window["end"])
    key = {(p["dataset"], p["day"]): p.get("sha256") for p in now}
    was = {(p.get("dataset"), p.get("day")): p.get("sha256") for p in built}
    gone = sorted(f"{d}/{day}" for d, day in set(was) - set(key))
    if gone:
        why = (f"the data root lacks {len(gone)} source partition(s) the dataset was built from "
               f"({', '.join(gone[:4])}{', ...' if len(gone) > 4 else ''})")
        return None, why, why
    pairs = sorted(set(key) | set(was))
    sources = pd.DataFrame({"dataset": [d for d, _ in pairs], "day": [d for _, d in pairs],
                            "same": [key.get(k) == was.get(k) for k in pairs]})
    if not sources["same"].all():
        return sources, "source partitions changed since the build: rebuild the dataset first", ""
    return sources, "", ""


def recomputed_frames(bundle, store, n_rows: int, seed: int = 0) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """``(frames, unverified)``: frames ``sources``, ``point_in_time``, ``labels``, ``columns`` that could
    be built, and for each check that could not run, why (keys: check names)."""
    from mia_pipeline.ml.builder import MLConfig, MLDatasetBuilder
    from mia_pipeline.ml.registry import registered

    recompute_checks = ("point_in_time", "labels_rederived", "columns_accounted")
    sources, why, why_sources = _lineage(bundle, store)
    frames = {} if sources is None else {"sources": sources}
    unverified = {"sources_unchanged": why_sources} if why_sources else {}
    if why:
        return frames, {**unverified, **dict.fromkeys(recompute_checks, why)}
    meta = bundle.metadata
    try:
        config = MLConfig.from_dict(meta.get("config"))
    except (DatasetError, TypeError, ValueError) as exc:
        why = f"dataset.json's ML config cannot be used ({exc})"
        return frames, {**unverified, **dict.fromkeys(recompute_checks, why)}
    missing_fns = [n for n in config.custom_features if not registered(n)]
    if missing_fns:
        config = MLConfig.from_dict({**meta["config"], "custom_features": [n for n in config.custom_features
                                                                           if registered(n)]})
    builder = MLDatasetBuilder(store, config)
    snaps = builder.load_snapshots(meta["window"]["start"], meta["window"]["end"])
    full = builder.features_at(snaps, None).set_index("signal_id")
    labels = builder.create_labels(snaps)
    F, L = bundle.features, bundle.labels
    f_cols = [c for c in F.columns if c in full.columns]
    l_cols = [c for c in L.columns if c in labels.columns]
    frames["columns"] = pd.DataFrame(
        [{"file": "features", "column": c, "accounted": c in full.columns} for c in F.columns]
        + [{"file": "labels", "column": c, "accounted": c in labels.columns} for c in L.columns])
    if missing_fns:
        frames["columns"].attrs["why"] = (f"feature function(s) {', '.join(missing_fns)} named in dataset.json "
                                          "are not registered here")
    # labels: every stored row against the recomputation (rows the recomputation lacks count as changed)
    common = L.index.intersection(labels.index)
    absent = len(L.index) - len(common)
    # a label column the recomputation gives but the file lacks counts as changed on every row
    dropped = [c for c in labels.columns if c not in L.columns]
    frames["labels"] = pd.DataFrame({"column": l_cols + dropped, "compared": len(L),
                                     "changed": np.r_[changed_counts(L.loc[common, l_cols], labels.loc[common, l_cols],
                                                                     l_cols) + absent,
                                                      np.full(len(dropped), len(L), dtype=np.int64)]})
    # features: all rows against the full recomputation, then sampled rows as cutoffs
    changed = np.zeros(len(f_cols), dtype=np.int64)
    compared = 0
    t0 = pd.to_datetime(F["t0"], utc=True, errors="coerce")
    order = np.argsort(t0.to_numpy(), kind="stable")
    cuts = [None] + [t0.iloc[order[p]] for p in sample_positions(len(F), n_rows, seed)]
    for cut in cuts:
        part = full if cut is None else builder.features_at(snaps, cut).set_index("signal_id")
        rows = F.index if cut is None else F.index[(t0 <= cut).to_numpy()]
        have = rows.intersection(part.index)
        changed += len(rows) - len(have) + changed_counts(F.loc[have, f_cols], part.loc[have, f_cols], f_cols)
        compared += len(rows)
    frames["point_in_time"] = pd.DataFrame({"feature": f_cols, "compared": compared, "changed": changed})
    frames["point_in_time"].attrs["cutoffs"] = len(cuts) - 1
    return frames, unverified


def splits_frame_rederived(bundle) -> tuple[pd.DataFrame | None, str]:
    """One row per (scheme, fold) of the stored or re-derived splits: split rows missing from the stored
    file and rows it has that the dataset's split config (``dataset.json``) does not give."""
    from mia_pipeline.ml.bundle import SplitConfig, make_splits

    meta = bundle.metadata.get("splits") if isinstance(bundle.metadata.get("splits"), dict) else None
    if meta is None:
        return None, "dataset.json records no split config"
    try:
        cfg = SplitConfig(**{k: meta[k] for k in ("n_splits", "walk_forward_splits", "embargo")})
        cfg.embargo_td  # noqa: B018 -- refuses a nonsense duration here
    except (KeyError, TypeError, ValueError) as exc:
        return None, f"dataset.json's split config cannot be used ({type(exc).__name__}: {exc})"
    L = bundle.labels.sort_values("t0", kind="stable")
    want = make_splits(L, cfg)

    def keyed(s: pd.DataFrame) -> pd.Series:
        return (s["scheme"].astype(str) + "|" + s["fold"].astype(str) + "|" + s["signal_id"].astype(str)
                + "|" + s["role"].astype(str))

    have_k, want_k = keyed(bundle.splits), keyed(want)
    extra = have_k[~have_k.isin(want_k)]
    missing = want_k[~want_k.isin(have_k)]
    fold_of = lambda k: k.str.rsplit("|", n=2).str[0]  # noqa: E731 -- "scheme|fold"
    counts = pd.DataFrame({"extra": fold_of(extra).value_counts(), "missing": fold_of(missing).value_counts()})
    folds = sorted(set(fold_of(have_k)) | set(fold_of(want_k)))
    counts = counts.reindex(folds).fillna(0).astype("int64")
    return pd.DataFrame({"scheme": [f.split("|")[0] for f in folds], "fold": [f.split("|")[1] for f in folds],
                         "extra": counts["extra"].to_numpy(), "missing": counts["missing"].to_numpy()}), ""
