"""Dagster's record of what the library wrote: one materialization per (dataset, day) that carries
that day's own facts, and one evaluation per check per day.

Inside runs the events are logged with ``context.log_event``; writers outside runs (`mia collect`,
`mia import`, `mia rebuild`, restores) report the materializations with the public
``instance.report_runless_asset_event`` and have the checks evaluated by a run of ``daily_checks``
(see ``mia_pipeline.cli.dagster_bridge``), so the UI shows the same truth whoever wrote.

Staleness follows the day's own inputs. Each day's stored raw lines are the partitioned asset
``raw_events`` (data version: the raw lines' sha256); every dataset partition depends on the same
day of ``raw_events`` only. A writer that changed a day's raw lines records ``raw_events`` for that
day first, then every dataset stored on that day (those it did not touch keep their content: their
data version, the content sha256, is unchanged), so that day ends Synced and no other day moves.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta

import dagster as dg

from mia_pipeline.layout import DATASETS, RAW_EVENTS
from mia_pipeline.quality.checks import run_day_checks
from mia_pipeline.storage import PartitionStore
from mia_pipeline.storage.describe import PartitionFacts, describe_partition

Emit = Callable[[object], object]
# Tags Dagster reads for data versions and provenance (what MaterializeResult(data_version=) and a run's
# own materializations carry); events recorded outside a run's outputs set them themselves.
DATA_VERSION_TAG = "dagster/data_version"
CODE_VERSION_TAG = "dagster/code_version"
RAW_INPUT_VERSION_TAG = f"dagster/input_data_version/{RAW_EVENTS}"
RAW_INPUT_POINTER_TAG = f"dagster/input_event_pointer/{RAW_EVENTS}"
CODE_VERSION = "mia_pipeline"  # the datasets declare no code version: any constant string
EMPTY_VERSION = "empty"  # the data version of a day that holds nothing


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


def data_version(facts: PartitionFacts) -> str:
    """A partition's version is its content: the sha256 of what is stored (or "empty")."""
    return facts.sha256 or EMPTY_VERSION


def recorded_pairs(store: PartitionStore, written: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    """The (asset, day) pairs a write must record, in order: per day, ``raw_events`` first when the day's
    raw lines changed (then every dataset stored on that day, so that day stays Synced), else the
    datasets written."""
    by_day: dict[str, list[str]] = {}
    for ds, days in written.items():
        for day in days:
            by_day.setdefault(day, []).append(ds)
    out = []
    for day in sorted(by_day):
        names = set(by_day[day])
        if RAW_EVENTS in names:
            names |= {ds for ds in DATASETS if store.entry(day, ds) is not None or store.archived(day, ds)}
            out.append((RAW_EVENTS, day))
        out += [(ds, day) for ds in DATASETS if ds in names]
    return out


def _latest_raw(instance: dg.DagsterInstance, day: str):
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(RAW_EVENTS), asset_partitions=[day]), limit=1).records
    return records[0] if records else None


def _provenance(instance: dg.DagsterInstance | None, day: str) -> dict[str, str]:
    """Tags saying a dataset of ``day`` was built from the newest recorded raw lines of that day (so a later
    change of them makes it Unsynced); none when those raw lines were never recorded."""
    record = _latest_raw(instance, day) if instance is not None else None
    if record is None:
        return {}
    return {CODE_VERSION_TAG: CODE_VERSION, RAW_INPUT_POINTER_TAG: str(record.storage_id),
            RAW_INPUT_VERSION_TAG: record.event_log_entry.tags.get(DATA_VERSION_TAG, EMPTY_VERSION)}


def record_events(emit: Emit, instance: dg.DagsterInstance | None, store: PartitionStore,
                  written: Mapping[str, Iterable[str]], *, tags: Mapping[str, str] | None = None,
                  extra: Mapping | None = None) -> list[tuple[str, str]]:
    """Emit what a write changed, each with that day's own facts and ``tags``/``extra`` metadata: per day,
    an observation of ``raw_events`` (external: the raw lines are observed, not made by Dagster) when
    its raw lines changed, then a materialization of each dataset written (of every dataset stored on
    that day when its raw lines changed) naming the raw lines it was built from. Returns the (dataset,
    day) pairs materialized."""
    done = []
    for asset, day in recorded_pairs(store, written):
        facts = describe_partition(store, day, asset, preview=asset != RAW_EVENTS)
        metadata = {**partition_metadata(facts), **(extra or {})}
        version = {DATA_VERSION_TAG: data_version(facts), **(tags or {})}
        if asset == RAW_EVENTS:
            emit(dg.AssetObservation(asset_key=asset, partition=day, metadata=metadata, tags=version))
            continue
        emit(dg.AssetMaterialization(asset_key=asset, partition=day, metadata=metadata,
                                     tags={**version, **_provenance(instance, day)}))
        done.append((asset, day))
    return done


