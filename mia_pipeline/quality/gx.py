"""Great Expectations (1.x): the suites of the seven daily datasets and of ML datasets, and the runner.
This is the project's only Great Expectations import (inside functions: GX takes seconds to import).

Daily suites are built from the rule table (:mod:`mia_pipeline.quality.rules`, the rules ingestion
enforces on every event, so real data never violates them): every row with a GX form becomes
expectations of its group:

- ``required_fields_present``: the envelope (``ts``, ``event_id``, ``source``, ``schema_version``) and
  the dataset's required fields are not null;
- ``keys_unique``: the dataset key (:data:`~mia_pipeline.schemas.DATASET_KEYS`) is unique within a day;
- ``values_in_domain``: enums in their sets, prices > 0, quantities >= 0 (> 0 for a position size),
  scores and confidences in [0, 1], non-negative amounts, ask >= bid, OHLC consistent,
  ``schema_version`` >= 1.

:func:`validate_days` reads every requested day of a dataset into **one** GX batch with a ``_day``
column and splits the failing rows back per day (GX reports them with ``unexpected_index_column_names``),
so a year of days costs one validation per dataset, not one per day.

:func:`ml_batches` are the ML dataset suites over the frames :mod:`mia_pipeline.quality.ml_checks`
computes; :func:`run_gx` runs any batches: one ephemeral context per call, progress bars off, optional
Data Docs rendered to a local folder.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from mia_pipeline.quality.rules import DOMAIN, KEYS, REQUIRED, rules_for
from mia_pipeline.schemas import DATASET_KEYS, KIND_TO_DATASET

DAY = "_day"
DAILY_DATASETS = tuple(d for d in KIND_TO_DATASET.values() if d)
DATASET_KIND = {d: k for k, d in KIND_TO_DATASET.items() if d}
DAILY_EXPECTATIONS = (REQUIRED, KEYS, DOMAIN)


# ---------------------------------------------------------------------------------------- the runner
@dataclass
class GXBatch:
    """One frame validated by one suite: ``expectations`` are (check name, GX expectation) pairs; rows that
    fail are reported with the values of ``id_columns`` (e.g. the feature name, the day)."""

    name: str
    frame: pd.DataFrame
    expectations: list = field(default_factory=list)
    id_columns: tuple[str, ...] = ()
    complete: bool = False      # list every failing row (needed to group them per day)


@dataclass
class GXOutcome:
    check: str
    batch: str
    success: bool
    result: dict
    expectation: str            # e.g. "expect_column_values_to_be_between(column=abs_corr)"


def _describe(cfg) -> str:
    kw = cfg.kwargs
    args = [f"{k}={kw[k]}" for k in ("column", "column_A", "column_B", "column_list") if k in kw]
    return f"{cfg.type}({', '.join(args)})"


def run_gx(batches: list[GXBatch], docs_dir: Path | None = None,
           site_name: str = "mia", run_name: str | None = None) -> tuple[list[GXOutcome], Path | None]:
    """Validate each batch with its suite in one ephemeral GX context; render Data Docs to ``docs_dir``
    (a local site) when given. ``run_name`` names the GX run (its Data Docs say ``__none__`` otherwise).
    Returns the outcome of every expectation and the docs index path."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = ctx.data_sources.add_pandas("mia")
    outcomes: list[GXOutcome] = []
    for b in batches:
        suite = ctx.suites.add(gx.ExpectationSuite(name=b.name))
        for check, exp in b.expectations:
            exp.meta = {**(exp.meta or {}), "check": check}
            suite.add_expectation(exp)
        definition = ctx.validation_definitions.add(gx.ValidationDefinition(
            name=b.name, suite=suite,
            data=source.add_dataframe_asset(b.name).add_batch_definition_whole_dataframe(b.name)))
        fmt = {"result_format": "COMPLETE" if b.complete else "SUMMARY", "partial_unexpected_count": 10}
        if b.id_columns:
            fmt["unexpected_index_column_names"] = list(b.id_columns)
        run = definition.run(batch_parameters={"dataframe": b.frame}, result_format=fmt,
                             run_id=RunIdentifier(run_name=run_name) if run_name else None)
        for r in run.results:
            cfg = r.expectation_config
            raised = (r.exception_info or {}).get("raised_exception")
            result = dict(r.result or {})
            if raised:
                result["exception"] = str(r.exception_info.get("exception_message"))
            outcomes.append(GXOutcome(cfg.meta.get("check", cfg.type), b.name, bool(r.success) and not raised,
                                      result, _describe(cfg)))
    index = None
    if docs_dir is not None:
        docs_dir = Path(docs_dir)
        docs_dir.mkdir(parents=True, exist_ok=True)
        ctx.add_data_docs_site(site_name, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
        ctx.build_data_docs(site_names=[site_name])
        index = docs_dir / "index.html"
    return outcomes, index


# ---------------------------------------------------------------------------------------- daily suites
@dataclass
class ExpectationOutcome:
    name: str                   # one of DAILY_EXPECTATIONS
    passed: bool
    failing_rows: int
    detail: str


@dataclass
class DailyOutcome:
    passed: bool
    failing_rows: int
    detail: str
    per_expectation: list[ExpectationOutcome] = field(default_factory=list)


def _columns(dataset: str) -> list[str]:
    from mia_pipeline.schemas import DATASET_SCHEMAS

    flat = pa.schema(DATASET_SCHEMAS[dataset]).empty_table()
    while any(pa.types.is_struct(f.type) for f in flat.schema):
        flat = flat.flatten()
    return flat.column_names


def _stored(column: str) -> str:
    return "ts" if column == "timestamp" else column


def expectations_of(rule, have: set) -> list[object]:
    """The GX expectations of one rule-table row (none when a column is absent from the frame)."""
    import great_expectations.expectations as gxe

    cols = [_stored(c) for c in rule.columns]
    if rule.gx is None or any(c not in have for c in cols):
        return []
    t = rule.test
    if t == "not_null":
        return [gxe.ExpectColumnValuesToNotBeNull(column=cols[0])]
    if t in ("gt0", "ge0", "unit", "between"):
        lo, hi = {"gt0": (0, None), "ge0": (0, None), "unit": (0, 1)}.get(t, rule.values)
        return [gxe.ExpectColumnValuesToBeBetween(column=cols[0], min_value=lo, max_value=hi, strict_min=t == "gt0")]
    if t == "in_set":
        return [gxe.ExpectColumnValuesToBeInSet(column=cols[0], value_set=list(rule.values))]
    pairs = {"a_ge_b": [tuple(cols)], "ohlc": [("high", "low"), ("high", "open"), ("open", "low"),
                                               ("high", "close"), ("close", "low")]}.get(t)
    if pairs is None:
        raise ValueError(f"rule {rule.rule}: no GX form for test {t!r}")
    return [gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True,
                                                        ignore_row_if="either_value_is_missing") for a, b in pairs]


