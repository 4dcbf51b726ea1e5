"""`mia report ...`: reports computed from the data (more arrive with the reports capability)."""

import click

from mia_pipeline.cli.generate import realism_report


@click.group("report")
def report() -> None:
    """Reports: `mia report realism` (stylized facts of synthetic sessions)."""


report.add_command(realism_report)
