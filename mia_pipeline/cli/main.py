"""Entry point of the ``mia`` command."""

from __future__ import annotations

import click

from mia_pipeline.cli.collect import collect, import_, rebuild
from mia_pipeline.cli.common import CliState, MiaGroup
from mia_pipeline.cli.demo import demo
from mia_pipeline.cli.generate import generate
from mia_pipeline.cli.report import report
from mia_pipeline.cli.simulate import simulate
from mia_pipeline.cli.status import check_integrity, init, status


@click.group(cls=MiaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="MIA_DATA_DIR", type=click.Path(file_okay=False),
              help="Data root (default: $MIA_DATA_DIR or ./data).")
@click.option("--config", envvar="MIA_CONFIG", type=click.Path(dir_okay=False),
              help="mia.yaml settings file (default: $MIA_CONFIG or ./mia.yaml if present).")
@click.version_option(package_name="mia-pipeline")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None, config: str | None) -> None:
    """mia — the MIA_IA data pipeline: capture, store, check and replay trading data."""
    ctx.obj = CliState(data_dir=data_dir, config=config)


for command in (init, status, check_integrity, collect, import_, rebuild, simulate, generate, report, demo):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="mia")


if __name__ == "__main__":
    main()