def daily_expectations(dataset: str, columns: Iterable[str] | None = None) -> list[tuple[str, object]]:
    """The (check, GX expectation) pairs of ``dataset``'s suite: every row of the rule table with a GX
    form (only on columns the frame has); the key row is the day's compound-key uniqueness."""
    import great_expectations.expectations as gxe

    have = set(columns if columns is not None else _columns(dataset))
    out: list[tuple[str, object]] = []
    for rule in rules_for(dataset):
        if rule.test == "unique_key":
            keys = [k for k in DATASET_KEYS[dataset] if k in have]
            out.append((KEYS, gxe.ExpectCompoundColumnsToBeUnique(column_list=[DAY, *keys])))
        else:
            out += [(rule.gx, e) for e in expectations_of(rule, have)]
    return out


def _frame(store, dataset: str, days: list[str], unreadable: dict[str, str] | None = None) -> pd.DataFrame:
    """The days' rows with their day; a partition that cannot be read (damaged: it does not match its
    manifest) is left out and named in ``unreadable`` (day -> why)."""
    from mia_pipeline.storage import StorageError

    tables = []
    for d in days:
        try:
            t = store.read(d, dataset)
        except StorageError as exc:
            if unreadable is None:
                raise
            unreadable[d] = str(exc)
            continue
        if t is not None and t.num_rows:
            tables.append(t.append_column(DAY, pa.array([d] * t.num_rows, pa.string())))
    if not tables:
        return pd.DataFrame()
    table = pa.concat_tables(tables, promote_options="permissive")
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    # lists (feature vectors, secondary patterns) are not checked here and are costly in pandas
    keep = [f.name for f in table.schema if not pa.types.is_list(f.type)]
    return table.select(keep).to_pandas()


