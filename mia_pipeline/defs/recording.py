"""Dagster's record of what the library wrote: one materialization per (dataset, day) that carries
that day's own facts, and one evaluation per check per day, tied to that materialization.

Used inside runs (``context.log_event``) and by writers outside runs (``mia collect``, ``mia import``,
``mia rebuild``: ``instance.report_runless_asset_event``), so the UI shows the same truth whoever wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from mia_pipeline.collection.checks import run_day_checks
from mia_pipeline.storage import PartitionStore
from mia_pipeline.storage.describe import PartitionFacts, describe_partition

Emit = Callable[[object], object]


def partition_metadata(facts: PartitionFacts) -> dict:
    """Metadata of one (dataset, day) materialization: that day's figures only."""
    meta: dict = {"dagster/row_count": facts.rows, "day": facts.day}
    if not facts.stored:
        meta["stored"] = dg.MetadataValue.md(f"No `{facts.dataset}` events on {facts.day}: nothing is stored.")
        return meta
    meta |= {
        "path": dg.MetadataValue.path(str(facts.path)),
        "manifest": dg.MetadataValue.path(str(facts.manifest)),
        "bytes": facts.bytes,
        "sha256": facts.sha256,
        "schema_version": facts.schema_version,
        "compression": facts.compression,
        "written_at": facts.written_at,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=n, type=t) for n, t in facts.columns]),
    }
    if facts.preview:
        meta["preview"] = dg.MetadataValue.md(facts.preview)
    if facts.archived:
        meta["archived"] = dg.MetadataValue.md(
            f"Archived in `{facts.archived}`: the rows live in the month file (`path`); sha256 is their content hash.")
    return meta


def _pairs(written: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    return [(ds, day) for ds, days in written.items() for day in sorted(set(days))]


def materializations(store: PartitionStore, written: Mapping[str, Iterable[str]]) -> list[dg.AssetMaterialization]:
    return [dg.AssetMaterialization(asset_key=ds, partition=day, metadata=partition_metadata(
        describe_partition(store, day, ds))) for ds, day in _pairs(written)]


def _targets(instance: dg.DagsterInstance, written, after_storage_id: int | None) -> dict:
    """(dataset, day) -> pointer to the materialization the checks evaluate (the newest one)."""
    out = {}
    for ds, days in written.items():
        days = sorted(set(days))
        if not days:
            continue
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(ds), asset_partitions=days, after_storage_id=after_storage_id),
            limit=max(100, 4 * len(days)),
        ).records
        for r in records:  # newest first
            out.setdefault((ds, r.partition_key), AssetCheckEvaluationTargetMaterializationData(
                storage_id=r.storage_id, run_id=r.run_id, timestamp=r.timestamp))
    return out


GX_COMPLETENESS = "gx_completeness"
GX_DESCRIPTION = ("Great Expectations suite of the day: required fields present, keys unique, values in their "
                  "domains (from the event contract). Warning. Evaluated by rebuilds/backfills of the daily "
                  "datasets and by the nightly daily_integrity job (not on every ingestion pass).")


def gx_evaluations(instance: dg.DagsterInstance, store: PartitionStore, written: Mapping[str, Iterable[str]],
                   after_storage_id: int | None = None) -> list[dg.AssetCheckEvaluation]:
    """One ``gx_completeness`` evaluation per (dataset, day), tied to that partition's newest materialization."""
    from mia_pipeline.collection.gx_daily import validate_days

    written = {ds: sorted(set(days)) for ds, days in written.items() if days}
    if not written:
        return []
    days = sorted({d for ds_days in written.values() for d in ds_days})
    outcomes = validate_days(store, days, list(written))
    targets = _targets(instance, written, after_storage_id)
    return [dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(ds), check_name=GX_COMPLETENESS, passed=o.passed, partition=day,
        metadata={"failing_rows": o.failing_rows, "detail": o.detail,
                  "expectations": dg.MetadataValue.json({e.name: {"passed": e.passed, "failing_rows": e.failing_rows,
                                                                  "detail": e.detail} for e in o.per_expectation})},
        severity=dg.AssetCheckSeverity.WARN, blocking=False, description=o.detail,
        target_materialization_data=targets.get((ds, day)))
        for ds, ds_days in written.items() for day in ds_days if (o := outcomes[ds][day]) is not None]