GX_COMPLETENESS = "gx_completeness"
GX_DESCRIPTION = ("Great Expectations suite of the day: required fields present, keys unique, values in their "
                  "domains (from the event contract). Warning. Evaluated by rebuilds/backfills of the daily "
                  "datasets and by the nightly daily_integrity job (not on every ingestion pass).")


def _datasets_only(written: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    return {ds: sorted(set(days)) for ds, days in written.items() if ds in DATASETS and days}


def gx_evaluations(store: PartitionStore, written: Mapping[str, Iterable[str]],
                   instance: dg.DagsterInstance | None = None, run: str | None = None) -> list[dg.AssetCheckEvaluation]:
    """One ``gx_completeness`` evaluation per (dataset, day) (tied to its newest materialization when
    ``instance`` is given). ``run`` (e.g. :func:`run_name` of the context): the results are also kept for
    the report index under that run's name (``reports/validations/``)."""
    from mia_pipeline.quality import validation_log
    from mia_pipeline.quality.gx import validate_days

    written = _datasets_only(written)
    if not written:
        return []
    days = sorted({d for ds_days in written.values() for d in ds_days})
    outcomes = validate_days(store, days, list(written), run_name=run)
    if run:
        validation_log.record_daily(store.layout, {ds: {d: outcomes[ds][d] for d in ds_days}
                                                   for ds, ds_days in written.items()}, run)
    targets = check_targets(instance, written)
    return [dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(ds), check_name=GX_COMPLETENESS, passed=o.passed, partition=day,
        metadata={"failing_rows": o.failing_rows, "detail": o.detail,
                  "expectations": dg.MetadataValue.json({e.name: {"passed": e.passed, "failing_rows": e.failing_rows,
                                                                  "detail": e.detail} for e in o.per_expectation})},
        severity=dg.AssetCheckSeverity.WARN, blocking=False, description=o.detail,
        target_materialization_data=targets.get((ds, day)))
        for ds, ds_days in written.items() for day in ds_days if (o := outcomes[ds][day]) is not None]


def check_evaluations(store: PartitionStore, written: Mapping[str, Iterable[str]], selected: set | None = None,
                      instance: dg.DagsterInstance | None = None, run: str | None = None) -> list[dg.AssetCheckEvaluation]:
    """One evaluation per check per (dataset, day) written; ``selected`` limits to those check keys (the
    Great Expectations check runs only when ``selected`` names it). With ``instance``, each evaluation
    names the partition's newest materialization (what the UI shows it against)."""
    written = _datasets_only(written)
    if not written:
        return []
    days = sorted({d for ds_days in written.values() for d in ds_days})
    outcomes = run_day_checks(store, days, list(written))
    targets = check_targets(instance, written)
    out = gx_evaluations(store, {ds: ds_days for ds, ds_days in written.items()
                                 if selected is not None and dg.AssetCheckKey(dg.AssetKey(ds), GX_COMPLETENESS) in selected},
                         instance, run)
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
                    blocking=o.blocking, description=o.detail, target_materialization_data=targets.get((ds, day)),
                ))
    return out


def run_name(context) -> str:
    """How a validation made in a run is named on the report index: the run id and its job."""
    from mia_pipeline.quality.validation_log import dagster_run_name

    return dagster_run_name(context.run.run_id, context.run.job_name)


def failed_checks(evaluations: Iterable[dg.AssetCheckEvaluation], *, blocking_only: bool = False) -> list[str]:
    """One line per failed evaluation: ``dataset[day].check: detail`` (+ "(warning)" when not blocking)."""
    return [f"{e.asset_key.to_user_string()}[{e.partition}].{e.check_name}: {e.metadata['detail'].value}"
            + ("" if e.blocking else " (warning)")
            for e in evaluations if not e.passed and (e.blocking or not blocking_only)]


def blocking_failures(evaluations: Iterable[dg.AssetCheckEvaluation]) -> list[str]:
    return failed_checks(evaluations, blocking_only=True)


def latest_records(instance: dg.DagsterInstance, asset: str, days: Iterable[str]) -> dict[str, object]:
    """``{day: record}``: the newest materialization record (observation, for ``raw_events``) of each of
    ``days`` that has one (pages of newest-first records, stopping once every day is found)."""
    fetch = instance.fetch_observations if asset == RAW_EVENTS else instance.fetch_materializations
    days = set(days)
    found: dict[str, object] = {}
    cursor = None
    while len(found) < len(days):
        page = fetch(dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=sorted(days - set(found))),
                     limit=1000, cursor=cursor, ascending=False)
        for r in page.records:
            found.setdefault(r.partition_key, r)
        if not page.has_more:
            break
        cursor = page.cursor
    return found