def _no_rows(day: str) -> DailyOutcome:
    per = [ExpectationOutcome(n, True, 0, "no rows") for n in DAILY_EXPECTATIONS]
    return DailyOutcome(True, 0, f"{day}: no rows", per)


def validate_days(store, days: Iterable, datasets: Iterable[str] | None = None,
                  docs_dir: Path | None = None, run_name: str | None = None) -> dict[str, dict[str, DailyOutcome]]:
    """``{dataset: {day: DailyOutcome}}``: each dataset's days read once and validated as one GX batch.

    A day without rows passes ("no rows"); a day whose partition cannot be read (damaged) fails as
    UNVERIFIED. ``failing_rows`` counts failing (row, expectation) pairs."""
    days = sorted({str(d) for d in days})
    batches, frames = [], {}
    damaged: dict[str, dict[str, str]] = {}
    for ds in datasets or DAILY_DATASETS:
        if ds not in DATASET_KIND:
            raise ValueError(f"unknown dataset {ds!r}; datasets: {', '.join(DAILY_DATASETS)}")
        frames[ds] = frame = _frame(store, ds, days, damaged.setdefault(ds, {}))
        if len(frame):
            batches.append(GXBatch(f"daily_{ds}", frame, daily_expectations(ds, frame.columns), (DAY,), True))
    outcomes, _ = run_gx(batches, docs_dir, run_name=run_name) if batches else ([], None)
    out: dict[str, dict[str, DailyOutcome]] = {}
    for ds, frame in frames.items():
        mine = [o for o in outcomes if o.batch == f"daily_{ds}"]
        present = set(frame[DAY].unique()) if len(frame) else set()
        out[ds] = {d: _unverified(d, damaged[ds][d]) if d in damaged[ds] else
                   _day_outcome(d, mine) if d in present else _no_rows(d) for d in days}
    return out


def _unverified(day: str, why: str) -> DailyOutcome:
    """A day whose partition could not be read: UNVERIFIED, never a pass."""
    per = [ExpectationOutcome(n, False, 0, "UNVERIFIED: the partition could not be read") for n in DAILY_EXPECTATIONS]
    return DailyOutcome(False, 0, f"UNVERIFIED: {why}", per)


def _day_outcome(day: str, outcomes: list[GXOutcome]) -> DailyOutcome:
    per = []
    for name in DAILY_EXPECTATIONS:
        failing, notes = 0, []
        for o in (x for x in outcomes if x.check == name):
            if "exception" in o.result:
                failing, notes = failing + 1, [*notes, f"{o.expectation} could not run: {o.result['exception']}"]
                continue
            rows = [r for r in o.result.get("unexpected_index_list") or [] if r.get(DAY) == day]
            if rows:
                failing += len(rows)
                shown = Counter(str({k: v for k, v in r.items() if k != DAY}) for r in rows).most_common(3)
                notes.append(f"{o.expectation}: {len(rows)} row(s), e.g. {', '.join(s for s, _ in shown)}")
        per.append(ExpectationOutcome(name, failing == 0, failing, "; ".join(notes) or "ok"))
    bad = [p for p in per if not p.passed]
    detail = "; ".join(f"{p.name}: {p.detail}" for p in bad) or "all expectations met"
    return DailyOutcome(not bad, sum(p.failing_rows for p in per), detail, per)


def validate_daily(store, day, dataset: str) -> DailyOutcome:
    """The suite of one dataset on one day."""
    return validate_days(store, [day], [dataset])[dataset][str(day)]


