"""Shared CLI plumbing: the state object, parameter types and error → exit-code mapping.

Exit codes: 0 ok; 1 the command ran and found a problem; 2 bad input or usage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property

import click

from mia_pipeline.layout import Layout, LayoutError, parse_day
from mia_pipeline.settings import Settings, SettingsError, load_settings
from mia_pipeline.storage import PartitionStore

EXIT_PROBLEM = 1
EXIT_USAGE = 2

# Errors that mean "the input was wrong": reported with exit code 2.
INPUT_ERRORS: tuple[type[Exception], ...] = (LayoutError, SettingsError)


@dataclass
class CliState:
    data_dir: str | None = None
    config: str | None = None

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config, data_dir=self.data_dir)

    @property
    def layout(self) -> Layout:
        return Layout(self.settings.data_dir)

    @property
    def store(self) -> PartitionStore:
        return PartitionStore(self.layout, compression=self.settings.compression)


pass_state = click.make_pass_decorator(CliState, ensure=True)


class DayType(click.ParamType):
    """A ``YYYY-MM-DD`` day; anything else is a usage error (exit 2)."""

    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx) -> date:
        if isinstance(value, date):
            return value
        try:
            return parse_day(value)
        except LayoutError as exc:
            self.fail(str(exc), param, ctx)


DAY = DayType()


class MiaGroup(click.Group):
    """A click group that turns input errors raised deep in the library into exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except INPUT_ERRORS as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
