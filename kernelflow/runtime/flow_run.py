"""The current flow run, read when an attribute is: ``runtime.flow_run.name`` and so on.

=========================  ====================================================  ===========
attribute                  value                                                 outside
=========================  ====================================================  ===========
``id``                     the flow run's id (in a task: its flow run's)         ``None``
``name``                   the run's name, e.g. ``nimble-falcon``                ``None``
``flow_name``              the flow's name                                       ``None``
``flow_version``           the flow's ``version=``                               ``None``
``parameters``             the run's arguments by name                           ``{}``
``tags``                   the run's tags (its flow's and ``tags()`` blocks')    ``[]``
``run_count``              tries started so far (1 on the first)                 ``0``
``scheduled_start_time``   when the run was to start (UTC datetime)              now
``parent_flow_run_id``     the run this one was called from (a subflow's         ``None``
                           parent)
``parent_deployment_id``   that parent's deployment, when it is a deployment     ``None``
                           run
=========================  ====================================================  ===========

In a notebook with ``%load_ext kernelflow``, code at the top level of a cell
is in the kernel session's flow run: reading an attribute there starts that
run if nothing has yet. In a notebook executed by a deployment, that flow run
is the deployment run itself (as in Prefect: ``id`` is the deployment run's,
``parent_flow_run_id`` is None), and its ``scheduled_start_time`` is the
slot it fills (a late or caught-up run still sees it); a flow called there is
its subflow, with ``parent_deployment_id`` set.
In a task running on a process or Dask runner only ``id`` is known (the flow
run the task belongs to); the rest are empty.
``KERNELFLOW__RUNTIME__FLOW_RUN__<ATTRIBUTE>`` overrides a value (see
:mod:`kernelflow.runtime`).

Example
-------
>>> from kernelflow import flow, runtime
>>> @flow(flow_run_name="report-{day}")
... def report(day: str):
...     return runtime.flow_run.name, runtime.flow_run.parameters
>>> report("mon")
('report-mon', {'day': 'mon'})
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kernelflow import context
from kernelflow.runtime import _common

if TYPE_CHECKING:
    from kernelflow.runs import FlowRun


def _run() -> FlowRun | None:
    ctx = _common.flow_context()
    return ctx.flow_run if ctx is not None else None


def get_id() -> str | None:
    """The current flow run's id; in a task run outside this process's flows, its flow run's."""
    run = _run()
    if run is not None:
        return run.id
    task_ctx = context.task_context.get()
    if task_ctx is not None:
        return task_ctx.task_run.flow_run_id
    return None


def get_name() -> str | None:
    """The current flow run's name."""
    run = _run()
    return run.name if run is not None else None


def get_flow_name() -> str | None:
    """The name of the current flow run's flow."""
    run = _run()
    return run.flow_name if run is not None else None


def get_flow_version() -> str | None:
    """The ``version=`` of the current flow run's flow."""
    ctx = _common.flow_context()
    flow = ctx.flow if ctx is not None else None
    return getattr(flow, "version", None)


def get_parameters() -> dict[str, Any]:
    """The current flow run's arguments by parameter name."""
    run = _run()
    return dict(run.parameters) if run is not None else {}


def get_tags() -> list[str]:
    """The current flow run's tags."""
    run = _run()
    return list(run.tags) if run is not None else []


def get_run_count() -> int:
    """How many tries of the current flow run have started (0 outside a flow run)."""
    run = _run()
    return run.run_count if run is not None else 0


def get_scheduled_start_time() -> dt.datetime:
    """When the current flow run was to start, in UTC (now, outside a run)."""
    ctx = _common.flow_context()
    if ctx is None:
        return _common.utc(None)
    run = ctx.flow_run
    info = _common.deployment_info()
    if info and ctx is context.session_flow_context() and run.id == info.get("flow_run_id"):
        scheduled = info.get("scheduled_start_time")
        if isinstance(scheduled, (int, float)):
            return _common.utc(scheduled)
    return _common.utc(run.start_time)


def get_parent_flow_run_id() -> str | None:
    """The flow run the current one was called from, if any."""
    run = _run()
    return run.parent_flow_run_id if run is not None else None


def get_parent_deployment_id() -> str | None:
    """The deployment of the parent flow run, when the parent is a deployment run."""
    parent = get_parent_flow_run_id()
    info = _common.deployment_info()
    if parent is not None and info and parent == info.get("flow_run_id"):
        return info.get("id")
    return None


FIELDS: dict[str, Callable[[], Any]] = {
    "id": get_id,
    "name": get_name,
    "flow_name": get_flow_name,
    "flow_version": get_flow_version,
    "parameters": get_parameters,
    "tags": get_tags,
    "run_count": get_run_count,
    "scheduled_start_time": get_scheduled_start_time,
    "parent_flow_run_id": get_parent_flow_run_id,
    "parent_deployment_id": get_parent_deployment_id,
}
#: Public names (read through the module __getattr__ below).
__all__ = sorted(FIELDS)


def __getattr__(name: str) -> Any:
    return _common.attribute("flow_run", name, FIELDS)


def __dir__() -> list[str]:
    return sorted(__all__)
