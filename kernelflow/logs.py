"""Run loggers, the console format, and ``log_prints``.

Log lines look like Prefect's::

    15:42:01.401 | INFO    | Task run 'fetch_data-0' - Finished in state Completed()

Records logged through a run logger (:func:`get_run_logger`, or ``print``
under ``log_prints=True``) are also appended to the store's journal, so they
show in ``kernelflow runs show`` and in the ``logs`` table.

Run loggers are ``kernelflow.runs.flow`` and ``kernelflow.runs.task``;
:func:`disable_run_logger` switches both off, as Prefect's does for
``prefect.flow_runs`` and ``prefect.task_runs``. The public names live in
:mod:`kernelflow.logging` (Prefect's ``prefect.logging``).
"""

from __future__ import annotations

import builtins
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from kernelflow import context
from kernelflow import context as _context
from kernelflow.settings import current

__all__ = [
    "disable_logger",
    "disable_run_logger",
    "enable_print_capture",
    "flow_run_logger",
    "get_logger",
    "get_run_logger",
    "is_own_record",
    "run_logger",
    "set_console_gate",
    "task_run_logger",
]

if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[TextIO]
    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]
else:  # subscriptable at run time only from Python 3.11 on
    _StreamHandler = logging.StreamHandler
    _LoggerAdapter = logging.LoggerAdapter

ROOT = "kernelflow"
#: The ``kernelflow`` logger (loggers live as long as the process: this is the same object).
_root_logger = logging.getLogger(ROOT)
_setup_lock = threading.Lock()
_configured = False


class ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS.mmm | LEVEL   | <who> - message``, where who is the run."""

    #: (whole second, its ``HH:MM:SS``): most lines fall in the same second as the last.
    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        who = getattr(record, "run_label", None) or record.name
        text = self.line(record.created, record.msecs, record.levelname, who, record.getMessage())
        if record.exc_info and record.levelno >= logging.ERROR:
            text += "\n" + self.formatException(record.exc_info)
        return text

    def line(self, created: float, msecs: float, levelname: str, who: str, message: str) -> str:
        """One console line, from a record's fields (also :func:`print_console_only`'s)."""
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime("%H:%M:%S", time.localtime(second)))
        return f"{cached[1]}.{int(msecs):03d} | {levelname:<7} | {who} - {message}"


#: Decides which records the console prints (None: all). Set in a notebook kernel, where
#: run logs go to live views instead (see :func:`set_console_gate`).
_console_gate: Callable[[logging.LogRecord], bool] | None = None
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def set_console_gate(gate: Callable[[logging.LogRecord], bool] | None) -> None:
    """Let ``gate`` decide which log records the console prints (None: print them all).

    A notebook kernel sets one (:mod:`kernelflow.widgets`): run log lines then
    go to the live view showing the run, or make one summary line per flow,
    instead of a stderr line per task run. Scripts keep Prefect's console.
    The journal records every line either way.
    """
    global _console_gate
    _console_gate = gate


def is_own_record(record: logging.LogRecord) -> bool:
    """Whether kernelflow itself logged ``record`` (the engine's lines), not user code.

    Told by where the logging call was made, so it holds whatever the messages say.
    """
    return record.pathname.startswith(_PACKAGE_DIR)


class _StderrHandler(_StreamHandler):
    """Writes to ``sys.stderr`` as it is when each record is emitted.

    Bound once, a plain ``StreamHandler(sys.stderr)`` would keep writing to
    whatever stream was current at configuration (an old pytest capture, a
    finished ``redirect_stderr``) and lose every later line.
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    def filter(self, record: logging.LogRecord) -> bool:
        """Apply the console gate (see :func:`set_console_gate`), then the handler's filters."""
        gate = _console_gate
        if gate is not None:
            try:
                if not gate(record):
                    return False
            except Exception:  # a broken gate must not lose the line: print it
                pass
        return bool(super().filter(record))

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        """Write the line and flush, as ``StreamHandler`` does, looking up the stream once.

        One line per run on the engine's path: ``StreamHandler.flush`` would take the
        handler's lock a second time and read the stream three times more.
        """
        try:
            self.write_line(self.format(record) + self.terminator)
        except RecursionError:  # as StreamHandler: never swallowed
            raise
        except Exception:
            self.handleError(record)

    def write_line(self, text: str) -> None:
        """Write ``text`` to the current ``sys.stderr`` and flush it (raises as the stream)."""
        stream = sys.stderr
        if stream is None:  # pythonw: nowhere to print
            return
        stream.write(text)
        flush = getattr(stream, "flush", None)
        if flush is not None:
            flush()


class JournalHandler(logging.Handler):
    """Appends run log records to the store's journal."""

    def handle(self, record: logging.LogRecord) -> bool:
        """Skip console-only records before the handler's lock: one per run is one."""
        if getattr(record, "journal", True) is False:
            return False
        return bool(super().handle(record))

    def emit(self, record: logging.LogRecord) -> None:
        run_id = getattr(record, "run_id", None)
        if run_id is None or getattr(record, "journal", True) is False:
            return
        try:
            # Quietly: when the journal is full, the error is said once (see
            # record_quietly), not as a traceback for every log line.
            from kernelflow.store.events import log_record
            from kernelflow.store.journal import record_quietly

            record_quietly(
                log_record(
                    run_id=run_id,
                    kind=getattr(record, "run_kind", "task"),
                    level=record.levelno,
                    logger=record.name,
                    message=record.getMessage(),
                    t=record.created,
                )
            )
        except Exception:  # a log line must never break a run
            self.handleError(record)


def print_console_only(logger: logging.Logger, level: int, label: str, message: str) -> bool:
    """Print a line that is never stored (``journal=False``) without making a log record.

    For the engine's one line per run ("Finished in state ..."): making the
    record and passing it down the logger cost more than the rest of a trivial
    task run. Done only while logging is as :func:`configure` left it, from
    ``logger`` up: no console gate, no filter on ``logger``, the standard record
    factory, no handler but ours. Otherwise returns False and prints nothing:
    the caller then logs the record the usual way, so whatever was added
    (a live view, a test's capture, a user's handler) gets it. The caller has
    checked ``logger.isEnabledFor(level)``. The text is what the console
    handler prints for the record (``tests/engine/test_engine_console.py``).
    """
    if (
        _console_gate is not None
        or logger.filters
        or logging.getLogRecordFactory() is not logging.LogRecord
    ):
        return False
    console: Any = None  # our _StderrHandler, once found
    node: logging.Logger | None = logger
    while node is not None:  # the loggers whose handlers would get the record
        for handler in node.handlers:
            kind = type(handler)
            if kind is JournalHandler:
                continue  # it drops console-only records
            if (
                kind is not _StderrHandler
                or console is not None
                or handler.filters
                or type(handler.formatter) is not ConsoleFormatter
            ):
                return False
            console = handler
        node = node.parent if node.propagate else None
    if console is None:
        return False  # no handler at all: logging's last resort prints it
    if level < console.level:
        return True  # the console handler would skip it too
    now = time.time()
    levelname = logging.getLevelName(level)
    text = console.formatter.line(now, (now - int(now)) * 1000, levelname, label, message)
    with console.lock:  # as Handler.handle: lines from threads do not interleave
        try:
            console.write_line(text + console.terminator)
        except RecursionError:  # as StreamHandler: never swallowed
            raise
        except Exception:
            record = {"name": logger.name, "levelno": level, "levelname": levelname}
            console.handleError(logging.makeLogRecord({**record, "msg": message}))
    return True


def _level() -> str:
    """``KERNELFLOW_LOGGING_LEVEL``, checked: a bad value is one line, not a traceback."""
    return current().logging_level


def configure() -> logging.Logger:
    """Install the console and journal handlers on the ``kernelflow`` logger, once."""
    global _configured
    if _configured:  # every run calls this: once configured, no lookup, no lock
        return _root_logger
    logger = logging.getLogger(ROOT)
    with _setup_lock:
        if not _configured:
            logger.setLevel(_level())
            console = _StderrHandler()
            console.setFormatter(ConsoleFormatter())
            logger.addHandler(console)
            logger.addHandler(JournalHandler())
            logger.propagate = False
            _configured = True
    return logger


class RunLogger(_LoggerAdapter):
    """A logger bound to one flow or task run."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        if "extra" in kwargs:
            extra.update(kwargs["extra"])
        kwargs["extra"] = extra
        return msg, kwargs


def run_logger(
    kind: str, run: Any, name: str = "kernelflow.runs", extra: dict[str, Any] | None = None
) -> RunLogger:
    """A logger for ``run`` (a FlowRun or TaskRun) whose records carry its id.

    ``extra`` adds attributes to every record (they cannot replace the run's own).
    """
    label = f"{'Flow' if kind == 'flow' else 'Task'} run '{run.name}'"
    configure()
    fields = {"run_id": run.id, "run_kind": kind, "run_label": label}
    return RunLogger(logging.getLogger(f"{name}.{kind}"), {**(extra or {}), **fields})


def get_run_logger(
    context: _context.TaskRunContext | _context.FlowRunContext | None = None, **kwargs: Any
) -> RunLogger | logging.Logger:
    """The logger of the current task run, or else flow run.

    Parameters
    ----------
    context
        A run context to log for instead of the current one (rarely needed).
    **kwargs
        Attributes added to every record of the logger (``extra``).

    Raises
    ------
    MissingContextError
        Outside any flow or task run, unless :func:`disable_run_logger` is in
        effect: then a logger that discards everything is returned, so a
        task's ``.fn`` can be tested on its own.

    Example
    -------
    >>> @task
    ... def load():
    ...     get_run_logger().info("loading")
    """
    ctx = _context_for_logging(context)
    if ctx is None:
        return _null_logger()
    if isinstance(ctx, _context.TaskRunContext):
        return run_logger("task", ctx.task_run, extra=kwargs)
    return run_logger("flow", ctx.flow_run, extra=kwargs)


def _context_for_logging(ctx: Any) -> Any:
    if ctx is not None:
        if not isinstance(ctx, (_context.TaskRunContext, _context.FlowRunContext)):
            raise TypeError(
                f"get_run_logger(context=...) takes a FlowRunContext or TaskRunContext, got "
                f"{type(ctx).__name__!r}; call get_run_logger() to use the current run."
            )
        return ctx
    current = _context.task_context.get() or _context.current_flow_context()
    if current is None and not _run_loggers_disabled():
        return _context.get_run_context()  # raises MissingContextError, one line
    return current


# --- Prefect's other logging names (public in kernelflow.logging) ------------------
_RUN_LOGGERS = ("kernelflow.runs.flow", "kernelflow.runs.task")


def _run_loggers_disabled() -> bool:
    return all(logging.getLogger(name).disabled for name in _RUN_LOGGERS)


def _null_logger() -> logging.Logger:
    logger = logging.getLogger("kernelflow.null")
    logger.disabled = True
    return logger


def get_logger(name: str | None = None) -> logging.Logger:
    """A logger under ``kernelflow`` (``kernelflow.<name>``), printed in the run log format.

    For a run's own log lines, recorded in the store, use :func:`get_run_logger`.

    Parameters
    ----------
    name
        The child's name; a full name starting with ``kernelflow.`` is taken as is.

    Example
    -------
    >>> get_logger("etl").info("starting")   # logger kernelflow.etl
    """
    root = configure()
    if not name:
        return root
    if name == ROOT or name.startswith(ROOT + "."):
        return logging.getLogger(name)
    return root.getChild(name)


@contextmanager
def disable_logger(name: str) -> Iterator[None]:
    """Switch logger ``name`` off inside the block; its previous state comes back after."""
    logger = logging.getLogger(name)
    before = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = before


@contextmanager
def disable_run_logger() -> Iterator[None]:
    """Discard run log lines inside the block, and let :func:`get_run_logger` work outside runs.

    Made for testing a task's function on its own, as in Prefect:

    >>> with disable_run_logger():
    ...     my_task.fn(3)   # its get_run_logger() calls log nowhere

    The switch is process-wide (a logger's ``disabled`` flag), not per thread.
    """
    with disable_logger(_RUN_LOGGERS[0]), disable_logger(_RUN_LOGGERS[1]):
        yield


def flow_run_logger(flow_run: Any, flow: Any = None, **kwargs: Any) -> RunLogger:
    """A logger whose records belong to ``flow_run`` (shown and stored under that run).

    Parameters
    ----------
    flow_run
        A :class:`~kernelflow.runs.FlowRun` (e.g. the one a state hook receives).
    flow
        Its flow, for the ``flow_name`` attribute of records.
    **kwargs
        More attributes for every record.

    Example
    -------
    >>> def notify(flow, flow_run, state):
    ...     flow_run_logger(flow_run, flow).warning("ended %s", state.name)
    """
    name = getattr(flow, "name", None) or getattr(flow_run, "flow_name", None)
    return run_logger("flow", flow_run, extra={"flow_name": name, **kwargs})


def task_run_logger(
    task_run: Any, task: Any = None, flow_run: Any = None, flow: Any = None, **kwargs: Any
) -> RunLogger:
    """A logger whose records belong to ``task_run`` (shown and stored under that run).

    Parameters
    ----------
    task_run
        A :class:`~kernelflow.runs.TaskRun` (e.g. the one a task hook receives).
    task, flow_run, flow
        Named in the records' ``task_name``, ``flow_run_name`` and ``flow_name``
        attributes; the flow run and flow default to the current ones.
    **kwargs
        More attributes for every record.
    """
    if flow_run is None or flow is None:
        current = _context.current_flow_context()
        if current is not None:
            flow_run = flow_run or current.flow_run
            flow = flow or current.flow
    extra = {
        "task_name": getattr(task, "name", None) or getattr(task_run, "task_name", None),
        "flow_run_name": getattr(flow_run, "name", None),
        "flow_name": getattr(flow, "name", None) or getattr(flow_run, "flow_name", None),
        **kwargs,
    }
    return run_logger("task", task_run, extra=extra)


# --- log_prints -------------------------------------------------------------
_original_print = builtins.print
_print_patched = False


def _print(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    if file is None or file is sys.stdout:
        task_ctx = context.task_context.get()
        flow_ctx = context.current_flow_context() if task_ctx is None else None
        ctx = task_ctx or flow_ctx
        if ctx is not None and ctx.log_prints:
            text = (" " if sep is None else sep).join(str(a) for a in args)
            # stacklevel: the record is the caller's line, not kernelflow's (is_own_record).
            if task_ctx is not None:
                run_logger("task", task_ctx.task_run).info(text, stacklevel=2)
            elif flow_ctx is not None:
                run_logger("flow", flow_ctx.flow_run).info(text, stacklevel=2)
            return
    _original_print(*args, sep=sep, end=end, file=file, flush=flush)


def enable_print_capture() -> None:
    """Route ``print`` inside runs with ``log_prints=True`` to their loggers (once)."""
    global _print_patched
    if not _print_patched:
        builtins.print = _print
        _print_patched = True
