"""Great Expectations (1.x) completeness suites of the seven daily datasets, and the shared GX runner.

Per dataset, derived from the event contract (:data:`mia_pipeline.schemas.contract.RULES`, the rules the
collector enforces on every event, so real data never violates them):

- ``required_fields_present``: the envelope (``ts``, ``event_id``, ``source``, ``schema_version``) and
  the kind's required fields are not null;
- ``keys_unique``: the dataset key (:data:`~mia_pipeline.schemas.DATASET_KEYS`) is unique within a day;
- ``values_in_domain``: enums in their sets, prices > 0, quantities >= 0 (> 0 for a position size),
  scores and confidences in [0, 1], non-negative amounts, ask >= bid, bar low <= high,
  ``schema_version`` in 1..current.

:func:`validate_days` reads every requested day of a dataset into **one** GX batch with a ``_day``
column and splits the failing rows back per day (GX reports them with ``unexpected_index_column_names``),
so a year of days costs one validation per dataset, not one per day.

:func:`run_gx` is the runner shared with :mod:`mia_pipeline.ml.validation` (it lives here because
collection is the lowest layer that runs GX): one ephemeral context per call, progress bars off,
optional Data Docs rendered to a local folder. GX is imported inside functions: it takes seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from mia_pipeline.schemas import CURRENT_SCHEMA_VERSION, DATASET_KEYS, KIND_TO_DATASET
from mia_pipeline.schemas.contract import RULES

DAY = "_day"
ENVELOPE = ("ts", "event_id", "source", "schema_version")
DAILY_DATASETS = tuple(d for d in KIND_TO_DATASET.values() if d)
DATASET_KIND = {d: k for k, d in KIND_TO_DATASET.items() if d}
REQUIRED, KEYS, DOMAIN = "required_fields_present", "keys_unique", "values_in_domain"
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
           site_name: str = "mia") -> tuple[list[GXOutcome], Path | None]:
    """Validate each batch with its suite in one ephemeral GX context; render Data Docs to ``docs_dir``
    (a local site) when given. Returns the outcome of every expectation and the docs index path."""
    import great_expectations as gx
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
        run = definition.run(batch_parameters={"dataframe": b.frame}, result_format=fmt)
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


def daily_expectations(dataset: str, columns: Iterable[str] | None = None) -> list[tuple[str, object]]:
    """The (check, GX expectation) pairs of ``dataset``'s suite (only on columns the frame has)."""
    import great_expectations.expectations as gxe

    rules = RULES[DATASET_KIND[dataset]]
    have = set(columns if columns is not None else _columns(dataset))
    out: list[tuple[str, object]] = []
    for c in (*ENVELOPE, *rules.get("required", ())):
        if c in have:
            out.append((REQUIRED, gxe.ExpectColumnValuesToNotBeNull(column=c)))
    keys = [k for k in DATASET_KEYS[dataset] if k in have]
    out.append((KEYS, gxe.ExpectCompoundColumnsToBeUnique(column_list=[DAY, *keys])))

    def between(c: str, lo=None, hi=None, strict_min=False) -> None:
        if c in have:
            out.append((DOMAIN, gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi,
                                                                  strict_min=strict_min)))

    between("schema_version", 1, CURRENT_SCHEMA_VERSION)
    for c in rules.get("price", ()):
        between(c, 0, strict_min=True)
    for c in rules.get("quantity_positive", ()):
        between(c, 0, strict_min=True)
    for c in (*rules.get("quantity", ()), *rules.get("nonnegative", ())):
        between(c, 0)
    for c in rules.get("unit_interval", ()):
        between(c, 0, 1)
    for c, allowed in rules.get("enum", {}).items():
        if c in have:
            out.append((DOMAIN, gxe.ExpectColumnValuesToBeInSet(column=c, value_set=list(allowed))))
    pairs = []
    if rules.get("quote"):
        pairs.append(tuple(reversed(rules["quote"])))          # ask >= bid
    if rules.get("bar"):
        pairs += [("high", "low")]
    for a, b in pairs:
        if a in have and b in have:
            out.append((DOMAIN, gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=a, column_B=b, or_equal=True, ignore_row_if="either_value_is_missing")))
    return out


def _frame(store, dataset: str, days: list[str]) -> pd.DataFrame:
    tables = []
    for d in days:
        t = store.read(d, dataset)
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
                  docs_dir: Path | None = None) -> dict[str, dict[str, DailyOutcome]]:
    """``{dataset: {day: DailyOutcome}}``: each dataset's days read once and validated as one GX batch.

    A day without rows passes ("no rows"). ``failing_rows`` counts failing (row, expectation) pairs."""
    days = sorted({str(d) for d in days})
    batches, frames = [], {}
    for ds in datasets or DAILY_DATASETS:
        if ds not in DATASET_KIND:
            raise ValueError(f"unknown dataset {ds!r}; datasets: {', '.join(DAILY_DATASETS)}")
        frames[ds] = frame = _frame(store, ds, days)
        if len(frame):
            batches.append(GXBatch(f"daily_{ds}", frame, daily_expectations(ds, frame.columns), (DAY,), True))
    outcomes, _ = run_gx(batches, docs_dir) if batches else ([], None)
    out: dict[str, dict[str, DailyOutcome]] = {}
    for ds, frame in frames.items():
        mine = [o for o in outcomes if o.batch == f"daily_{ds}"]
        present = set(frame[DAY].unique()) if len(frame) else set()
        out[ds] = {d: _day_outcome(d, mine) if d in present else _no_rows(d) for d in days}
    return out


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
