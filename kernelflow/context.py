"""Which flow run and task run the calling code is part of.

Kept in ``contextvars`` so threads of a task runner (which copy the context)
and asyncio tasks see the run that submitted them. A notebook kernel
registers a *session* flow run (see :func:`set_session_flow_context`): code
run at the top level of a cell then behaves as if inside that flow, so
``.submit()`` works there, unlike in Prefect.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

from kernelflow.errors import MissingContextError

if TYPE_CHECKING:
    from kernelflow.flows import Flow
    from kernelflow.futures import TaskRunFuture
    from kernelflow.runners import TaskRunner
    from kernelflow.runs import FlowRun, TaskRun
    from kernelflow.tasks import Task

__all__ = [
    "FlowRunContext",
    "TaskRunContext",
    "get_run_context",
    "set_session_flow_context",
]


class FlowRunContext:
    """What code running inside a flow run can see.

    Attributes
    ----------
    flow, flow_run:
        The flow and its run.
    task_runner:
        Where ``.submit()`` sends task runs.
    log_prints:
        Whether ``print`` inside this flow goes to the run's logger.
    """

    __slots__ = ("_runner_factory", "flow", "flow_run", "futures", "log_prints", "task_runner")

    def __init__(self, flow: Flow | None, flow_run: FlowRun, runner_factory: Any, log_prints: bool):
        self.flow = flow
        self.flow_run = flow_run
        self.log_prints = log_prints
        self.futures: list[TaskRunFuture] = []
        self._runner_factory = runner_factory
        self.task_runner: TaskRunner | None = None

    def get_task_runner(self) -> TaskRunner:
        """The flow's task runner, started on first use (most flows never submit)."""
        runner = self.task_runner
        if runner is None:
            runner = self.task_runner = self._runner_factory()
            runner.start()
        return runner


class TaskRunContext:
    """What code running inside a task run can see.

    Attributes
    ----------
    task, task_run:
        The task and its run.
    parameters:
        The resolved call arguments.
    log_prints:
        Whether ``print`` goes to the run's logger.
    """

    __slots__ = ("log_prints", "parameters", "task", "task_run")

    def __init__(self, task: Task, task_run: TaskRun, parameters: dict[str, Any], log_prints: bool):
        self.task = task
        self.task_run = task_run
        self.parameters = parameters
        self.log_prints = log_prints


flow_context: contextvars.ContextVar[FlowRunContext | None] = contextvars.ContextVar(
    "kernelflow_flow", default=None
)
task_context: contextvars.ContextVar[TaskRunContext | None] = contextvars.ContextVar(
    "kernelflow_task", default=None
)
_session_flow: FlowRunContext | None = None


def set_session_flow_context(ctx: FlowRunContext | None) -> None:
    """Make ``ctx`` the flow run of code that runs outside any flow (a notebook session)."""
    global _session_flow
    _session_flow = ctx


def session_flow_context() -> FlowRunContext | None:
    """The notebook session's flow run context, if one is registered."""
    return _session_flow


def current_flow_context() -> FlowRunContext | None:
    """The innermost flow run context, falling back to the notebook session run."""
    return flow_context.get() or _session_flow


def get_run_context() -> TaskRunContext | FlowRunContext:
    """The innermost run context: the task run if in one, else the flow run.

    Raises
    ------
    MissingContextError
        When called outside any flow or task run.
    """
    ctx = task_context.get() or current_flow_context()
    if ctx is None:
        raise MissingContextError(
            "No flow or task run is active here; call this from inside a @flow or @task."
        )
    return ctx
