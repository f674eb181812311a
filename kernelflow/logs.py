"""Run loggers, the console format, and ``log_prints``.

Log lines look like Prefect's::

    15:42:01.401 | INFO    | Task run 'fetch_data-0' - Finished in state Completed()

Records logged through a run logger (:func:`get_run_logger`, or ``print``
under ``log_prints=True``) are also appended to the store's journal, so they
show in ``kernelflow runs show`` and in the ``logs`` table.
"""

from __future__ import annotations

import builtins
import logging
import sys
import threading
import time
from typing import Any

from kernelflow import context
from kernelflow.settings import env

__all__ = ["enable_print_capture", "get_run_logger", "run_logger"]

ROOT = "kernelflow"
_setup_lock = threading.Lock()
_configured = False


class ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS.mmm | LEVEL   | <who> - message``, where who is the run."""

    def format(self, record: logging.LogRecord) -> str:
        t = time.localtime(record.created)
        stamp = f"{time.strftime('%H:%M:%S', t)}.{int(record.msecs):03d}"
        who = getattr(record, "run_label", None) or record.name
        text = f"{stamp} | {record.levelname:<7} | {who} - {record.getMessage()}"
        if record.exc_info and record.levelno >= logging.ERROR:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when each record is emitted.

    Bound once, a plain ``StreamHandler(sys.stderr)`` would keep writing to
    whatever stream was current at configuration (an old pytest capture, a
    finished ``redirect_stderr``) and lose every later line.
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


class JournalHandler(logging.Handler):
    """Appends run log records to the store's journal."""

    def emit(self, record: logging.LogRecord) -> None:
        run_id = getattr(record, "run_id", None)
        if run_id is None or getattr(record, "journal", True) is False:
            return
        try:
            from kernelflow.store.journal import record as journal_record

            journal_record(
                {
                    "ev": "log",
                    "run_id": run_id,
                    "kind": getattr(record, "run_kind", "task"),
                    "level": record.levelno,
                    "logger": record.name,
                    "message": record.getMessage(),
                    "t": record.created,
                }
            )
        except Exception:  # a log line must never break a run
            self.handleError(record)


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _level() -> str:
    """``KERNELFLOW_LOGGING_LEVEL``, checked: a bad value is one line, not a traceback."""
    raw = env("LOGGING_LEVEL", "INFO")
    level = raw.strip().upper() or "INFO"
    if level not in _LEVELS:
        from kernelflow.errors import ConfigurationError

        raise ConfigurationError(
            f"KERNELFLOW_LOGGING_LEVEL={raw!r} is not a log level; set it to one of "
            f"{', '.join(_LEVELS)}."
        )
    return level


def configure() -> logging.Logger:
    """Install the console and journal handlers on the ``kernelflow`` logger, once."""
    global _configured
    logger = logging.getLogger(ROOT)
    if _configured:
        return logger
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


class RunLogger(logging.LoggerAdapter):
    """A logger bound to one flow or task run."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        if "extra" in kwargs:
            extra.update(kwargs["extra"])
        kwargs["extra"] = extra
        return msg, kwargs


def run_logger(kind: str, run: Any, name: str = "kernelflow.runs") -> RunLogger:
    """A logger for ``run`` (a FlowRun or TaskRun) whose records carry its id."""
    label = f"{'Flow' if kind == 'flow' else 'Task'} run '{run.name}'"
    configure()
    return RunLogger(
        logging.getLogger(f"{name}.{kind}"),
        {"run_id": run.id, "run_kind": kind, "run_label": label},
    )


def get_run_logger() -> RunLogger:
    """The logger of the current task run, or else flow run.

    Raises
    ------
    MissingContextError
        Outside any flow or task run.

    Example
    -------
    >>> @task
    ... def load():
    ...     get_run_logger().info("loading")
    """
    ctx = context.get_run_context()
    if isinstance(ctx, context.TaskRunContext):
        return run_logger("task", ctx.task_run)
    return run_logger("flow", ctx.flow_run)


# --- log_prints -------------------------------------------------------------
_original_print = builtins.print
_print_patched = False


def _print(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    if file is None or file is sys.stdout:
        task_ctx = context.task_context.get()
        ctx = task_ctx or context.current_flow_context()
        if ctx is not None and ctx.log_prints:
            text = (" " if sep is None else sep).join(str(a) for a in args)
            if task_ctx is not None:
                run_logger("task", task_ctx.task_run).info(text)
            else:
                run_logger("flow", ctx.flow_run).info(text)
            return
    _original_print(*args, sep=sep, end=end, file=file, flush=flush)


def enable_print_capture() -> None:
    """Route ``print`` inside runs with ``log_prints=True`` to their loggers (once)."""
    global _print_patched
    if not _print_patched:
        builtins.print = _print
        _print_patched = True
