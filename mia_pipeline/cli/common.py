"""Shared CLI plumbing: the state object, the lazy command group, parameter types and error → exit code.

Exit codes: 0 ok; 1 the command ran and found a problem; 2 bad input or usage.

Import cost matters here: ``mia --help`` imports this module and every command module, so nothing at
their top level may import pandas, pyarrow, numpy, duckdb, dagster, pydantic or the library packages
that pull them in (``mia_pipeline.settings``, ``storage``, ``synthetic``, ``collection``, ...).
Import those inside the command functions; ``test_cli_imports.py`` guards this.
"""

from __future__ import annotations

import errno
import importlib
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING

import click

from mia_pipeline.layout import Layout, LayoutError, parse_day

if TYPE_CHECKING:
    from mia_pipeline.settings import Settings
    from mia_pipeline.storage import PartitionStore

EXIT_PROBLEM = 1
EXIT_USAGE = 2

# Commands allowed to create a missing data root (by their path below `mia`); every other command
# that touches the data root needs it to exist (MissingDataRoot, exit 2). A path rather than a
# decorator because some of these commands live in modules this list must not depend on.
CREATES_DATA_ROOT = frozenset({"init", "demo", "generate", "simulate", "import", "collect start", "materialize"})


def input_errors() -> tuple[type[Exception], ...]:
    """Errors that mean "the input was wrong": reported with exit code 2.

    A function, not a constant: ``mia_pipeline.settings`` imports pydantic, too slow for ``--help``.
    """
    from mia_pipeline.lifecycle.blobstore import TargetSetupError
    from mia_pipeline.settings import SettingsError

    return (LayoutError, SettingsError, TargetSetupError)


def problem_errors() -> tuple[type[Exception], ...]:
    """Errors that mean "the command ran and found a problem" (exit 1): a damaged state file, a
    damaged manifest or partition file."""
    from mia_pipeline.collection.landing import StateFileError
    from mia_pipeline.storage import StorageError
    from mia_pipeline.storage.pagecheck import DamagedFile

    return (StateFileError, StorageError, DamagedFile)


# A write the machine refused: the disk (or quota) is full, the file system is read-only, or the data
# folder is not writable. Atomic writes leave the previous state; the message says what to fix.
STORAGE_ERRNOS = {
    errno.ENOSPC: "the disk is full; free some space",
    errno.EDQUOT: "the disk quota is exhausted; free some space",
    errno.EROFS: "the file system is read-only; remount it read-write or point --data-dir elsewhere",
    errno.EACCES: "permission denied; make the data folder writable by this user",
}


def storage_error_message(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return (f"Error: cannot write{where}: {os.strerror(exc.errno)} — {STORAGE_ERRNOS[exc.errno]}, then run the "
            "command again (nothing was half-written; the previous state is kept)")


def process_seconds() -> float:
    """Wall time since this process started (interpreter start-up and imports included): what a user
    timing the command sees."""
    import time

    import psutil

    return time.time() - psutil.Process().create_time()


class MissingDataRoot(click.ClickException):
    """The data root does not exist (or is not a folder) and the command only reads it."""

    exit_code = EXIT_USAGE


def require_data_root(layout: Layout) -> Layout:
    root = layout.root
    if root.is_dir():
        return layout
    if root.exists():
        raise MissingDataRoot(f"data folder {root} is not a folder; point --data-dir or MIA_DATA_DIR at a data root")
    raise MissingDataRoot(
        f"data folder {root} does not exist. Create it with `mia --data-dir {shlex.quote(str(root))} init`, "
        "or point --data-dir or MIA_DATA_DIR at an existing data root.")


def command_path(ctx: click.Context) -> str:
    """The running command below the root group, e.g. ``"collect start"``; the command itself if it is
    the root (a command invoked on its own)."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.command.name or "")
        ctx = ctx.parent
    return " ".join(reversed(names)) if names else (ctx.command.name or "")


@dataclass
class CliState:
    data_dir: str | None = None
    config: str | None = None

    @cached_property
    def settings(self) -> Settings:
        from mia_pipeline.settings import load_settings

        return load_settings(self.config, data_dir=self.data_dir)

    @property
    def layout(self) -> Layout:
        """The data root's layout. Raises :class:`MissingDataRoot` when the root does not exist and
        the running command is not one of :data:`CREATES_DATA_ROOT`."""
        layout = self.settings.layout
        ctx = click.get_current_context(silent=True)
        if ctx is None or command_path(ctx) not in CREATES_DATA_ROOT:
            require_data_root(layout)
        return layout

    @property
    def store(self) -> PartitionStore:
        from mia_pipeline.storage import partition_store

        return partition_store(self.layout, compression=self.settings.compression)


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

# Days an event or a session may fall on: the collector quarantines timestamps outside 1970-2100
# (out_of_range), and a session needs its neighbouring days to exist as dates.
FIRST_DAY = date(1970, 1, 2)
LAST_DAY = date(2099, 12, 30)
SEED = click.IntRange(min=0)  # numpy seeds are non-negative integers


def check_day_range(day: date, param_hint: str, what: str = "the first day") -> None:
    """Exit 2 (BadParameter) when ``day`` is outside :data:`FIRST_DAY`..:data:`LAST_DAY`."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise click.BadParameter(f"{what} is {day}; days from {FIRST_DAY} to {LAST_DAY} are supported "
                                 "(timestamps outside 1970-2100 are quarantined)", param_hint=param_hint)


class LazyChoice(click.Choice):
    """A ``click.Choice`` whose choices come from ``load()`` on first use, for vocabularies that live
    in slow-to-import packages. Give the option a ``metavar``: otherwise ``--help`` lists the
    choices and pays for the import."""

    def __init__(self, load: Callable[[], Sequence[str]], case_sensitive: bool = True) -> None:
        self._load = load
        self.case_sensitive = case_sensitive

    @cached_property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._load())


ARGV_KEY = "mia/argv"


def command_line() -> str:
    """The running command as typed (``mia collect start --once``), from the arguments `mia` parsed."""
    ctx = click.get_current_context(silent=True)
    args = ctx.meta.get(ARGV_KEY) if ctx is not None else None
    return "mia " + (shlex.join(args) if args is not None else "")


class MiaGroup(click.Group):
    """The ``mia`` group: loads a subcommand's module only when that subcommand is used (``lazy``
    maps a name to ``"module:attribute"``) and turns input errors raised deep in the library into
    exit code 2, and storage refusals (disk full, read-only, permission) and damaged state files into
    a one-line message and exit code 1."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attr = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[ARGV_KEY] = list(args)  # the command as typed, for the records it leaves (command_line())
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click reports these itself (and --help must not pay for importing the settings)
        except OSError as exc:
            from mia_pipeline.storage.objects import ObjectStoreError

            if isinstance(exc, (ObjectStoreError, *problem_errors())):  # the object store cannot be used now,
                # or a stored file does not match its manifest
                click.echo(f"Error: {exc}", err=True)
                ctx.exit(EXIT_PROBLEM)
            if exc.errno not in STORAGE_ERRNOS:
                raise
            click.echo(storage_error_message(exc), err=True)
            ctx.exit(EXIT_PROBLEM)
        except Exception as exc:
            if isinstance(exc, problem_errors()):
                click.echo(f"Error: {exc}", err=True)
                ctx.exit(EXIT_PROBLEM)
            if not isinstance(exc, input_errors()):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)


def stdout_console():
    """A rich Console on stdout: colour and terminal width on a terminal; otherwise plain text, 120
    columns wide, so piped output and tests get whole lines and no escape codes."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=120)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
