"""Entry point of the ``mia`` command.

Subcommands are named here by ``"module:attribute"`` and imported only when used (``MiaGroup``), so
``mia status`` never loads the Dagster or synthetic-data code and ``mia --help`` stays quick.
"""

from __future__ import annotations

import atexit
import os
import sys

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
    "move-partitions": "mia_pipeline.cli.lifecycle_store:move_partitions",
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


def _exit_without_teardown(code: list) -> None:
    """The last exit hook: flush the standard streams and end the process with the command's exit code,
    skipping the interpreter's teardown. That teardown frees every object still alive one by one, with
    garbage collections over Dagster's definitions, pydantic schemas and pandas (~260,000 objects): ~0.45 s
    after every command that recorded in Dagster. Nothing of a command's work depends on it: the command
    has closed and fsynced what it wrote, the exit hooks registered after this one have run (Python runs
    them last-registered first), and non-daemon threads were joined before any of them."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a closed or broken stream (a pipe closed by `head`): nothing to flush
            pass
    os._exit(code[0])


def main() -> None:
    # Arrow's jemalloc pool hands freed memory back sooner than its default: importing a day of ticks
    # peaks ~30 % lower (benchmarks/bench_ticks.py). Before pyarrow is imported; a setting given wins.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    code = [1]  # an exit other than through click's SystemExit (none expected) is a failure
    atexit.register(_exit_without_teardown, code)  # registered first: it runs after every other exit hook
    try:
        cli(prog_name="mia")
    except SystemExit as exc:
        # Python prints a message code itself before the exit hooks run; its status is then 1
        code[0] = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        raise


if __name__ == "__main__":
    main()