def _target_type():
    """The class of ``AssetCheckEvaluation``'s public ``target_materialization_data`` parameter.

    An evaluation counts for a partition's current state only when it names the materialization it
    checked (otherwise the UI clears the check on that partition). Dagster fills that in for an
    ``AssetCheckResult`` of a one-partition run, not for a range run or events logged for other days;
    it exports ``AssetCheckEvaluation`` but not the class of that parameter, so it is taken from the
    public constructor's signature (a test asserts it resolves)."""
    hint = inspect.signature(dg.AssetCheckEvaluation).parameters["target_materialization_data"].annotation
    return next(t for t in typing.get_args(hint) if t is not type(None))


def check_targets(instance: dg.DagsterInstance | None, written: Mapping[str, Iterable[str]]) -> dict:
    """``{(dataset, day): target}`` pointing each evaluation at the partition's newest materialization."""
    if instance is None:
        return {}
    target = _target_type()
    return {(ds, day): target(storage_id=r.storage_id, run_id=r.run_id, timestamp=r.timestamp)
            for ds, days in written.items() for day, r in latest_records(instance, ds, days).items()}


CATCH_UP_WINDOW_S = 2 * 86_400  # rewrites younger than this are compared with their record on every write


def unrecorded(instance: dg.DagsterInstance, store: PartitionStore, datasets=None, *,
               window_s: float | None = CATCH_UP_WINDOW_S) -> dict[str, list[str]]:
    """``{dataset: [day]}`` whose stored version Dagster has not recorded: no materialization of that
    partition (any day, from Dagster's partition status), or a day rewritten in the last ``window_s``
    seconds whose latest materialization describes another write (its ``written_at`` differs from the
    manifest). ``window_s=None`` compares every day (one query per day: the nightly integrity run).

    This is how a writer that died between committing data and recording it (SIGKILL, a crash) is
    caught up: the next writer records what the disk holds."""
    from mia_pipeline.defs.partitions import daily_partitions

    manifests, _ = store.readable_manifests()
    cutoff = (None if window_s is None else  # the manifests' written_at format: 2025-06-23T10:00:00.000Z
              (datetime.now(UTC) - timedelta(seconds=window_s)).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    known_days = set(daily_partitions.get_partition_keys())
    out: dict[str, list[str]] = {}
    for ds in datasets or (*DATASETS, RAW_EVENTS):  # raw_events last: it follows the datasets' findings
        on_disk = {d: m["datasets"][ds].get("written_at") for d, m in manifests.items() if ds in m["datasets"]}
        if not on_disk:
            continue
        keys = sorted(set(on_disk) & known_days)
        if ds == RAW_EVENTS:  # observed, not materialized: a day whose datasets are missing is re-observed too
            missing = {d for days in out.values() for d in days if d in on_disk}
        else:
            status = (instance.get_status_by_partition(dg.AssetKey(ds), keys, daily_partitions) or {}) if keys else {}
            missing = {d for d in keys if status.get(d) != dg.AssetPartitionStatus.MATERIALIZED}
        for day, written in on_disk.items():
            if day in missing or (cutoff is not None and day in known_days and str(written or "") < cutoff):
                continue
            record = latest_records(instance, ds, [day]).get(day)
            event = (record.event_log_entry.asset_observation if ds == RAW_EVENTS
                     else record.event_log_entry.asset_materialization) if record is not None else None
            value = event.metadata.get("written_at") if event is not None else None
            if getattr(value, "value", None) != written:
                missing.add(day)
        if missing:
            out[ds] = sorted(missing)
    return out


def record_written(emit: Emit, instance: dg.DagsterInstance, store: PartitionStore,
                   written: Mapping[str, Iterable[str]], *, before: Iterable = (), after: Iterable = ()) -> list:
    """Inside a run: emit ``before`` events, the records of what was written (:func:`record_events`), their
    check evaluations, then ``after`` events. Returns the evaluations."""
    for event in before:
        emit(event)
    done = record_events(emit, instance, store, written)
    by_dataset: dict[str, list[str]] = {}
    for ds, day in done:
        by_dataset.setdefault(ds, []).append(day)
    evaluations = check_evaluations(store, by_dataset, instance=instance)
    for event in evaluations:
        emit(event)
    for event in after:
        emit(event)
    return evaluations
