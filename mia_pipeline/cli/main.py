"""Entry point of the ``mia`` command.

Subcommands are named here by ``"module:attribute"`` and imported only when used (``MiaGroup``), so
``mia status`` never loads the Dagster or synthetic-data code and ``mia --help`` stays quick.
"""

from __future__ import annotations

import os

import click

from mia_pipeline.cli.common import CliState, MiaGroup

COMMANDS = {
    "init": "mia_pipeline.cli.status:init",
    "status": "mia_pipeline.cli.status:status",
    "check-integrity": "mia_pipeline.cli.status:check_integrity",
    "health": "mia_pipeline.cli.health:health",
    "collect": "mia_pipeline.cli.collect:collect",
    "import": "mia_pipeline.cli.collect:import_",
    "rebuild": "mia_pipeline.cli.collect:rebuild",
    "simulate": "mia_pipeline.cli.simulate:simulate",
    "generate": "mia_pipeline.cli.generate:generate",
    "report": "mia_pipeline.cli.report:report",
    "demo": "mia_pipeline.cli.demo:demo",
    "validate": "mia_pipeline.cli.validate:validate",
    "backfill": "mia_pipeline.cli.ibkr:backfill",
    "record": "mia_pipeline.cli.ibkr:record",
    "sources": "mia_pipeline.cli.ibkr:sources",
    "archive": "mia_pipeline.cli.lifecycle_store:archive",
    "cleanup": "mia_pipeline.cli.lifecycle_store:cleanup",
    "optimize": "mia_pipeline.cli.lifecycle_store:optimize",
    "backup": "mia_pipeline.cli.lifecycle_backup:backup",
    "recover": "mia_pipeline.cli.lifecycle_backup:recover",
    "export": "mia_pipeline.cli.export:export",
    "materialize": "mia_pipeline.cli.materialize:materialize",
}


@click.group(cls=MiaGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="MIA_DATA_DIR", type=click.Path(file_okay=False),
              help="Data root (default: $MIA_DATA_DIR or ./data).")
@click.option("--config", envvar="MIA_CONFIG", type=click.Path(dir_okay=False),
              help="mia.yaml settings file (default: $MIA_CONFIG or ./mia.yaml if present).")
@click.version_option(package_name="mia-pipeline")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None, config: str | None) -> None:
    """mia — the MIA_IA data pipeline: capture, store, check and replay trading data."""
    ctx.obj = CliState(data_dir=data_dir, config=config)


def main() -> None:
    # Arrow's jemalloc pool hands freed memory back sooner than its default: importing a day of ticks
    # peaks ~30 % lower (benchmarks/bench_ticks.py). Before pyarrow is imported; a setting given wins.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    cli(prog_name="mia")


if __name__ == "__main__":
    main()
