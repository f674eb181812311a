"""The current task run, read when an attribute is: ``runtime.task_run.name`` and so on.

=================  ==============================================  ===========
attribute          value                                           outside
=================  ==============================================  ===========
``id``             the task run's id                               ``None``
``name``           the run's name, e.g. ``load-0``                 ``None``
``task_name``      the task's name (a ``%%task`` cell's name)      ``None``
``parameters``     the arguments by name, futures resolved         ``{}``
``tags``           the run's tags (its task's and ``tags()``'s)    ``[]``
``run_count``      tries started so far (1 on the first)           ``0``
=================  ==============================================  ===========

A ``%%task`` cell is a task run: its ``parameters`` are empty (a cell reads
notebook names, it takes no arguments). In a task running on a process or
Dask runner these are the run's values too. ``KERNELFLOW__RUNTIME__TASK_RUN__<ATTRIBUTE>``
overrides a value (see :mod:`kernelflow.runtime`).

Example
-------
>>> from kernelflow import runtime, task
>>> @task(task_run_name="fetch-{city}", retries=2)
... def fetch(city: str):
...     return runtime.task_run.name, runtime.task_run.run_count
>>> fetch("oslo")
('fetch-oslo', 1)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kernelflow import context
from kernelflow.runtime import _common


def get_id() -> str | None:
    """The current task run's id."""
    ctx = context.task_context.get()
    return ctx.task_run.id if ctx is not None else None


def get_name() -> str | None:
    """The current task run's name."""
    ctx = context.task_context.get()
    return ctx.task_run.name if ctx is not None else None


def get_task_name() -> str | None:
    """The name of the current task run's task."""
    ctx = context.task_context.get()
    return ctx.task.name if ctx is not None else None


def get_parameters() -> dict[str, Any]:
    """The current task run's arguments by parameter name, futures replaced by values."""
    ctx = context.task_context.get()
    return dict(ctx.parameters) if ctx is not None else {}


def get_tags() -> list[str]:
    """The current task run's tags."""
    ctx = context.task_context.get()
    return list(ctx.task_run.tags) if ctx is not None else []


def get_run_count() -> int:
    """How many tries of the current task run have started (0 outside a task run)."""
    ctx = context.task_context.get()
    return ctx.task_run.run_count if ctx is not None else 0


FIELDS: dict[str, Callable[[], Any]] = {
    "id": get_id,
    "name": get_name,
    "task_name": get_task_name,
    "parameters": get_parameters,
    "tags": get_tags,
    "run_count": get_run_count,
}
#: Public names (read through the module __getattr__ below).
__all__ = sorted(FIELDS)


def __getattr__(name: str) -> Any:
    return _common.attribute("task_run", name, FIELDS)


def __dir__() -> list[str]:
    return sorted(__all__)
