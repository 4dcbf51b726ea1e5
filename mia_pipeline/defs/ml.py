"""ML datasets: the weekly features / labels / splits bundle of the decisions of one week.

One weekly partition (Sunday..Saturday, UTC) is the dataset of the Battle Navale decisions whose
``t0`` falls in that week, built point in time from that week's daily partitions (lineage: the
seven days of ``signals``, ``trades``, ``trade_exits``, ``market_bars``). Re-running a week rebuilds
byte-identical data files (``mia_pipeline.ml.bundle``).
"""

import warnings
from datetime import timedelta

import dagster as dg
import pyarrow.parquet as pq

from mia_pipeline.defs.partitions import weekly_partitions
from mia_pipeline.defs.recording import run_name
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.ml import DatasetError
from mia_pipeline.ml.bundle import (
    FEATURES_FILE,
    LABELS_FILE,
    SOURCE_DATASETS,
    SPLITS_FILE,
    build_bundle,
    write_bundle,
)
from mia_pipeline.ml.validation import CHECKS
from mia_pipeline.storage.atomic import sha256_file

ML_DATASETS = ("features_dataset", "labels_dataset", "dataset_splits")
FILES = {"features_dataset": FEATURES_FILE, "labels_dataset": LABELS_FILE, "dataset_splits": SPLITS_FILE}
PATH = "data/processed/ml_ready/<week start>_<week end>/"
DESCRIPTIONS = {
    "features_dataset": (
        "Grain: one row per Battle Navale decision (signal), index signal_id, with its decision time t0 and "
        "point-in-time features (the 8 features, rolling/momentum/rate-of-change, bar features as of t0, success "
        "rates of trades closed before t0, pattern history, interactions). Source: the week's daily signals, "
        "trades, trade_exits and market_bars partitions. Partition: UTC week Sunday..Saturday (decisions whose t0 "
        f"falls in it). Path: {PATH}{FEATURES_FILE}."),
    "labels_dataset": (
        "Grain: one row per decision, same rows as features_dataset: t0, t1 (when the outcome became known), trade "
        "success and pnl in R multiples, triple-barrier label. Source: trades, trade_exits, market_bars of the week. "
        f"Partition: UTC week Sunday..Saturday. Path: {PATH}{LABELS_FILE}."),
    "dataset_splits": (
        "Grain: one row per (scheme, fold, decision) with role train/test: purged k-fold and walk-forward folds "
        "with embargo (no training row's [t0, t1] overlaps its test fold). Source: labels_dataset's t0/t1. "
        f"Partition: UTC week Sunday..Saturday. Path: {PATH}{SPLITS_FILE} (+ dataset.json: window, config, "
        "source partitions with their sha256)."),
}


# Each Great Expectations check of `mia validate --dataset` is an asset check on the dataset file it is about.
CHECK_ASSET = {name: "dataset_splits" if name.startswith("splits_") else
               "labels_dataset" if name in ("label_balance", "label_times", "labels_rederived") else "features_dataset"
               for name in CHECKS}
WARNING_CHECKS = frozenset({"feature_correlation"})  # ValidationConfig.warn_only: reported, never fails a week
# Partitioned by week like the datasets, so each week keeps its own evaluation (a "preview" feature of
# Dagster 1.13, pinned in uv.lock): a result yielded in a week's run carries that week's partition key.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    ML_CHECKS = [dg.AssetCheckSpec(name, asset=CHECK_ASSET[name], description=f"Great Expectations: {text}.",
                                   blocking=name not in WARNING_CHECKS, partitions_def=weekly_partitions)
                 for name, text in CHECKS.items()]


def week_window(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """(first day, last day) of the run's weekly partition, as ISO dates."""
    window = context.partition_time_window
    return window.start.date().isoformat(), (window.end - timedelta(days=1)).date().isoformat()


def _file_metadata(path, extra: dict) -> dict:
    meta = pq.read_metadata(path)
    schema = meta.schema.to_arrow_schema()
    return {
        "dagster/row_count": meta.num_rows,
        "path": dg.MetadataValue.path(str(path)),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(name=f.name, type=str(f.type))
                                                         for f in schema if not f.name.startswith("__")]),
        **extra,
    }


@dg.multi_asset(
    name="ml_dataset",
    specs=[dg.AssetSpec(name, group_name="ml", kinds={"parquet"}, description=DESCRIPTIONS[name],
                        deps=list(SOURCE_DATASETS) if name != "dataset_splits" else ["labels_dataset"],
                        owners=["team:data"], tags={"layer": "ml"})
           for name in ML_DATASETS],
    partitions_def=weekly_partitions,
    check_specs=ML_CHECKS,
)
def ml_dataset(context: dg.AssetExecutionContext, mia: MiaResource):
    """Build the week's dataset bundle (features, labels, splits), write it whole, then validate it with
    the Great Expectations suites (Data Docs in data/reports/gx/): one check result per suite check."""
    layout, store = mia.layout(), mia.store()
    start, end = week_window(context)
    folder = layout.ml_ready_dir / f"{start}_{end}"
    try:
        bundle = build_bundle(store, start, end)
    except DatasetError as exc:
        raise dg.Failure(description=f"week {start}..{end}: {exc}; nothing written") from None
    write_bundle(bundle, folder)
    common = {"window": f"{start}..{end}", "source_partitions": len(bundle.metadata["source_partitions"]),
              "dataset_json": dg.MetadataValue.path(str(folder / "dataset.json"))}
    context.log.info(f"dataset of {start}..{end}: {len(bundle.features)} decisions -> {folder}")
    for name in ML_DATASETS:
        yield dg.MaterializeResult(asset_key=name, metadata=_file_metadata(folder / FILES[name], common))
    yield from validation_results(bundle, store, layout.reports_dir / "gx", context.partition_key,
                                  run_name(context))


def validation_results(bundle, store, docs_dir, week: str | None = None, run: str | None = None):
    """One ``AssetCheckResult`` per Great Expectations check of the bundle as written. A check that could
    not run (UNVERIFIED, e.g. a source day missing) is reported as not passed, with ``status:
    UNVERIFIED`` and the reason in its metadata: unverified is never green."""
    from mia_pipeline.ml.validation import validate_dataset
    from mia_pipeline.quality import validation_log

    report = validate_dataset(bundle, docs_dir=docs_dir, store=store, run_name=run)
    if week and run:
        validation_log.record_dataset(store.layout, report, week, run)
    for r in report.results:
        yield dg.AssetCheckResult(
            asset_key=CHECK_ASSET[r.name], check_name=r.name, passed=bool(r.success and not r.unverified),
            severity=dg.AssetCheckSeverity.WARN if r.severity == "warning" else dg.AssetCheckSeverity.ERROR,
            description=r.detail,
            metadata={"status": r.status, "detail": r.detail, "gx_expectations": r.gx_expectations,
                      "unverified": r.unverified,
                      **({"data_docs": dg.MetadataValue.path(str(report.docs_index))} if report.docs_index else {})})
