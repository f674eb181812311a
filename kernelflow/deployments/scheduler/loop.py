"""The scheduler's loop: :class:`Scheduler`, its thread, its lifecycle and its wake-ups.

It sleeps in ``select`` until the earliest fire time (minus
:data:`~kernelflow.deployments.scheduler.lease.LEAD_S`), a byte on the wake
FIFO or on its own pipe, or the next safety re-read of the store; store
errors a retry can mend are retried, the rest stop it (:attr:`Scheduler.error`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernelflow import settings
from kernelflow.deployments.backends import DefaultBackend, DeploymentBackend
from kernelflow.deployments.execution import RunExecution
from kernelflow.deployments.models import Deployment
from kernelflow.deployments.scheduler.firing import _FiringSchedule, describe_error
from kernelflow.deployments.scheduler.lease import LEAD_S, RESCAN_S, _default_label
from kernelflow.deployments.scheduler.slots import StartedFire, _Queued
from kernelflow.errors import (
    ConfigurationError,
    SchemaTooNewError,
    StoreCorruptError,
    StoreError,
    StoreNotPrivateError,
)

__all__ = ["Scheduler"]

logger = logging.getLogger("kernelflow.deployments.scheduler")

#: Store errors no retry mends (a human must act): they stop the scheduler.
_FATAL_STORE_ERRORS = (StoreCorruptError, StoreNotPrivateError, SchemaTooNewError)


class Scheduler(_FiringSchedule):
    """Runs every active deployment of the store on its schedule.

    Parameters
    ----------
    slots
        At most this many notebook runs at once.
    lease_poll
        Seconds between attempts of a standby scheduler to take the lease.
    home
        The store home (default: the active store).
    label
        What this process is, as :func:`lease_holder` reports it (default: the
        program's name and first argument, e.g. ``kernelflow scheduler``).
    warm_workers
        Worker processes kept started ahead of the fires (at most ``slots``;
        0: each try starts a cold worker, its imports first). Each costs
        about 100 MB of memory while it waits.
    backend
        Where each try runs: a :class:`~kernelflow.deployments.backends.DeploymentBackend`
        (default: :class:`~kernelflow.deployments.backends.DefaultBackend`,
        on Dask for a deployment deployed with ``--dask ADDRESS``, else locally).

    Examples
    --------
    >>> scheduler = Scheduler(slots=2)  # doctest: +SKIP
    >>> scheduler.start()                # returns at once; runs in a thread
    >>> scheduler.stop()                 # waits for runs in progress
    """

    def __init__(
        self,
        slots: int = 4,
        lease_poll: float = 0.5,
        home: str | os.PathLike[str] | None = None,
        label: str | None = None,
        warm_workers: int = 1,
        backend: DeploymentBackend | None = None,
    ) -> None:
        from kernelflow._durations import check_seconds
        from kernelflow.deployments.models import check_count

        self.slots = check_count(slots, "slots", 1)
        self.warm_workers = min(check_count(warm_workers, "warm_workers", 0), self.slots)
        self.lease_poll = check_seconds(lease_poll, "lease_poll")
        self.home = settings.StorePaths(settings.home() if home is None else Path(home))
        self.label = label or _default_label()
        if backend is None:
            backend = DefaultBackend()
        elif not isinstance(backend, DeploymentBackend):
            raise ConfigurationError(
                f"backend: {backend!r} is not a DeploymentBackend; pass an instance of a "
                "kernelflow.deployments.backends.DeploymentBackend subclass"
            )
        #: Where each try runs (see :mod:`kernelflow.deployments.backends`).
        self.backend: DeploymentBackend = backend
        self.active = threading.Event()
        self._stopping = threading.Event()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._lease_fd: int | None = None
        self._fifo_fd: int | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._lock = threading.Lock()
        self._deployments: dict[str, Deployment] = {}
        self._heap: list[tuple[float, int, str, int]] = []
        self._versions: dict[str, int] = {}
        self._seq = 0
        self._queue: list[_Queued] = []
        self._running: dict[str, tuple[threading.Thread, RunExecution]] = {}
        self._threads: list[threading.Thread] = []  #: run threads, until their files are written
        self._known_runs: set[str] = set()
        self._error: BaseException | None = None
        #: deployment id -> (its ``updated`` stamp, why it is left alone) for broken ones.
        self._broken: dict[str, tuple[float, str]] = {}
        #: How each started try began (see :class:`StartedFire`).
        self.started_fires: list[StartedFire] = []
        self._standby: Any = None  #: the pre-started workers, while active
        self._on_idle: Callable[[], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start scheduling in a background thread (returns at once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._thread_main, name="kernelflow-scheduler", daemon=True
        )
        self._thread.start()

    def stop(
        self, cancel_running: bool = False, timeout: float | None = None, wait: bool = True
    ) -> None:
        """Stop firing, release the lease, then finish what this scheduler claimed.

        Parameters
        ----------
        cancel_running
            Cancel the runs in progress and release the queued fires to the
            next scheduler; otherwise both are run to their end.
        timeout
            Seconds to wait for that (None: as long as it takes).
        wait
            False: return at once (e.g. from a signal handler); :meth:`wait` later.
        """
        if cancel_running:
            self._cancel.set()
        self._stopping.set()
        self._wake()
        if wait:
            self.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the scheduler's thread ends; True if it has ended (or never started)."""
        if self._thread is None or threading.current_thread() is self._thread:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run(self, duration: float | None = None, once: bool = False) -> None:
        """Schedule in this thread for ``duration`` seconds (None: until :meth:`stop`).

        With ``once``: take the lease if free, do what is due now (missed slots
        by the catch-up policy, queued fires, retries of crashed runs), wait for
        those runs, return.
        """
        if once:
            self._main(once=True)
            return
        if duration is not None:
            from kernelflow._durations import check_seconds

            duration = check_seconds(duration, "duration", allow_zero=True)
        self.start()
        try:
            if self._thread is not None:
                self._thread.join(duration)
        finally:
            self.stop()
        if self._error is not None:
            raise self._error

    @property
    def error(self) -> BaseException | None:
        """The error that stopped the scheduler's thread, if any."""
        return self._error

    @property
    def broken(self) -> dict[str, str]:
        """Deployment id -> why this scheduler leaves that deployment alone."""
        return {dep_id: why for dep_id, (_, why) in self._broken.items()}

    @property
    def warm_pids(self) -> list[int]:
        """Process ids of the pre-started workers waiting for a job (see ``warm_workers``)."""
        return self._standby.pids if self._standby is not None else []

    @property
    def running_runs(self) -> list[str]:
        """Ids of the runs this scheduler is executing."""
        with self._lock:
            return list(self._running)

    # -- the loop -------------------------------------------------------------------------
    def _thread_main(self) -> None:
        try:
            self._main()
        except BaseException:  # recorded in self._error and logged by _main: the owner reports it
            pass

    def _main(self, once: bool = False) -> None:
        previous = settings.use_home(self.home.home)
        try:
            while not self._stopping.is_set():
                if self._take_lease():
                    break
                if once:
                    logger.info("kernelflow: another scheduler is active; nothing to do")
                    return
                self._stopping.wait(self.lease_poll)
            else:
                return
            self.active.set()
            from kernelflow.store.compactor import start_background_compaction

            try:
                if not once and self.warm_workers:
                    from kernelflow.deployments.standby import StandbyWorkers

                    # First: their imports overlap with taking over.
                    self._standby = StandbyWorkers(self.warm_workers, self.home.home)
                    self._standby.start()
                start_background_compaction()  # a bad KERNELFLOW_COMPACT_SECONDS stops us here
                self._retrying(self._take_over)
                if once:
                    # Catch-up (slots before now), queued fires and retries; no new slots.
                    self._start_queued()
                    while self._queue and not self._stopping.is_set():
                        select.select([self._wake_r], [], [], 1.0)  # a run ended: room?
                        _drain_fd(self._wake_r)
                        self._start_queued()
                else:
                    self._loop()
            finally:
                if self._standby is not None:
                    # Runs started while stopping start cold: nothing is left behind.
                    self._standby.close()
                # The lease goes first: a standby takes over while we finish what we
                # claimed (each try is claimed once, so it never runs twice).
                self._release()
                self._drain()
                from kernelflow.store.compact import compact

                with contextlib.suppress(Exception):
                    compact()
        except BaseException as exc:
            self._error = exc
            # One line; the traceback only for debugging (it is a bug unless ours).
            logger.error("kernelflow: the scheduler stopped: %s", describe_error(exc))
            logger.debug("kernelflow: the scheduler's error", exc_info=exc)
            raise
        finally:
            settings.use_home(previous)

    def _retrying(self, step: Callable[[], None]) -> bool:
        """Run ``step``; on a store error a retry can mend, wait 1 s and run it again.

        Returns False if the scheduler was stopped before ``step`` succeeded.
        """
        while not self._stopping.is_set():
            try:
                step()
                return True
            except _FATAL_STORE_ERRORS:
                raise
            except StoreError as exc:
                # E.g. another program holds the database: nothing was claimed, so what
                # was due is still due; try again shortly rather than stop scheduling.
                logger.warning(
                    "kernelflow: the scheduler cannot use the store (%s); retrying in 1 s", exc
                )
                self._stopping.wait(1.0)
        return False

    def _step(self) -> None:
        self._take_cancel_requests()
        now = time.time()
        self._fire_due(now)
        self._start_queued()
        self._mark_late_queued(now)

    def _loop(self) -> None:
        last_scan = time.monotonic()
        while not self._stopping.is_set():
            if not self._retrying(self._step):
                break
            now = time.time()
            timeout = RESCAN_S - (time.monotonic() - last_scan)
            with self._lock:
                if self._heap:
                    timeout = min(timeout, self._heap[0][0] - LEAD_S - time.time())
                for item in self._queue:
                    if item.run.state is not None and item.run.state.name != "Late":
                        timeout = min(timeout, item.scheduled_time + item.deployment.grace - now)
            timeout = max(0.0, timeout)
            fds = [self._wake_r] + ([self._fifo_fd] if self._fifo_fd is not None else [])
            ready, _, _ = select.select(fds, [], [], timeout)
            changed = False
            for fd in ready:
                _drain_fd(fd)
                changed = changed or fd == self._fifo_fd
            if changed or time.monotonic() - last_scan >= RESCAN_S:
                last_scan = time.monotonic()
                self._retrying(self._reload)

    def _drain(self) -> None:
        """Finish what this scheduler claimed, so no fire it claimed is left Scheduled.

        Graceful: wait for runs in progress and start the queued fires as room
        frees (a standby that took the lease may start some first; each try is
        claimed once). Cancelling: cancel the runs, release the queued fires
        to the next scheduler. Then wait for the runs' workers to exit.
        """
        starting = True
        while True:
            if self._cancel.is_set():
                self._release_queued()
            elif starting:
                try:
                    self._start_queued()
                except StoreError as exc:
                    logger.warning(
                        "kernelflow: cannot start the queued runs while stopping (%s); "
                        "the next scheduler takes them over",
                        exc,
                    )
                    starting = False
                    self._release_queued()
            with self._lock:
                threads = [t for t in self._threads if t.is_alive()]
                self._threads = threads
                executions = [e for _, e in self._running.values()]
                queued = bool(self._queue)
            if not threads and not queued:
                break
            if self._cancel.is_set():
                for execution in executions:
                    execution.cancel.set()
            # A run thread writes to our pipe when it ends: there may be room now.
            select.select([self._wake_r], [], [], 0.5)
            _drain_fd(self._wake_r)


def _drain_fd(fd: int) -> None:
    with contextlib.suppress(BlockingIOError, OSError):
        while os.read(fd, 4096):
            pass
