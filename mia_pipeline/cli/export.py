"""`mia export`: ML dataset files for outside tools (the guide's ``export_ml_data.py``, same flags).

    mia export --format csv --period last_month          features/labels CSV + metadata + statistics
    mia export --format parquet --compression snappy     every day present in the store
    mia export --format json --include-metadata
    mia export --quick                                   features + labels only (Parquet, snappy)
    mia export --full --validate                         + splits; validated first, nothing written on failure
    mia export --custom --config export_config.json      settings from a JSON file (see ExportConfig)

Exit codes: 2 for bad flags, periods and config files (the message names the key); 1 when the window
cannot make a dataset (no signals, trades without exits, ...) or the dataset fails validation.
Nothing is written in either case. Heavy libraries are imported inside the command (see cli/common.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from mia_pipeline.cli.common import EXIT_PROBLEM, CliState, human_bytes, pass_state

FORMATS = ("csv", "parquet", "json")           # mia_pipeline.ml.export.FORMATS (not imported: pandas)
COMPRESSIONS = ("snappy", "zstd", "gzip")


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}; nothing was exported", err=True)
    raise SystemExit(EXIT_PROBLEM)


def _load_config(path: str, base):
    from mia_pipeline.ml.export import ExportConfig, ExportConfigError
    from mia_pipeline.small_files import NotASmallFile, read_small_text, strict_json

    try:
        data = strict_json(read_small_text(path, 1 << 20, "an export config is a JSON object"))
    except NotASmallFile as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{path} is not valid JSON ({exc}); expected an object such as "
                                 '{"format": "csv", "include_splits": true}', param_hint="--config") from None
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--config") from None
    try:
        return ExportConfig.from_dict(data, base=base)
    except ExportConfigError as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--config") from None


def _window(state: CliState, period: str | None):
    """(start, end, tag) of ``period``; without one, every day present in the store."""
    from mia_pipeline.ml.export import parse_period, period_tag

    if period is not None:
        try:
            return parse_period(period)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--period") from None
    days = state.store.days_present()
    if not days:
        _fail(f"no days under {state.layout.store.url + '/daily' if state.layout.store else state.layout.daily_dir}: collect, import or simulate some first, or give --period")
    from datetime import date

    start, end = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    return start, end, period_tag(start, end)


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="File format (default parquet).")
@click.option("--period", metavar="last_month|YYYY-MM|START:END",
              help="Window to export: the previous calendar month, a month, or days START:END (inclusive). "
                   "Default: every day present.")
@click.option("--compression", type=click.Choice(COMPRESSIONS),
              help="Parquet codec (default snappy); CSV and JSON take gzip (.csv.gz, .jsonl.gz).")
@click.option("--include-metadata", is_flag=True, help="Write metadata_<tag>.json (on by default except --quick).")
@click.option("--quick", is_flag=True, help="Features and labels only: no metadata, statistics or splits.")
@click.option("--full", is_flag=True, help="Everything: features, labels, splits, metadata, statistics.")
@click.option("--validate", is_flag=True, help="Validate the dataset first; on failure print why, write nothing, exit 1.")
@click.option("--custom", is_flag=True, help="Take the settings from --config FILE.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="JSON export settings for --custom (keys of ExportConfig; `ml` and `split` sections).")
@click.option("--output", type=click.Path(file_okay=False),
              help="Folder for the files (default <data root>/processed/ml_ready/exports).")
@pass_state
def export(state: CliState, fmt, period, compression, include_metadata, quick, full, validate, custom,
           config_file, output) -> None:
    """Export features, labels (and splits, metadata, statistics) of a window for ML tools.

    Files are named by period: features_dataset_202506.csv, labels_dataset_202506.csv,
    splits_202506.csv, metadata_202506.json, statistics_202506.json. They are written as a set
    (all or none) and replace any earlier export of the same period in that folder."""
    chosen = [name for name, on in (("--quick", quick), ("--full", full), ("--custom", custom)) if on]
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} exclude each other: choose one preset")
    if custom and not config_file:
        raise click.UsageError("--custom needs --config FILE, e.g. mia export --custom --config export_config.json")
    if config_file and not custom:
        raise click.UsageError("--config FILE goes with --custom, e.g. mia export --custom --config export_config.json")

    from dataclasses import replace

    from mia_pipeline.ml import DatasetError
    from mia_pipeline.ml.bundle import build_bundle
    from mia_pipeline.ml.export import (
        PRESETS,
        ExportConfigError,
        ExportValidationError,
        export_dataset,
        validate_for_export,
    )

    cfg = _load_config(config_file, PRESETS["standard"]) if custom else PRESETS["quick" if quick else
                                                                                 "full" if full else "standard"]
    flags = {"format": fmt, "compression": compression, "include_metadata": include_metadata or None,
             "validate": validate or None}
    try:
        cfg = replace(cfg, **{k: v for k, v in flags.items() if v is not None})
    except ExportConfigError as exc:
        raise click.UsageError(str(exc)) from None
    start, end, tag = _window(state, period or cfg.period)
    out_dir = Path(output or cfg.output_dir or state.layout.ml_ready_dir / "exports")
    if out_dir.exists() and not out_dir.is_dir():
        raise click.BadParameter(f"{out_dir} is a file; give a folder", param_hint="--output")

    try:
        bundle = build_bundle(state.store, start, end, cfg.ml_config, cfg.split_config)
    except DatasetError as exc:
        _fail(str(exc))
    try:
        rows = {kind: len(frame) for kind, frame in cfg.select(bundle).items()}
    except ExportConfigError as exc:
        raise click.UsageError(str(exc)) from None
    report = None
    if cfg.validate:
        try:
            report = validate_for_export(bundle, state.store)
        except ExportValidationError as exc:
            click.echo(exc.report.to_text())
            _fail(f"the dataset of {start}..{end} failed validation (report above)")
        except ImportError as exc:
            _fail(f"validation is not available in this install ({exc})")
        click.echo(report.to_text())
    paths = export_dataset(bundle, out_dir, cfg, tag=tag, store=state.store, validation=report)
    for path in paths:
        kind = path.name.split(f"_{tag}.")[0]
        count = f"{rows[kind]:,} rows, " if kind in rows else ""
        click.echo(f"wrote {path} ({count}{human_bytes(path.stat().st_size)})")
    click.echo(f"exported {len(bundle.features):,} decisions of {start}..{end} as {cfg.format} "
               f"({len(paths)} files, tag {tag}) to {out_dir}")
