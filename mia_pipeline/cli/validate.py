"""`mia validate`: Great Expectations checks of an ML dataset (``--dataset PATH``) or of the daily
partitions of a day (``--day``).

Exit codes: 0 every check ran and passed; 1 a check failed (``validation FAILED``, the report names
it) or could not run (``validation UNVERIFIED: <checks> could not run: <why>`` -- e.g. the data root
lacks the dataset's source days); 2 the path is not a dataset, the config is not valid JSON or has
unknown keys, or the arguments are wrong.
GX, pandas and the library are imported inside the command (see cli/common.py): GX alone takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from mia_pipeline.cli.common import DAY, EXIT_PROBLEM, EXIT_USAGE, CliState, pass_state
from mia_pipeline.layout import DATASETS

CLI_RUN = "mia validate (no Dagster run)"


@click.command("validate")
@click.option("--dataset", "dataset", type=click.Path(), help="ML dataset folder (or its features_dataset.parquet).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="validation.json: thresholds (max_missing_rate, max_abs_correlation, leak_auc, ...).")
@click.option("--docs/--no-docs", default=True, show_default=True,
              help="Render GX Data Docs to <data root>/reports/gx/.")
@click.option("--day", type=DAY, help="Validate the daily partitions of this day instead of a dataset.")
@click.option("--dataset-name", "dataset_name", type=click.Choice(DATASETS), multiple=True,
              help="With --day: only this daily dataset (repeatable; default all six).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
def validate(state: CliState, dataset, config_path, docs: bool, day, dataset_name, as_json: bool) -> None:
    """Validate an ML dataset (file checksums, completeness, label balance, correlation, leakage, splits,
    and every column rebuilt from the data root's source days) or a day's partitions (required fields,
    unique keys, value domains). Exit 1 when a check fails or could not run (UNVERIFIED)."""
    if bool(dataset) == bool(day):
        raise click.UsageError("give either --dataset PATH (an ML dataset) or --day YYYY-MM-DD (daily partitions)")
    if dataset_name and not day:
        raise click.BadParameter("--dataset-name only goes with --day", param_hint="--dataset-name")
    if day:
        _validate_day(state, day.isoformat(), list(dataset_name) or None, docs, as_json)
    else:
        _validate_dataset(state, dataset, config_path, docs, as_json)


def _usage(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(EXIT_USAGE)


def _validate_dataset(state: CliState, path: str, config_path: str | None, docs: bool, as_json: bool) -> None:
    from mia_pipeline.ml.bundle import read_bundle
    from mia_pipeline.ml.errors import DatasetError
    from mia_pipeline.ml.validation import ValidationConfig, validate_dataset

    try:
        config = ValidationConfig.from_file(config_path) if config_path else ValidationConfig()
        bundle = read_bundle(path, lenient_metadata=True)   # no dataset.json: checked, UNVERIFIED
    except DatasetError as exc:
        _usage(f"{exc}")
    if len(bundle.features) == 0:
        click.echo(f"validation UNVERIFIED: {path} holds no rows: nothing was validated", err=True)
        raise SystemExit(EXIT_PROBLEM)
    # Data Docs need the data root (exit 2 with how to create it); the lineage, column, point-in-time
    # and label checks rebuild from its partitions, and are UNVERIFIED without them.
    docs_dir = state.layout.reports_dir / "gx" if docs else None
    store = state.store if Path(state.settings.data_dir).is_dir() else None
    try:
        report = validate_dataset(bundle, config, docs_dir, store=store, run_name=CLI_RUN)
    except DatasetError as exc:   # e.g. the sources cannot be re-read for the point-in-time check
        click.echo(f"validation UNVERIFIED: {exc}", err=True)
        raise SystemExit(EXIT_PROBLEM) from None
    except Exception as exc:      # noqa: BLE001 -- no traceback for any dataset, however it was damaged
        click.echo(f"validation UNVERIFIED: the validator could not run on this dataset "
                   f"({type(exc).__name__}: {exc})", err=True)
        raise SystemExit(EXIT_PROBLEM) from None
    if store is not None and isinstance(bundle.metadata.get("window"), dict):
        from mia_pipeline.quality import validation_log

        validation_log.record_dataset(state.layout, report, bundle.metadata["window"]["start"], CLI_RUN)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.to_text())
    if not report.success:
        raise SystemExit(EXIT_PROBLEM)


def _nothing_to_validate(store, day: str) -> str | None:
    """Why the day cannot be validated (its manifest lost or damaged, nothing stored), or None."""
    from mia_pipeline.storage import StorageError

    try:
        if orphans := store.orphan_files(day):
            return (f"its manifest is lost ({', '.join(orphans)} are there, nothing vouches for them): run `mia "
                    "recover --validate-and-repair`")
        good, damaged = store.readable_manifests(day, day)
    except StorageError as exc:
        return str(exc)
    if day in damaged:
        return f"its manifest is damaged ({damaged[day]}): run `mia recover --validate-and-repair`"
    if not good.get(day, {}).get("datasets"):
        return "nothing is stored for this day (no day folder, no archived rows)"
    return None


def _validate_day(state: CliState, day: str, datasets, docs: bool, as_json: bool) -> None:
    from mia_pipeline.quality.gx import validate_days

    layout = state.layout
    from mia_pipeline.quality import validation_log

    if why := _nothing_to_validate(state.store, day):
        click.echo(f"UNVERIFIED  {day}: {why}; nothing was validated", err=True)
        raise SystemExit(EXIT_PROBLEM)
    out = validate_days(state.store, [day], datasets, layout.reports_dir / "gx" if docs else None, run_name=CLI_RUN)
    if layout.root.is_dir():
        validation_log.record_daily(layout, out, CLI_RUN)
    failed = False
    if as_json:
        click.echo(json.dumps({ds: {"passed": o[day].passed, "failing_rows": o[day].failing_rows,
                                    "detail": o[day].detail} for ds, o in out.items()}, indent=2))
    for ds, per_day in out.items():
        o = per_day[day]
        failed |= not o.passed
        if not as_json:
            click.echo(f"{'PASS' if o.passed else 'FAIL'}  {ds:<12} {o.detail}")
    if not as_json:
        click.echo(f"{day}: {'all daily suites passed' if not failed else 'validation FAILED'}")
    if failed:
        raise SystemExit(EXIT_PROBLEM)
