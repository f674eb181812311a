"""Loggers, under Prefect's module path (``prefect.logging`` -> ``kernelflow.logging``).

>>> from kernelflow.logging import get_run_logger, get_logger, disable_run_logger

:func:`get_run_logger` logs for the current flow or task run: its lines are
printed (``HH:MM:SS.mmm | INFO    | Task run 'load-0' - ...``) and recorded in
the store with the run. :func:`get_logger` gives a plain ``kernelflow.*`` logger.
:func:`disable_run_logger` silences run loggers, e.g. to call a task's ``.fn``
in a test. More in :mod:`kernelflow.logging.loggers`.

The implementation lives in :mod:`kernelflow.logs`; this package only names it.
"""

from __future__ import annotations

from kernelflow.logs import disable_run_logger, get_logger, get_run_logger

__all__ = ["disable_run_logger", "get_logger", "get_run_logger"]
