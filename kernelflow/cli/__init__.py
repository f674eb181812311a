"""The ``kernelflow`` command line: look at recorded runs, query the store, manage the cache.

``kernelflow --help`` lists the commands. Each command group lives in its own
module of this package; :data:`COMMAND_MODULES` names them and :func:`_register`
adds each module's ``command`` to :func:`main`.

Errors are handled in ONE place, :meth:`KernelflowGroup.invoke`: any
:class:`~kernelflow.errors.KernelflowError` raised by a command becomes a single
line ``Error: <message>`` on standard error, exit code 1 (2 for a
:class:`~kernelflow.errors.ConfigurationError`, which is bad input). Usage
errors (a bad option value, a missing argument) are shortened to one line too,
exit code 2. Commands therefore never catch our errors themselves. Anything
else is a bug in kernelflow and keeps its traceback, so it can be reported.

Imports of heavy libraries (pandas, DuckDB) happen inside the commands, so
``kernelflow --help`` answers at once.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any

import click

from kernelflow._version import __version__
from kernelflow.errors import ConfigurationError, KernelflowError

__all__ = ["COMMAND_MODULES", "KernelflowGroup", "OneLineUsageError", "main"]

#: Modules of ``kernelflow.cli`` that each define ``command`` (a click group or
#: command). To add a command group, write ``kernelflow/cli/<name>.py`` with a
#: module-level ``command = click.Group("<name>", ...)`` and add its module name
#: here (e.g. ``"deployments"`` for ``kernelflow/cli/deployments.py``). It then raises
#: our errors freely: :meth:`KernelflowGroup.invoke` prints them as one line.
COMMAND_MODULES: list[str] = [
    "runs",
    "sql",
    "cache",
    "concurrency",
    "gcl",
    "deployments",
    "store",
    "flow_run",
]


class OneLineUsageError(click.UsageError):
    """A usage error shown as one line, ``Error: <message> (see '<cmd> --help')``."""

    def show(self, file: Any = None) -> None:
        """Print the one-line message to standard error (``file`` when given)."""
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"Error: {self.format_message()}{hint}", file=file, err=file is None)


class KernelflowGroup(click.Group):
    """The top-level group: the one place where errors are turned into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the chosen subcommand; translate kernelflow and usage errors.

        Sub-command arguments are parsed inside this call (click parses them
        when the group invokes its subcommand), so their usage errors arrive
        here as well.
        """
        with _StoreWarnings() as warnings:
            try:
                return super().invoke(ctx)
            except ConfigurationError as exc:
                # Bad input (an option or a KERNELFLOW_* setting): exit 2, no --help
                # hint, since the message itself says what to change.
                warnings.drop_repeats_of(exc)
                raise OneLineUsageError(_one_line(exc)) from None
            except KernelflowError as exc:
                warnings.drop_repeats_of(exc)
                raise click.ClickException(_one_line(exc)) from None
            except click.exceptions.NoArgsIsHelpError:
                raise  # a bare ``kernelflow runs`` prints the group's help, as click intends
            except OneLineUsageError:
                raise
            except click.UsageError as exc:
                raise OneLineUsageError(exc.format_message(), exc.ctx or ctx) from None
            # Anything else is a bug in kernelflow: its traceback stays, so it can be
            # reported. (DuckDB's errors arrive as QueryError/StoreError, handled above.)


class _StoreWarnings(logging.Handler):
    """Holds the store's warnings during a command and prints them after it, one line each.

    A query first folds pending journals into the database and only logs a
    warning when that fails, then opens the database itself. When the open
    fails for the same reason, the command's error already says it all, so a
    warning that repeats the error is dropped and the user reads one line.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self._logger = logging.getLogger("kernelflow.store")
        self._propagate = self._logger.propagate

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def drop_repeats_of(self, error: BaseException) -> None:
        """Forget the warnings whose message contains ``error``'s message."""
        text = str(error)
        self.records = [r for r in self.records if text not in r.getMessage()]

    def __enter__(self) -> _StoreWarnings:
        self._logger.addHandler(self)
        self._logger.propagate = False  # ours alone, not also the console's
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate
        # A command may run several queries, each warning about the same problem: say it once.
        messages = dict.fromkeys(
            " ".join(r.getMessage().removeprefix("kernelflow: ").split()) for r in self.records
        )
        for message in messages:
            click.echo(f"Warning: {message}", err=True)


def _one_line(exc: BaseException) -> str:
    # Our messages are written as one line; keep that promise even if a
    # wrapped library message slipped a newline in.
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


@click.group(cls=KernelflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="kernelflow")
def main() -> None:
    """kernelflow: look at recorded runs, query the store with SQL, manage the cache.

    The store is KERNELFLOW_HOME (default ~/.kernelflow).
    """


def _register(group: click.Group, module_names: list[str]) -> None:
    for name in module_names:
        module = import_module(f"{__name__}.{name}")
        # A module may define several top-level commands (``commands``).
        for command in getattr(module, "commands", [module.command]):
            group.add_command(command)


_register(main, COMMAND_MODULES)
