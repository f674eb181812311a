"""Futures of submitted task runs, and ``wait`` / ``as_completed``.

``task.submit()`` returns a :class:`TaskRunFuture` at once; the task runs on
the flow's task runner. ``.result()`` waits and returns the value (or raises
the task's exception), ``.state`` is the run's state now, ``.wait()`` waits
without raising.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar, overload

from kernelflow.states import Pending, State

if TYPE_CHECKING:
    from kernelflow.runs import TaskRun

__all__ = [
    "DoneAndNotDoneFutures",
    "PrefectFuture",
    "PrefectFutureList",
    "TaskRunFuture",
    "as_completed",
    "resolve_futures_to_states",
    "wait",
]

R = TypeVar("R")


class TaskRunFuture(Generic[R]):
    """The future result of a submitted task run.

    Example
    -------
    >>> fut = double.submit(2)
    >>> fut.result()
    4
    """

    __slots__ = ("_future", "task_run")

    def __init__(self, task_run: TaskRun, future: cf.Future[State[R]]) -> None:
        self.task_run = task_run
        self._future = future

    @property
    def task_run_id(self) -> str:
        """Id of the task run behind this future."""
        return self.task_run.id

    @property
    def state(self) -> State[R]:
        """The run's current state (Pending until it starts)."""
        if self._future.done() and not self._future.cancelled():
            exc = self._future.exception()
            if exc is None:
                return self._future.result()
        return self.task_run.state or Pending()

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the run is final, or ``timeout`` seconds pass."""
        try:
            self._future.result(timeout)
        except cf.TimeoutError:
            pass

    def done(self) -> bool:
        """True once the run has reached a final state."""
        return self._future.done()

    def final_state(self, timeout: float | None = None) -> State[R]:
        """Wait for and return the final state."""
        return self._future.result(timeout)

    @overload
    def result(self, timeout: float | None = None, raise_on_failure: Literal[True] = True) -> R: ...

    @overload
    def result(
        self, timeout: float | None = None, raise_on_failure: bool = True
    ) -> R | BaseException: ...

    def result(
        self, timeout: float | None = None, raise_on_failure: bool = True
    ) -> R | BaseException:
        """Wait for the run and return its value; raise its exception if it failed."""
        return self._future.result(timeout).result(raise_on_failure=raise_on_failure)

    def add_done_callback(self, fn: Any) -> None:
        """Call ``fn(self)`` when the run is final."""
        self._future.add_done_callback(lambda _f: fn(self))

    def __repr__(self) -> str:
        return f"TaskRunFuture({self.task_run.name!r}, state={self.state!r})"


#: Prefect's name for the same thing, so imports carry over unchanged.
PrefectFuture = TaskRunFuture


class PrefectFutureList(list[TaskRunFuture[R]], Generic[R]):
    """The list ``.map()`` returns, with ``wait()`` and ``result()`` over all of it."""

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every future."""
        wait(self, timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[Any]:
        """Every future's value, in order."""
        return [f.result(timeout, raise_on_failure) for f in self]


class DoneAndNotDoneFutures(NamedTuple):
    """What :func:`wait` returns."""

    done: set[TaskRunFuture[Any]]
    not_done: set[TaskRunFuture[Any]]


def wait(
    futures: Iterable[TaskRunFuture[Any]], timeout: float | None = None
) -> DoneAndNotDoneFutures:
    """Wait for futures to finish (or ``timeout``); never raises a task's exception."""
    futures = list(futures)
    by_inner = {f._future: f for f in futures}
    done, not_done = cf.wait(list(by_inner), timeout=timeout)
    return DoneAndNotDoneFutures({by_inner[f] for f in done}, {by_inner[f] for f in not_done})


def as_completed(
    futures: Iterable[TaskRunFuture[R]], timeout: float | None = None
) -> Iterator[TaskRunFuture[R]]:
    """Yield futures as their runs finish."""
    by_inner = {f._future: f for f in futures}
    for inner in cf.as_completed(by_inner, timeout=timeout):
        yield by_inner[inner]


def resolve_futures_to_states(value: Any) -> Any:
    """Replace futures in ``value`` (and in lists, tuples, sets, dicts) by their final states."""
    if isinstance(value, TaskRunFuture):
        return value.final_state()
    if isinstance(value, (list, tuple, set)):
        if not any(isinstance(v, TaskRunFuture) for v in value):
            return value
        return (
            type(value)(resolve_futures_to_states(v) for v in value)
            if not isinstance(value, PrefectFutureList)
            else [resolve_futures_to_states(v) for v in value]
        )
    if isinstance(value, dict) and any(isinstance(v, TaskRunFuture) for v in value.values()):
        return {k: resolve_futures_to_states(v) for k, v in value.items()}
    return value
