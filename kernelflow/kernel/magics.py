"""The ``%%task`` cell magic and the ``%kf`` line magic.

Flags are parsed with IPython's :mod:`~IPython.core.magic_arguments`, so
``%%task?`` shows the help, and an unknown flag or a bad value is a
``UsageError`` that ends with the usage line. Everything else lives in the
modules these magics call; each ``%kf`` listing is rendered by one function of
:mod:`kernelflow.kernel.views`, so the widgets can replace it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from kernelflow.kernel.options import CellOptions

if TYPE_CHECKING:
    from kernelflow.kernel.execute import CellRunner
    from kernelflow.kernel.session import NotebookSession

__all__ = ["KernelflowMagics"]


def _positive_duration(text: str) -> float:
    """Seconds > 0 (at most 100 years) in ``90``, ``30s``, ``5m``, ``2h``, ``1d``, ``1h30m``...

    The parser is :func:`kernelflow._durations.parse_duration`, the one shared
    with the CLI and ``kernelflow.yaml``; this adds argparse's error type, so a
    bad flag value is a ``UsageError`` naming the flag.
    """
    from kernelflow._durations import MAX_SECONDS
    from kernelflow._durations import parse_duration as parse

    try:
        seconds = parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).rstrip(".")) from None
    # The task would refuse more than 100 years too, but naming its own option
    # (timeout_seconds); here the error is a UsageError naming the flag.
    if not 0 < seconds <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration > 0 (at most 100 years); write e.g. 30s or 5m"
        )
    return seconds


def _whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def _seconds(text: str) -> float:
    try:
        return _positive_duration(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds > 0 (at most 100 years; e.g. 10, 2.5, 30s, 5m)"
        ) from None


def _delay(text: str) -> float:
    from kernelflow._durations import parse_duration as parse

    try:
        if parse(text) == 0:  # no delay: 0, 0.0, 0s ...
            return 0.0
    except ValueError:
        pass
    return _seconds(text)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} lists no names; write e.g. a,b")
    return names


_KF_USAGE = (
    "%kf runs [N] | cache | cache clear [NAME] | sql SELECT ... | why NAME | stale | rerun"
    " | info NAME | graph | deploy --name NAME (--cron EXPR | --interval S) [-p K=V ...]"
)


@magics_class
class KernelflowMagics(Magics):
    """kernelflow's magics for one shell.

    The machinery behind them (:class:`~kernelflow.kernel.execute.CellRunner`)
    is imported on the first ``%%task`` or ``%kf``, which keeps
    ``%load_ext kernelflow`` fast.

    Attributes
    ----------
    session
        The notebook session.
    cell_id
        The id of the cell now running, when the front end sends one.
    """

    def __init__(self, shell: Any, session: NotebookSession) -> None:
        super().__init__(shell)
        self.session = session
        self.cell_id: str | None = None
        self._runner: CellRunner | None = None

    @property
    def runner(self) -> CellRunner:
        """The shell's cell runner (made on first use)."""
        if self._runner is None:
            from kernelflow.kernel.execute import CellRunner

            self._runner = CellRunner(self.shell, self.session)
        return self._runner

    def pre_run_cell(self, info: Any) -> None:
        """IPython event: remember the id and number (``In [n]``) of the cell about to run."""
        from kernelflow.kernel.prepare import note_cell_number
        from kernelflow.widgets._cells import cell_number

        self.cell_id = getattr(info, "cell_id", None)
        note_cell_number(self.shell, cell_number(self.shell, info))

    def close(self) -> None:
        """Undo what the runner set up (``%unload_ext``)."""
        if self._runner is not None:
            self._runner.close()

    @magic_arguments()
    @argument(
        "name",
        nargs="?",
        default=None,
        help="The task name (default: the cell's first output, e.g. df).",
    )
    @argument(
        "--retries",
        type=_whole_number,
        default=0,
        metavar="N",
        help="Run the cell again up to N times when it fails.",
    )
    @argument(
        "--retry-delay",
        type=_delay,
        default=0.0,
        metavar="S",
        help="Seconds to wait before each retry.",
    )
    @argument(
        "--timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="Fail the cell (TimedOut) when a try runs longer than S seconds.",
    )
    @argument(
        "--no-cache",
        action="store_true",
        help="Always run; neither look up nor store a cached result.",
    )
    @argument(
        "--expire",
        type=_positive_duration,
        default=None,
        metavar="DURATION",
        help="Stop using the cached result after DURATION (e.g. 30m, 2h, 1d).",
    )
    @argument(
        "--refresh",
        action="store_true",
        help="Run now even if cached, and replace the cached result.",
    )
    @argument(
        "--tags",
        type=_names,
        default=(),
        metavar="a,b",
        help="Tags of the task run (also select task concurrency limits).",
    )
    @argument(
        "--exclude",
        type=_names,
        default=(),
        metavar="x,y",
        help="Inputs left out of the cache key (e.g. a connection).",
    )
    @argument(
        "--reads",
        type=_names,
        default=(),
        metavar="PATH[,PATH]",
        help="Files the cell reads, keyed on their content (literal paths passed to "
        "open, pandas.read_*, numpy.load ... are found without it).",
    )
    @argument(
        "--concurrency",
        default=None,
        metavar="KEY",
        help="Hold a slot of the global concurrency limit KEY while running.",
    )
    @argument(
        "--verbose",
        "-v",
        action="store_true",
        help="Print the cell's inputs and outputs, and the engine's log lines.",
    )
    @cell_magic
    def task(self, line: str, cell: str) -> Any:
        """Run the cell as a kernelflow task: recorded, retried, timed out, cached.

        The cell runs in the notebook's namespace as a normal cell would. Its
        inputs (names it reads that exist before it runs) and outputs (names it
        assigns) are found from its code. Unless --no-cache, a cell whose code,
        input values, helper functions, user modules and files read are
        unchanged restores its outputs (and the inputs it changed in place)
        and replays its printed and displayed output instead of running;
        `%kf why NAME` says why it did not.
        """
        args = _parse(self.task, line)
        options = CellOptions(
            name=args.name,
            retries=args.retries,
            retry_delay=args.retry_delay,
            timeout=args.timeout,
            cache=not args.no_cache,
            expire=args.expire,
            refresh=args.refresh,
            tags=tuple(args.tags),
            exclude=tuple(args.exclude),
            reads=tuple(args.reads),
            concurrency=args.concurrency,
            verbose=args.verbose,
        )
        return self.runner.run(line, cell, options, cell_id=self.cell_id)

    @line_magic
    def kf(self, line: str) -> Any:
        """Inspect kernelflow from the notebook.

        Usage: %kf runs [N] | cache | cache clear [NAME] | sql SELECT ... |
        why NAME | stale | rerun | info NAME

        runs          this notebook's recent task runs (newest first)
        cache         cache entries: task, key, size, created, hits, expires
        cache clear   remove cache entries (all, or those of task NAME)
        sql           run a read-only SQL query on the store; returns a DataFrame
        why NAME      what changed since the last cached run of cell NAME
        stale         %%task cells whose inputs were re-made differently, in order
        rerun         run the stale cells again, in dependency order
        info NAME     a cell's inputs, outputs, state and cache key
        graph         the %%task cells as a lineage graph, stale cells marked
        deploy        deploy this (saved) notebook on a schedule, as `kernelflow deploy`
        """
        from kernelflow.kernel import commands

        command, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        handlers = {
            "runs": commands.runs,
            "cache": commands.cache,
            "sql": commands.sql,
            "why": commands.why,
            "stale": commands.stale,
            "rerun": commands.rerun,
            "info": commands.info,
            "graph": commands.graph,
            "deploy": _kf_deploy,
        }
        handler = handlers.get(command)
        if handler is None:
            what = f"unknown command {command!r}" if command else "a command is needed"
            raise UsageError(f"%kf: {what}.\nusage: {_KF_USAGE}")
        return handler(self.runner, rest)


def _kf_deploy(runner: Any, rest: str) -> Any:
    from kernelflow.deployments.from_code import kf_deploy

    return kf_deploy(runner, rest)


_parsed: dict[str, argparse.Namespace] = {}


def _parse(magic: Any, line: str) -> argparse.Namespace:
    """Parse a ``%%task`` line (memoized: a cell is usually re-run with the same line)."""
    found = _parsed.get(line)
    if found is not None:
        return argparse.Namespace(**vars(found))
    try:
        parsed = parse_argstring(magic, line)
    except (UsageError, ValueError) as exc:  # ValueError: unbalanced quotes
        raise UsageError(f"%%task: {_printable(str(exc))}\n{task_usage(magic)}") from None
    if len(_parsed) > 256:
        _parsed.clear()
    _parsed[line] = parsed
    return argparse.Namespace(**vars(parsed))


def _printable(text: str) -> str:
    """``text`` on one line: argparse quotes what was typed raw, form feeds and all."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def task_usage(magic: Any) -> str:
    """The one-line usage of ``%%task`` (IPython formats it as reST for the help)."""
    text = magic.parser.format_usage().replace("::", "").strip()
    text = " ".join(text.split())
    return "usage: %" + text if text.startswith("%") else "usage: " + text