# ------------------------------------------------------------------------------------------ ML suites
def ml_batches(F: pd.DataFrame, L: pd.DataFrame, frames: dict[str, pd.DataFrame], cfg,
                  asof: Sequence[str], strict_asof) -> list:
    """The GX batches of a dataset: the raw rows (features, label times) and each derived frame."""
    import great_expectations.expectations as gxe

    def pair(check, a, b, **kw):
        return check, gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b,
                                                                  ignore_row_if="either_value_is_missing", **kw)

    def at_most(check, column, limit, strict=False):
        return check, gxe.ExpectColumnValuesToBeBetween(column=column, max_value=limit, strict_max=strict)

    crit = "critical_values_present"
    # raw batches: only the columns checked, positional index (GX fingerprints frames under 1 GB by
    # hashing every cell; a string index costs seconds on 1 M rows). Examples map back to signal_id.
    # features and labels rows side by side, by position (read_bundle checks they are the same rows;
    # the features_t0 == t0 expectation catches a misaligned in-memory bundle)
    times = pd.concat([L[[c for c in ("t0", "t1", "tb_entry", "tb_entry_asof") if c in L.columns]].reset_index(drop=True),
                       F[[c for c in ("t0", "bar_close", "bar_asof") if c in F.columns]].reset_index(drop=True).rename(
                           columns={"t0": "features_t0"})], axis=1)
    F = F[[c for c in F.columns if c in cfg.critical_columns or c in asof or c == "t0"]].reset_index(drop=True)
    feats = [(crit, gxe.ExpectColumnValuesToNotBeNull(column=c)) for c in cfg.critical_columns if c in F.columns]
    # a critical column in neither file: its expectation fails on the features batch (which lacks it)
    feats += [(crit, gxe.ExpectColumnToExist(column=c)) for c in cfg.critical_columns
              if c not in F.columns and c not in L.columns]
    feats += [pair("asof_not_after_t0", "t0", c, or_equal=c not in strict_asof) for c in asof]
    lab = [(crit, gxe.ExpectColumnValuesToNotBeNull(column=c)) for c in cfg.critical_columns
           if c in L.columns and c not in F.columns]
    lab += [pair("label_times", "t1", "t0"),
            ("label_times", gxe.ExpectColumnPairValuesToBeEqual(column_A="t0", column_B="features_t0"))]
    if "tb_entry_asof" in times.columns:
        lab.append(pair("asof_not_after_t0", "t0", "tb_entry_asof", or_equal=True))
    for a, b in (("bar_close", "tb_entry"), ("bar_asof", "tb_entry_asof")):
        if a in times.columns and b in times.columns:
            lab.append(("bar_features_match_label_entry", gxe.ExpectColumnPairValuesToBeEqual(
                column_A=a, column_B=b, ignore_row_if="either_value_is_missing")))
    suites = {
        "feature_missing": ([at_most("missing_rate_below_max", "missing_rate", cfg.max_missing_rate)], ("feature",)),
        "label_balance": ([("label_balance", gxe.ExpectColumnValuesToBeBetween(
            column="share", min_value=cfg.min_class_share, max_value=cfg.max_class_share))], ("label", "class")),
        "feature_pairs": ([at_most("feature_correlation", "abs_corr", cfg.max_abs_correlation)],
                          ("feature_a", "feature_b")),
        "label_leaks": ([at_most("no_label_leak", "auc", cfg.leak_auc, True),
                         at_most("no_label_leak", "abs_r", cfg.leak_abs_r, True)], ("feature", "label")),
        "folds": ([at_most("splits_purged", c, 0) for c in ("in_both", "unknown_rows", "overlapping")]
                  + [at_most("splits_embargoed", "in_embargo", 0),
                     at_most("splits_walk_forward_ordered", "not_before_test", 0)], ("scheme", "fold")),
        "sources": ([("sources_unchanged", gxe.ExpectColumnValuesToBeInSet(column="same", value_set=[True]))],
                    ("dataset", "day")),
        "files": ([("files_match_manifest", gxe.ExpectColumnValuesToBeInSet(column="same", value_set=[True]))],
                  ("file",)),
        "columns": ([("columns_accounted", gxe.ExpectColumnValuesToBeInSet(column="accounted", value_set=[True]))],
                    ("file", "column")),
        "point_in_time": ([at_most("point_in_time", "changed", 0)], ("feature",)),
        "labels": ([at_most("labels_rederived", "changed", 0)], ("column",)),
        "splits_rederived": ([at_most("splits_rederived", "extra", 0), at_most("splits_rederived", "missing", 0)],
                             ("scheme", "fold")),
    }
    out = [GXBatch("dataset_features", F, feats), GXBatch("dataset_label_times", times, lab)]
    for name, frame in frames.items():
        exps, ids = suites[name]
        out.append(GXBatch(f"dataset_{name}", frame, exps, ids))
    return out
