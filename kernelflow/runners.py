"""Task runners: where ``.submit()`` and ``.map()`` run task runs.

A runner is given to a flow (``@flow(task_runner=...)``) as a template; each
flow run gets its own copy (:meth:`TaskRunner.duplicate`), started on the
first submission and shut down when the run ends.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kernelflow.errors import ConfigurationError

if TYPE_CHECKING:
    from kernelflow.tasks import Task

__all__ = ["TaskRunner", "ThreadPoolTaskRunner"]


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

    def call(self, task: Task, parameters: dict[str, Any]) -> Any:
        """Run one try of ``task``'s function and return its value (or raise).

        The default runs it in the calling thread. Runners that execute
        elsewhere (processes, Dask) override this; the engine keeps driving
        states in the flow's process either way.
        """
        from kernelflow.engine import call_task_fn

        return call_task_fn(task, parameters)

    def shutdown(self, wait: bool = True) -> None:
        """Release resources; with ``wait``, after running work finishes."""


class ThreadPoolTaskRunner(TaskRunner):
    """Runs task runs on a pool of threads in this process (the default).

    Parameters
    ----------
    max_workers:
        Threads in the pool; defaults to ``min(32, cpu_count + 4)`` as
        ``concurrent.futures`` does.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ConfigurationError(f"max_workers must be a whole number >= 1, got {max_workers!r}")
        self.max_workers = max_workers
        self._pool: cf.ThreadPoolExecutor | None = None

    def duplicate(self) -> ThreadPoolTaskRunner:
        return ThreadPoolTaskRunner(self.max_workers)

    def start(self) -> None:
        if self._pool is None:
            self._pool = cf.ThreadPoolExecutor(self.max_workers, thread_name_prefix="kernelflow-task")

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        if self._pool is None:
            self.start()
        # Each task run sees the submitting flow's context (run, logger, store).
        return self._pool.submit(contextvars.copy_context().run, fn, *args)

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)
            self._pool = None

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"
