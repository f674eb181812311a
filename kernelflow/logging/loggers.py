"""Prefect's ``prefect.logging.loggers`` names: run loggers for a given run, and switches.

>>> from kernelflow.logging.loggers import flow_run_logger, task_run_logger

:func:`flow_run_logger` and :func:`task_run_logger` log for a run you hold
(a state hook's ``flow_run``/``task_run`` argument) rather than the current one.
"""

from __future__ import annotations

from kernelflow.logs import (
    disable_logger,
    disable_run_logger,
    flow_run_logger,
    get_logger,
    get_run_logger,
    task_run_logger,
)

__all__ = [
    "disable_logger",
    "disable_run_logger",
    "flow_run_logger",
    "get_logger",
    "get_run_logger",
    "task_run_logger",
]
