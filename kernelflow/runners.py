"""Task runners: where ``.submit()`` and ``.map()`` run task runs.

A runner is given to a flow (``@flow(task_runner=...)``) as a template; each
flow run gets its own copy (:meth:`TaskRunner.duplicate`), started on the
first submission and shut down when the run ends.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import math
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kernelflow.errors import ConfigurationError, TaskRunnerError, TaskRunTimeoutError
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
        (``sys.maxsize``): submitted task runs that block (I/O, sleeps, waiting on
        each other) all run at once, and threads are made only as needed. Short
        tasks submitted in a burst share the threads that keep finishing them
        rather than each starting a new one (see ``_ThreadPool``).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ConfigurationError(
                f"max_workers must be a whole number >= 1, got {max_workers!r}"
            )
        self.max_workers = max_workers
        # A subclass may use the standard pool (the Dask runner's bounded engine threads).
        self._pool: _ThreadPool | cf.ThreadPoolExecutor | None = None

    def duplicate(self) -> ThreadPoolTaskRunner:
        return ThreadPoolTaskRunner(self.max_workers)

    def start(self) -> None:
        if self._pool is None:
            self._pool = _ThreadPool(
                self.max_workers or default_thread_pool_max_workers(), "kernelflow-task"
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


#: How many thread switch intervals (``sys.getswitchinterval()``, 5 ms by default) a
#: submitted item may wait for one of the busy workers when one of them finished an
#: item that recently, before a thread is made for it (see :class:`_ThreadPool`).
_GRACE_SWITCHES = 2


class _ThreadPool:
    """The thread pool of :class:`ThreadPoolTaskRunner`: threads made as work needs them.

    As in ``concurrent.futures.ThreadPoolExecutor`` (Prefect's pool), a submitted item
    is taken by a free thread or gets a new one, up to ``max_workers``. One case
    differs: when every thread is busy but one of them finished an item within the
    grace (two switch intervals), the threads are keeping up with short tasks while
    taking turns on the GIL, and a new thread would add nothing but its start and
    more turns. The item then waits for one of them. Once no thread has finished an
    item for the grace, a watchdog thread doubles the threads (up to one per waiting
    item), and again each grace after: tasks that block (I/O, sleeps, waiting on each
    other) still all run at once, n of them after about log2(n) graces at most.

    For 1,000 trivial submitted tasks, the standard pool made 30 to 45 threads per
    flow run here, this one a handful (on a loaded machine, whose scheduler can
    leave a worker unrun for a grace, up to as many); see
    docs/decisions/concurrency-limits-and-runners.md.
    """

    def __init__(
        self, max_workers: int, thread_name_prefix: str, grace: float | None = None
    ) -> None:
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # what the watchdog waits on
        self._threads: list[threading.Thread] = []
        self._pending = 0  # items submitted and not finished (queued or running)
        # A runnable thread gets the GIL within about one switch interval: one that
        # finished nothing for two of them is blocked, not waiting for its turn.
        self._grace = _GRACE_SWITCHES * sys.getswitchinterval() if grace is None else grace
        self._last_done = -math.inf  # when a worker last finished an item (monotonic)
        self._last_grown = -math.inf  # when the watchdog last made threads
        self._watchdog: threading.Thread | None = None
        self._watchdog_idle = False  # it waits to be told of a waiting item
        self._deferred = False  # an item waited for a busy thread since the watchdog looked
        self._shut = False
        _live_pools.add(self)

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        """Run ``fn(*args)`` on a thread of the pool; its future."""
        future: cf.Future = cf.Future()
        with self._lock:
            if self._shut:
                raise TaskRunnerError(
                    "This task runner was shut down; submit to the task runner of a running flow."
                )
            self._queue.put((future, fn, args))
            self._pending += 1
            count = len(self._threads)
            if self._pending > count and count < self._max_workers:
                if not count or time.monotonic() - self._last_done >= self._grace:
                    self._start(1)
                else:
                    self._watch()
        return future

    def _start(self, n: int) -> None:
        """Start ``n`` workers (with the lock held, so that shutdown counts them all)."""
        for _ in range(n):
            thread = threading.Thread(
                target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=_DAEMON
            )
            thread.start()
            self._threads.append(thread)

    def _watch(self) -> None:
        """Have the watchdog look at the waiting items (lock held)."""
        self._deferred = True
        if self._watchdog is None:
            self._watchdog = threading.Thread(
                target=self._watchdog_loop, name=f"{self._prefix}-watchdog", daemon=True
            )
            self._watchdog.start()
        elif self._watchdog_idle:
            # Only then: a watchdog timing a wait looks again when it ends anyway, and
            # waking it for every item submitted would cost a thread switch each.
            self._watchdog_idle = False
            self._wake.notify()

    def _watchdog_loop(self) -> None:
        with self._lock:
            while not self._shut:
                count = len(self._threads)
                waiting = self._pending - count
                if waiting <= 0 or count >= self._max_workers:
                    if self._deferred:
                        # Items keep waiting, each for a moment only (a waiter woken by
                        # a result submits before the worker counts itself free): look
                        # again after a grace rather than be woken for every one.
                        self._deferred = False
                        self._wake.wait(self._grace)
                    else:
                        self._watchdog_idle = True
                        self._wake.wait()
                    continue
                due = max(self._last_done, self._last_grown) + self._grace - time.monotonic()
                if due > 0:
                    self._wake.wait(due)
                    continue
                # Double the threads rather than make one per waiting item: a thread the
                # OS did not run for a while (a loaded machine) looks blocked too, and
                # hundreds of short items may be queued behind it.
                self._start(min(waiting, max(1, count), self._max_workers - count))
                self._last_grown = time.monotonic()

    def _work(self) -> None:
        get, lock = self._queue.get, self._lock
        while True:
            item = get()
            if item is None:
                return
            future, fn, args = item
            del item
            result: Any = None
            error: BaseException | None = None
            run = future.set_running_or_notify_cancel()  # False: it was cancelled
            if run:
                try:
                    result = fn(*args)
                except BaseException as exc:
                    error = exc
            # Before the future wakes whoever waits for it: what they submit next then
            # waits for this thread instead of starting another. (A float stored under
            # the GIL, read by submit and the watchdog.)
            self._last_done = time.monotonic()
            if error is not None:
                future.set_exception(error)
            elif run:
                future.set_result(result)
            del future, fn, args, result, error
            # Free only now: the future's done callbacks run in this thread, and may block.
            with lock:
                self._pending -= 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more work; ``cancel_futures``: cancel what has not started; ``wait``: join.

        Work already queued is run, on a thread of its own if none is free, as the
        standard pool would have done: queued work may be what a running task waits for.
        """
        with self._lock:
            if not self._shut:
                self._shut = True
                if cancel_futures:
                    while True:
                        try:
                            item = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if item is not None:
                            item[0].cancel()
                            self._pending -= 1
                count = len(self._threads)
                waiting = min(self._pending - count, self._max_workers - count)
                if waiting > 0:
                    self._start(waiting)
                for _ in self._threads:  # one stop mark each, after the queued work
                    self._queue.put(None)
                self._wake.notify_all()
            threads = list(self._threads)
        _live_pools.discard(self)
        if wait:
            for thread in threads:
                thread.join()


_Item = tuple[cf.Future, Callable[..., Any], tuple[Any, ...]]
_live_pools: weakref.WeakSet[_ThreadPool] = weakref.WeakSet()


def _finish_at_exit() -> None:
    """Let every pool finish its queued and running work as the interpreter exits."""
    for pool in list(_live_pools):
        pool.shutdown(wait=True)


def _register_exit_hook() -> bool:
    """Run :func:`_finish_at_exit` before the interpreter joins non-daemon threads.

    The hook ``concurrent.futures`` uses, so that exiting waits for submitted work as
    with Prefect's pool; without it (another interpreter, or imported while the
    interpreter exits), workers are daemon threads.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        return False
    try:
        register(_finish_at_exit)
    except RuntimeError:  # "can't register atexit after shutdown"
        return False
    return True


_DAEMON = not _register_exit_hook()


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
            self._pool = _ThreadPool(self._process_count + 4, "kernelflow-task")
        if self._processes is None:
            self._processes = ProcessPool(self._process_count)
            self._processes.prestart()

    def call(self, task: TaskLike, parameters: dict[str, Any]) -> Any:
        from kernelflow._remote import decode_reply, encode_call, raise_or_return, replay_event
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