def check_evaluations(instance: dg.DagsterInstance, store: PartitionStore, written: Mapping[str, Iterable[str]],
                      after_storage_id: int | None = None, selected: set | None = None) -> list[dg.AssetCheckEvaluation]:
    """One evaluation per check per (dataset, day) written; ``selected`` limits to those check keys (the
    Great Expectations check runs only when ``selected`` names it)."""
    written = {ds: sorted(set(days)) for ds, days in written.items() if days}
    if not written:
        return []
    days = sorted({d for ds_days in written.values() for d in ds_days})
    outcomes = run_day_checks(store, days, list(written))
    targets = _targets(instance, written, after_storage_id)
    out = []
    gx_for = {ds: ds_days for ds, ds_days in written.items()
              if selected is not None and dg.AssetCheckKey(dg.AssetKey(ds), GX_COMPLETENESS) in selected}
    out += gx_evaluations(instance, store, gx_for, after_storage_id)
    for ds, ds_days in written.items():
        for day in ds_days:
            for o in outcomes[ds][day]:
                if selected is not None and dg.AssetCheckKey(dg.AssetKey(ds), o.name) not in selected:
                    continue
                out.append(dg.AssetCheckEvaluation(
                    asset_key=dg.AssetKey(ds), check_name=o.name, passed=o.passed, partition=day,
                    metadata={"failing_rows": o.failing, "detail": o.detail,
                              **({"examples": dg.MetadataValue.json(o.examples)} if o.examples else {})},
                    severity=dg.AssetCheckSeverity.ERROR if o.blocking else dg.AssetCheckSeverity.WARN,
                    blocking=o.blocking, target_materialization_data=targets.get((ds, day)),
                    description=o.detail,
                ))
    return out


def failed_checks(evaluations: Iterable[dg.AssetCheckEvaluation], *, blocking_only: bool = False) -> list[str]:
    """One line per failed evaluation: ``dataset[day].check: detail`` (+ "(warning)" when not blocking)."""
    return [f"{e.asset_key.to_user_string()}[{e.partition}].{e.check_name}: {e.metadata['detail'].value}"
            + ("" if e.blocking else " (warning)")
            for e in evaluations if not e.passed and (e.blocking or not blocking_only)]


def blocking_failures(evaluations: Iterable[dg.AssetCheckEvaluation]) -> list[str]:
    return failed_checks(evaluations, blocking_only=True)


def unrecorded(instance: dg.DagsterInstance, store: PartitionStore, datasets=None) -> dict[str, list[str]]:
    """``{dataset: [day]}`` whose stored version Dagster has not recorded: no materialization of that
    partition, or the latest one describes another write (its ``written_at`` differs from the manifest).

    This is how a writer that died between committing data and recording it (SIGKILL, a crash) is
    caught up: the next writer records what the disk holds."""
    from dagster._core.events import DagsterEventType

    from mia_pipeline.layout import DATASETS

    manifests, _ = store.readable_manifests()
    out: dict[str, list[str]] = {}
    for ds in datasets or DATASETS:
        on_disk = {d: m["datasets"][ds].get("written_at") for d, m in manifests.items() if ds in m["datasets"]}
        if not on_disk:
            continue
        key = dg.AssetKey(ds)
        latest = instance.event_log_storage.get_latest_storage_id_by_partition(
            key, DagsterEventType.ASSET_MATERIALIZATION, set(on_disk))
        ids = sorted(latest.values())
        recorded: dict[str, object] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for r in instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, storage_ids=chunk),
                                                     limit=len(chunk)).records:
                value = r.asset_materialization.metadata.get("written_at")
                recorded[r.partition_key] = getattr(value, "value", value)
        missing = sorted(d for d, written in on_disk.items() if recorded.get(d) != written)
        if missing:
            out[ds] = missing
    return out


def record_written(emit: Emit, instance: dg.DagsterInstance, store: PartitionStore,
                   written: Mapping[str, Iterable[str]], *, before: Iterable = (), after: Iterable = ()) -> list:
    """Emit ``before`` events, a materialization per (dataset, day) written, their check evaluations,
    then ``after`` events. Returns the check evaluations."""
    start = instance.event_log_storage.get_maximum_record_id()
    for event in before:
        emit(event)
    for event in materializations(store, written):
        emit(event)
    evaluations = check_evaluations(instance, store, written, after_storage_id=start)
    for event in evaluations:
        emit(event)
    for event in after:
        emit(event)
    return evaluations
