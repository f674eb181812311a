"""Task runners: where ``.submit()`` and ``.map()`` run task runs.

A runner is given to a flow (``@flow(task_runner=...)``) as a template; each
flow run gets its own copy (:meth:`TaskRunner.duplicate`), started on the
first submission and shut down when the run ends.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kernelflow.errors import ConfigurationError, TaskRunTimeoutError
from kernelflow.timeouts import call_with_timeout

if TYPE_CHECKING:
    from kernelflow._process_pool import ProcessPool
    from kernelflow._protocols import TaskLike

__all__ = [
    "ProcessPoolTaskRunner",
    "TaskRunner",
    "ThreadPoolTaskRunner",
    "call_task_fn",
]


class TaskRunner:
    """Base class of task runners."""

    def duplicate(self) -> TaskRunner:
        """A fresh, unstarted runner with the same settings."""
        raise NotImplementedError

    def start(self) -> None:
        """Acquire resources (threads, processes, a cluster)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        """Run ``fn(*args)`` (the engine driving one task run) and return its future."""
        raise NotImplementedError

    def call(self, task: TaskLike, parameters: dict[str, Any]) -> Any:
        """Run one try of ``task``'s function and return its value (or raise).

        The default runs it in the calling thread. Runners that execute
        elsewhere (processes, Dask) override this; the engine keeps driving
        states in the flow's process either way.
        """
        return call_task_fn(task, parameters)

    def shutdown(self, wait: bool = True) -> None:
        """Release resources; with ``wait``, after running work finishes."""


class ThreadPoolTaskRunner(TaskRunner):
    """Runs task runs on a pool of threads in this process (the default).

    Parameters
    ----------
    max_workers:
        Threads in the pool. By default, as in Prefect,
        ``KERNELFLOW_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS`` or else no bound
        (``sys.maxsize``): every submitted task run gets a thread at once, and
        threads are made only as needed.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ConfigurationError(
                f"max_workers must be a whole number >= 1, got {max_workers!r}"
            )
        self.max_workers = max_workers
        self._pool: cf.ThreadPoolExecutor | None = None

    def duplicate(self) -> ThreadPoolTaskRunner:
        return ThreadPoolTaskRunner(self.max_workers)

    def start(self) -> None:
        if self._pool is None:
            self._pool = cf.ThreadPoolExecutor(
                self.max_workers or default_thread_pool_max_workers(),
                thread_name_prefix="kernelflow-task",
            )

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        pool = self._pool
        if pool is None:
            self.start()
            pool = self._pool
            if pool is None:
                raise TypeError(f"{type(self).__name__}.start() must make the thread pool.")
        # Each task run sees the submitting flow's context (run, logger, store).
        return pool.submit(contextvars.copy_context().run, fn, *args)

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)
            self._pool = None

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"


def default_thread_pool_max_workers() -> int:
    """``KERNELFLOW_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS``, else ``sys.maxsize`` as in Prefect.

    Raises
    ------
    ConfigurationError
        The variable is set to something other than a whole number >= 1.
    """
    from kernelflow.settings import current

    value = current().tasks_runner_thread_pool_max_workers
    return sys.maxsize if value is None else value


class ProcessPoolTaskRunner(ThreadPoolTaskRunner):
    """Runs each try of a submitted task in a pool of worker processes.

    For CPU-bound pure-Python tasks, which threads cannot run in parallel.
    The engine still drives every task run from a thread of the flow's
    process (states, retries, caching and the store stay there); only the
    task's function runs in a worker. Functions and arguments travel with
    cloudpickle, so tasks defined in a script's ``__main__`` or a notebook
    work. Inside the worker, ``print`` (with ``log_prints``) and
    ``get_run_logger()`` end up as the run's log lines in the flow's process,
    and plain ``print`` output is shown there. A try over the task's
    ``timeout_seconds`` is stopped for real: its worker is killed (and
    replaced). Async tasks run in the flow's process.

    Parameters
    ----------
    max_workers:
        Worker processes; defaults to the number of CPUs.

    Example
    -------
    >>> @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))  # doctest: +SKIP
    ... def crunch(items):
    ...     return heavy.map(items).result()
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self._processes: ProcessPool | None = None

    @property
    def _process_count(self) -> int:
        return self.max_workers or os.cpu_count() or 1

    def duplicate(self) -> ProcessPoolTaskRunner:
        return ProcessPoolTaskRunner(self.max_workers)

    def start(self) -> None:
        from kernelflow._process_pool import ProcessPool

        if self._pool is None:
            # More engine threads than processes: a thread waiting for an
            # upstream future or a retry delay must not leave a process idle.
            self._pool = cf.ThreadPoolExecutor(
                self._process_count + 4, thread_name_prefix="kernelflow-task"
            )
        if self._processes is None:
            self._processes = ProcessPool(self._process_count)
            self._processes.prestart()

    def call(self, task: TaskLike, parameters: dict[str, Any]) -> Any:
        from kernelflow._remote import decode_reply, encode_call, raise_or_return, replay_event
        from kernelflow.errors import TaskRunnerError
        from kernelflow.timeouts import DeadlineExceeded

        processes = self._processes
        if processes is None:
            # Only after shutdown (submit starts the pool): the flow run has ended.
            raise TaskRunnerError("The process pool was shut down; the flow run ended.")
        request = encode_call(task, parameters, "a worker process")
        reply = processes.run(request, task.timeout_seconds, replay_event)
        if reply is None:
            raise DeadlineExceeded(task.timeout_seconds)
        kind, payload, _events = decode_reply(reply)
        return raise_or_return(kind, payload, task.name)

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        if self._processes is not None:
            self._processes.shutdown(wait)
            self._processes = None

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"


def call_task_fn(task: TaskLike, parameters: dict[str, Any]) -> Any:
    """One try of a sync task in this process, with its timeout if it has one."""
    args, kwargs = task.to_call_args(parameters)
    if task.timeout_seconds is None:
        return task.fn(*args, **kwargs)
    return call_with_timeout(task.fn, args, kwargs, task.timeout_seconds, TaskRunTimeoutError)
