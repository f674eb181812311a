"""What the lower layers need of a task, a flow and a task runner, as Protocols.

The model (``context``), the execution plumbing (``runners``, ``_remote``,
``dask``) and the engine handle :class:`~kernelflow.tasks.Task`,
:class:`~kernelflow.flows.Flow` and :class:`~kernelflow.runners.TaskRunner`
objects, but those classes live in layers above them (the user API and the
execution layer). Naming the classes, even under ``TYPE_CHECKING``, would
make imports point up. Instead the lower layers name these structural types,
which list only the attributes and methods they actually read; the concrete
classes satisfy them without inheriting from them.

:class:`TransactionLike` has the same role for a task run's transaction in
:class:`~kernelflow.context.TaskRunContext`: ``kernelflow.transactions`` imports
``context`` (for the current run), so ``context`` naming ``Transaction`` back
would close an import cycle.

Keep each Protocol to what is used below the user API: a new attribute read
by the engine gets a line here, and a line no lower layer reads any more is
removed.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["FlowLike", "TaskLike", "TaskRunnerLike", "TransactionLike"]


class TaskLike(Protocol):
    """A task as the engine, the run context and the task runners see it.

    :class:`~kernelflow.tasks.Task` is the implementation.
    """

    fn: Callable[..., Any]
    name: str
    task_key: str
    tags: frozenset[str]
    version: str | None
    is_async: bool
    retries: int
    delay_for_retry: Callable[[int], float]
    retry_jitter_factor: float | None
    retry_condition_fn: Callable[..., bool] | None
    timeout_seconds: float | None
    #: A kernelflow.cache.CachePolicy or None; not named here, as kernelflow.cache
    #: imports kernelflow.context, which imports this module.
    cache_policy: Any
    cache_expiration: float | None
    caches_by_default: bool
    refresh_cache: bool
    persist_result: bool | None
    cache_result_in_memory: bool
    result_storage_key: str | None
    log_prints: bool | None
    on_completion_hooks: list[Callable]
    on_failure_hooks: list[Callable]
    on_running_hooks: list[Callable]
    on_commit_hooks: list[Callable]
    on_rollback_hooks: list[Callable]

    def render_run_name(self, parameters: dict[str, Any], index: int) -> str:
        """The name of a task run with these parameters."""
        ...

    def to_call_args(self, parameters: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        """``(args, kwargs)`` for the task's function."""
        ...


class TaskRunnerLike(Protocol):
    """A task runner as the engine and the flow run context drive it.

    :class:`~kernelflow.runners.TaskRunner` and its subclasses are the
    implementations.
    """

    def duplicate(self) -> TaskRunnerLike:
        """A fresh, unstarted runner with the same settings."""
        ...

    def start(self) -> None:
        """Acquire resources (threads, processes, a cluster)."""
        ...

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        """Run ``fn(*args)`` and return its future."""
        ...

    def call(self, task: TaskLike, parameters: dict[str, Any]) -> Any:
        """Run one try of ``task``'s function and return its value (or raise)."""
        ...

    def shutdown(self, wait: bool = True) -> None:
        """Release resources; with ``wait``, after running work finishes."""
        ...


class FlowLike(Protocol):
    """A flow as the engine and the flow run context see it.

    :class:`~kernelflow.flows.Flow` is the implementation.
    """

    fn: Callable[..., Any]
    name: str
    version: str | None
    tags: frozenset[str]
    is_async: bool
    generator: str | None
    retries: int
    delay_for_retry: Callable[[int], float]
    timeout_seconds: float | None
    persist_result: bool | None
    cache_result_in_memory: bool
    log_prints: bool | None
    on_completion_hooks: list[Callable]
    on_failure_hooks: list[Callable]
    on_cancellation_hooks: list[Callable]
    on_crashed_hooks: list[Callable]
    on_running_hooks: list[Callable]

    @property
    def task_runner(self) -> TaskRunnerLike:
        """The flow's task runner (read only here: a Flow's is a concrete subclass)."""
        ...

    def render_run_name(self, parameters: dict[str, Any]) -> str:
        """The name of a flow run with these parameters."""
        ...

    def to_call_args(self, parameters: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        """``(args, kwargs)`` for the flow's function."""
        ...

    def validate_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``parameters`` checked and coerced against the function's annotations."""
        ...


class TransactionLike(Protocol):
    """A task run's own transaction, as the run context holds it and the engine drives it.

    :class:`~kernelflow.transactions.Transaction` is the implementation; the
    engine begins, re-keys, suspends and ends a task run's transaction through
    these members (see :func:`kernelflow.transactions.task_transaction`).
    """

    key: str | None
    _closed: bool

    def commit(self) -> bool:
        """Commit; True if it committed."""
        ...

    def rollback(self) -> bool:
        """Roll back; True if it did."""
        ...

    def _activate(self) -> None:
        """Make this the current transaction while the run goes on."""
        ...

    def _deactivate(self) -> None:
        """Stop being the current transaction."""
        ...

    def _close(self, failed: bool) -> None:
        """End the transaction: roll back, commit or hand over to the parent."""
        ...

    def _abort(self) -> None:
        """Roll back and end, unless ended already."""
        ...
