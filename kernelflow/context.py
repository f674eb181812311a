"""Which flow run and task run the calling code is part of.

Kept in ``contextvars`` so threads of a task runner (which copy the context)
and asyncio tasks see the run that submitted them. A notebook kernel
registers a *session* flow run (see :func:`set_session_flow_context`): code
run at the top level of a cell then behaves as if inside that flow, so
``.submit()`` works there, unlike in Prefect.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from kernelflow.errors import ConfigurationError, MissingContextError

if TYPE_CHECKING:
    # Protocols, not the classes: Flow, Task and TaskRunner live in layers above
    # this one, and transactions imports this module (see kernelflow._protocols).
    from kernelflow._protocols import FlowLike, TaskLike, TaskRunnerLike, TransactionLike
    from kernelflow.futures import TaskRunFuture
    from kernelflow.runs import FlowRun, TaskRun

__all__ = [
    "FlowRunContext",
    "TaskRunContext",
    "current_tags",
    "get_run_context",
    "set_session_flow_context",
    "tags",
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

    __slots__ = (
        "_runner_factory",
        "_sweep_at",
        "_sweep_lock",
        "flow",
        "flow_run",
        "futures",
        "log_prints",
        "task_runner",
    )

    #: Fewest futures a flow holds before it lets go of the finished ones.
    SWEEP_MIN = 1024

    def __init__(
        self,
        flow: FlowLike | None,
        flow_run: FlowRun,
        runner_factory: Callable[[], TaskRunnerLike],
        log_prints: bool,
    ):
        self.flow = flow
        self.flow_run = flow_run
        self.log_prints = log_prints
        #: The submitted runs the flow still has to wait for before it ends (and, until
        #: the next sweep, some that have ended).
        self.futures: list[TaskRunFuture[Any]] = []
        self._sweep_at = self.SWEEP_MIN
        self._sweep_lock = threading.Lock()
        self._runner_factory = runner_factory
        self.task_runner: TaskRunnerLike | None = None

    def track(self, future: TaskRunFuture[Any]) -> None:
        """Keep ``future`` until it ends, so the flow run waits for it before it ends.

        A finished future is let go of at the next sweep: the flow needs it no
        more, and a flow of a million submitted tasks must not hold a million
        runs, states and results. The caller's own reference (``.submit()``
        returns it) keeps it, its state and its result alive as long as needed.
        Sweeps are amortized: one each time the list doubles past what the
        last one kept.
        """
        futures = self.futures
        futures.append(future)
        if len(futures) >= self._sweep_at and self._sweep_lock.acquire(blocking=False):
            try:
                # Tasks may submit from runner threads meanwhile: their appends land
                # past ``n`` and are kept, as only the first n items are replaced.
                n = len(futures)
                futures[:n] = [f for f in futures[:n] if not f.done()]
                self._sweep_at = max(self.SWEEP_MIN, 2 * len(futures))
            finally:
                self._sweep_lock.release()

    @classmethod
    def get(cls) -> FlowRunContext | None:
        """The current flow run's context, or None outside one (Prefect's ``FlowRunContext.get()``).

        In a notebook, code outside any ``@flow`` is in the kernel session's run.
        """
        return current_flow_context()

    def get_task_runner(self) -> TaskRunnerLike:
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
    transaction:
        The run's :class:`~kernelflow.transactions.Transaction`, or None until one
        is needed (inside a ``transaction()`` block, for commit and rollback
        hooks, or when the task calls ``get_transaction()``).
    """

    __slots__ = ("log_prints", "parameters", "task", "task_run", "transaction")

    def __init__(
        self, task: TaskLike, task_run: TaskRun, parameters: dict[str, Any], log_prints: bool
    ):
        self.task = task
        self.task_run = task_run
        self.parameters = parameters
        self.log_prints = log_prints
        self.transaction: TransactionLike | None = None

    @classmethod
    def get(cls) -> TaskRunContext | None:
        """The current task run's context, or None outside one (Prefect's ``.get()``)."""
        return task_context.get()


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


def caller_awaits(flow_ctx: FlowRunContext | None) -> bool:
    """Whether calling an async task here should return an awaitable.

    Only async code can await: an async task or async flow around the call.
    A sync task or flow gets the value, even when an event loop is running
    in the thread (a notebook cell); outside any run, a running loop means
    the caller is async (``await my_task()`` at a notebook's top level).
    """
    task_ctx = task_context.get()
    if task_ctx is not None:
        return task_ctx.task.is_async
    if flow_ctx is not None and flow_ctx.flow is not None:
        return flow_ctx.flow.is_async
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


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


# --- tags -----------------------------------------------------------------------
_tags: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "kernelflow_tags", default=frozenset()
)


@contextmanager
def tags(*new_tags: str) -> Iterator[set[str]]:
    """Add tags to every flow run and task run created inside the block, as Prefect's ``tags``.

    Blocks nest: an inner block adds to the tags of the outer ones. The tags
    join those given to ``@task(tags=...)``/``@flow(tags=...)``, are recorded
    with each run (``tags`` in ``flow_runs`` and ``task_runs``) and, on task
    runs, select concurrency limits as the task's own tags do.

    Yields
    ------
    set of str
        All the tags in force inside the block.

    Example
    -------
    >>> from kernelflow import flow, tags, task
    >>> @task
    ... def load(): ...
    >>> @flow
    ... def pipeline():
    ...     with tags("db"):
    ...         load()          # task run tagged db, nightly
    >>> with tags("nightly"):
    ...     pipeline()          # flow run tagged nightly
    """
    for tag in new_tags:
        if not isinstance(tag, str):
            raise ConfigurationError(f"tags() takes strings, got {tag!r}; write tags('a', 'b').")
    current = _tags.get().union(new_tags)
    token = _tags.set(current)
    try:
        yield set(current)
    finally:
        _tags.reset(token)


def current_tags() -> frozenset[str]:
    """The tags that enclosing :func:`tags` blocks add to runs created here."""
    return _tags.get()


def run_tags(own: Iterable[str]) -> list[str]:
    """The tags of a new run: its task's or flow's own plus those of enclosing ``tags()``."""
    extra = _tags.get()
    if not extra:
        return list(own) if own else []
    return sorted(extra.union(own))
