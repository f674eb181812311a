"""The scheduler: fires deployments on time, exactly once, with one active instance per store.

Design
------
*One active scheduler.* Any number may run against a store; the active one
holds an ``fcntl.flock`` on ``<home>/scheduler.lock`` (the lease). The
kernel releases it when the holder dies, however it dies, and a standby
polling every :attr:`Scheduler.lease_poll` seconds takes over. Taking over
starts with a compaction, which marks the runs of a dead scheduler Crashed.

*Every fire claimed once.* Before a slot runs, its (deployment, scheduled
time) row is inserted into ``deployment_fires`` (see
:mod:`kernelflow.deployments.records`); a slot someone already claimed is
never run again, even across restarts. Each try is claimed the same way.

*No polling.* The active scheduler keeps a heap of next fire times and
sleeps in ``select`` until the earliest, or until a byte arrives on the FIFO
``<home>/deployments/wake.fifo`` (written by deploy, pause, ``deployment
run``...), or on its own pipe (a run finished, stop was called). A safety
re-read of the store happens every :data:`RESCAN_S` seconds.

*On taking over* it catches up missed slots per deployment
(:mod:`kernelflow.deployments.catchup`), starts fires other processes
claimed but did not start (``deployment run`` without waiting, ``--after``
triggers, a dead scheduler's queue), and retries Crashed runs that have
tries left. A schedule slot that was claimed but not started within the
deployment's grace period turns Late, then follows the catch-up policy
together with the slots nobody claimed: nothing stays Scheduled in the past.

Runs execute concurrently, at most ``slots`` at once and at most a
deployment's ``limit`` of its own; a fire that finds no room waits in a
queue and turns Late after the deployment's grace period.

*Starting on time.* The active scheduler keeps ``warm_workers`` worker
processes that have imported papermill and wait for a job
(:mod:`kernelflow.deployments.standby`); a fire hands its try to one, which
asks for the notebook's kernel within milliseconds instead of after the
imports of a cold worker (~0.5 s of CPU, seconds on a busy machine), and a
replacement starts at once. Each worker
runs one try and exits. The waiting ones are killed when the scheduler stops
and end by themselves if it dies. :attr:`Scheduler.started_fires` records
when each try reached each step.

*Who holds the lease.* The holder writes its pid into the lease file and
one JSON line beside it, ``<home>/scheduler.holder`` (pid, host, a process
label such as ``jupyter server`` or ``kernelflow scheduler``, and since
when); :func:`lease_holder` reads them for ``GET scheduler``, and checks the
flock itself, so a holder killed with ``kill -9`` (whose files stay behind)
is not reported.

*Cancelling a run.* :meth:`Scheduler.cancel` cancels a run this scheduler
executes or queues: Cancelling, then its notebook process tree is killed and
the run ends Cancelled through :class:`RunExecution`. Another process asks
the holder with :func:`request_cancel`: a file named after the run in
``<home>/deployments/cancel/`` and a byte on the wake FIFO; the holder picks
it up at once.

*Stopping* releases the lease first. A graceful stop then finishes what
this scheduler claimed: runs in progress, and the queued fires, started as
room frees. A cancelling stop (Ctrl-C) cancels the runs in progress and
releases the queued fires for the next scheduler.

*One bad deployment stops nothing.* A deployment whose stored definition
cannot be used (see :attr:`Deployment.problem`), or whose scheduling fails,
is logged once and left alone; the others keep firing. Only an error of the
loop itself (a store that needs a human: corrupt, shared, too new) stops
the scheduler, and :attr:`Scheduler.error` says why.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import heapq
import json
import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelflow import settings
from kernelflow.deployments import records
from kernelflow.deployments.catchup import plan_catchup, split_by_policy
from kernelflow.deployments.execution import RunExecution, create_run, resume_run
from kernelflow.deployments.models import UPSTREAM_PARAMETER, Deployment
from kernelflow.errors import (
    SchemaTooNewError,
    StoreCorruptError,
    StoreError,
    StoreNotPrivateError,
)
from kernelflow.runs import FlowRun, new_id
from kernelflow.states import State, StateType

__all__ = [
    "CANCEL_DIR",
    "Scheduler",
    "StartedFire",
    "after_hook",
    "cancel_requests_dir",
    "lease_holder",
    "request_cancel",
    "trigger_after",
]

logger = logging.getLogger("kernelflow.deployments.scheduler")

#: Seconds between safety re-reads of the store while nothing wakes the scheduler.
RESCAN_S = 60.0
#: Seconds before its scheduled time a fire is claimed and prepared, so that its
#: notebook process starts on time (the run waits for the instant itself). The claim
#: may wait for the store's lock while another process compacts: this absorbs it.
LEAD_S = 2.0
#: Store errors no retry mends (a human must act): they stop the scheduler.
_FATAL_STORE_ERRORS = (StoreCorruptError, StoreNotPrivateError, SchemaTooNewError)
#: Fire kinds that are schedule slots (the catch-up policy applies to them when Late).
_SLOT_FIRES = ("scheduled", "catchup")
#: The file beside the lease saying who holds it (see :func:`lease_holder`).
HOLDER_FILE = "scheduler.holder"
#: Folder under ``<home>/deployments`` where other processes ask the holder to cancel a run.
CANCEL_DIR = "cancel"
#: Seconds after which a cancel request for a run the holder does not know is dropped.
CANCEL_REQUEST_TTL_S = 600.0


@dataclass
class _Queued:
    deployment: Deployment
    run: FlowRun
    scheduled_time: float
    parameters: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    claimed: bool = False  #: whether ``attempt`` is already claimed


@dataclass(frozen=True)
class StartedFire:
    """When one try of a fire reached each step of its start (epoch seconds).

    ``kernel_requested`` is the start: papermill has read and parameterized
    the notebook, written the output's first version and asked jupyter_client
    for the kernel. None where the try never got that far.
    """

    deployment: str  #: the deployment's name
    scheduled_time: float  #: when the fire was due
    attempt: int  #: the try
    pid: int | None  #: the worker process that ran it
    sent: float | None  #: the job was handed to the worker
    worker_started: float | None  #: the worker process began
    received: float | None  #: the worker had its imports done and the job
    kernel_requested: float | None  #: papermill asked for the kernel
    kernel_ready: float | None  #: the kernel answered; the first cell runs next
    standby: bool  #: the worker was pre-started and ready before the job was sent


class Scheduler:
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
    ) -> None:
        from kernelflow._durations import check_seconds
        from kernelflow.deployments.models import check_count

        self.slots = check_count(slots, "slots", 1)
        self.warm_workers = min(check_count(warm_workers, "warm_workers", 0), self.slots)
        self.lease_poll = check_seconds(lease_poll, "lease_poll")
        self.home = settings.StorePaths(settings.home() if home is None else Path(home))
        self.label = label or _default_label()
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

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b".")

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
            from kernelflow.store.compact import start_background_compaction

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
        to the next scheduler. Then wait for the runs' HTML copies.
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

    def _release_queued(self) -> None:
        """Hand the queued fires to the next scheduler: tries we claimed are given back."""
        with self._lock:
            queued, self._queue = self._queue, []
        for item in queued:
            if item.claimed:
                try:
                    records.release_attempt(item.run.id, item.attempt)
                except StoreError as exc:
                    logger.warning(
                        "kernelflow: %s: cannot release run %s (%s)",
                        item.deployment.name,
                        item.run.id,
                        exc,
                    )
        if queued:
            logger.info("kernelflow: %d queued run(s) left for the next scheduler", len(queued))

    # -- cancelling ------------------------------------------------------------------------
    def cancel(self, run_id: str, message: str = "Cancelled on request") -> bool:
        """Cancel run ``run_id`` if this scheduler executes or queues it; True if it does.

        A run in progress goes Cancelling; its notebook process tree is killed
        and the run ends Cancelled (with ``message``) through its execution.
        A queued run ends Cancelled at once, never started.
        """
        from kernelflow.engine import set_state
        from kernelflow.states import Cancelled, Cancelling

        with self._lock:
            running = self._running.get(run_id)
            queued = next((q for q in self._queue if q.run.id == run_id), None)
            if running is None and queued is not None:
                self._queue.remove(queued)
        if running is not None:
            _, execution = running
            state = execution.run.state
            if state is not None and state.is_final():
                return True  # it ended just now: nothing left to cancel
            if not execution.cancel.is_set():
                execution.cancel_message = message
                set_state("flow", execution.run, Cancelling(message="Cancel requested"))
                execution.cancel.set()
            return True
        if queued is None:
            return False
        if not queued.claimed and not records.claim_attempt(queued.run.id, queued.attempt):
            return False  # another process started it meanwhile: it is theirs to cancel
        set_state("flow", queued.run, Cancelled(message=f"{message} before it started"))
        self._wake()
        return True

    def _take_cancel_requests(self) -> None:
        """Act on the cancel requests other processes left for the lease holder."""
        folder = cancel_requests_dir(self.home.home)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return
        now = time.time()
        for name in names:
            path = folder / name
            if self.cancel(name, "Cancelled on request"):
                path.unlink(missing_ok=True)
                continue
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > CANCEL_REQUEST_TTL_S:
                    path.unlink()  # a run that is not ours (or over): the request is stale

    # -- the lease ------------------------------------------------------------------------
    @property
    def lease_path(self) -> Any:
        """``<home>/scheduler.lock``: the file whose flock makes a scheduler the active one."""
        return self.home.home / "scheduler.lock"

    def _take_lease(self) -> bool:
        self.home.ensure()
        fd = settings.open_private(self.lease_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lease_fd = fd
        holder = {
            "pid": os.getpid(),
            "host": os.uname().nodename,
            "process": self.label,
            "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            settings.write_private(self.home.home / HOLDER_FILE, json.dumps(holder).encode())
        except OSError as exc:  # only ``GET scheduler`` misses it; scheduling goes on
            logger.warning("kernelflow: cannot record the scheduler's holder: %s", exc)
        return True

    def _release(self) -> None:
        from kernelflow.store.compact import compact

        with contextlib.suppress(Exception):
            compact()  # our events in the store before another scheduler reads it
        if self._fifo_fd is not None:
            os.close(self._fifo_fd)
            self._fifo_fd = None
        if self._lease_fd is not None:
            (self.home.home / HOLDER_FILE).unlink(missing_ok=True)
            os.ftruncate(self._lease_fd, 0)
            os.close(self._lease_fd)  # releases the flock
            self._lease_fd = None
        self.active.clear()

    def _open_fifo(self) -> None:
        from kernelflow.deployments.registry import WAKE_FIFO, deployments_dir

        if self._fifo_fd is not None:
            return  # taking over again after a store error

        folder = deployments_dir()
        self.home.ensure(folder)
        path = folder / WAKE_FIFO
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            pass
        except OSError as exc:  # a file system without FIFOs: the periodic re-read remains
            logger.warning(
                "kernelflow: cannot create %s (%s); changes are seen within %d s",
                path,
                exc.strerror,
                RESCAN_S,
            )
            return
        # Read-write: the FIFO then always has a writer (us), so select never sees EOF.
        self._fifo_fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    # -- taking over ----------------------------------------------------------------------
    def _take_over(self) -> None:
        from kernelflow.store.compact import compact

        compact()  # a dead scheduler's runs become Crashed here
        self._open_fifo()
        now = time.time()
        deployments = {d.id: d for d in records.load_deployments()}
        last = records.last_slots()
        with self._lock:
            self._deployments = deployments
        late = self._recover(now)
        for deployment in deployments.values():
            if not self._usable(deployment):
                continue
            pending = late.pop(deployment.id, [])
            if deployment.paused or deployment.schedule() is None:
                self._isolated(deployment, "catching up", self._settle_late, deployment, pending)
                continue
            cursor = max(last.get(deployment.id, 0.0), deployment.updated)
            if self._isolated(
                deployment, "catching up", self._catch_up, deployment, cursor, now, pending
            ):
                self._isolated(deployment, "scheduling", self._schedule_next, deployment, now)

    # -- one deployment at a time ------------------------------------------------------------
    def _usable(self, deployment: Deployment) -> bool:
        """Whether to schedule ``deployment``: not broken (stored so, or failing here)."""
        if deployment.problem is not None:
            self._mark_broken(deployment, deployment.problem)
            return False
        seen = self._broken.get(deployment.id)
        if seen is not None and seen[0] == deployment.updated:
            return False  # failed here before; a new deploy (a new stamp) tries again
        self._broken.pop(deployment.id, None)
        return True

    def _mark_broken(self, deployment: Deployment, why: str) -> None:
        """Leave ``deployment`` alone until it is deployed again; say so once."""
        seen = self._broken.get(deployment.id)
        if seen is None or seen[0] != deployment.updated:
            logger.error("kernelflow: %s is not scheduled: %s", deployment.name, why)
        self._broken[deployment.id] = (deployment.updated, why)
        self._versions[deployment.id] = self._versions.get(deployment.id, 0) + 1

    def _isolated(
        self, deployment: Deployment, what: str, step: Callable[..., Any], *args: Any
    ) -> bool:
        """Run ``step`` for one deployment; its failure stops that deployment, not the others.

        Store errors are the loop's (every deployment needs the store) and propagate.
        """
        try:
            step(*args)
            return True
        except StoreError:
            raise
        except Exception as exc:  # recorded: the deployment is left alone and listed as broken
            why = f"{what} failed: {describe_error(exc)}"
            logger.debug("kernelflow: %s: %s", deployment.name, why, exc_info=exc)
            self._mark_broken(deployment, why)
            return False

    def _catch_up(
        self,
        deployment: Deployment,
        cursor: float,
        now: float,
        late: list[_Queued] | None = None,
    ) -> None:
        """Slots missed since ``cursor``, and ``late`` claimed ones, by the catch-up policy."""
        schedule = deployment.schedule()
        assert schedule is not None
        plan = plan_catchup(schedule, cursor, now, deployment.catchup, deployment.max_catchup)
        late = late or []
        if late:
            # Claimed-but-unstarted slots are missed slots too: one policy over both.
            missed = [item.scheduled_time for item in late] + plan.run + plan.skip
            run, _ = split_by_policy(missed, deployment.catchup, deployment.max_catchup)
            keep = set(run)
            plan.run = [t for t in plan.run + plan.skip if t in keep]
            plan.skip = [t for t in plan.skip if t not in keep]
            self._settle_late(deployment, late, keep)
        if plan.skip:
            ids = {when: new_id() for when in plan.skip}
            got = records.claim_skipped(deployment.id, ids.items())
            for when in got:
                _record_skipped(deployment, when, ids[when])
            if got or plan.omitted:
                logger.info(
                    "kernelflow: %s: %d missed slot(s) recorded as Skipped%s",
                    deployment.name,
                    len(got),
                    f" ({plan.omitted} older ones not recorded)" if plan.omitted else "",
                )
        for when in sorted(plan.run):
            self._fire(deployment, when, "catchup")

    def _settle_late(
        self, deployment: Deployment, late: list[_Queued], keep: set[float] | None = None
    ) -> None:
        """Late claimed slots: each becomes Late, then runs if in ``keep``, else Skipped.

        Each try is claimed first, so a slot another scheduler is starting
        right now (one that is stopping gracefully) is left to it.
        """
        if keep is None:
            runnable = not deployment.paused and deployment.schedule() is not None
            times = [item.scheduled_time for item in late]
            run, _ = split_by_policy(times, deployment.catchup, deployment.max_catchup)
            keep = set(run) if runnable else set()
        for item in sorted(late, key=lambda q: q.scheduled_time):
            if not item.claimed and not records.claim_attempt(item.run.id, item.attempt):
                continue
            item.claimed = True
            execution = RunExecution(deployment, item.run, item.scheduled_time)
            execution.mark_late()
            if item.scheduled_time in keep:
                self._enqueue(item)
            else:
                why = "paused" if deployment.paused else f"--catchup {deployment.catchup}"
                execution.skip(f"Claimed but not started before its scheduler stopped ({why})")

    def _recover(self, now: float | None = None) -> dict[str, list[_Queued]]:
        """Start fires nobody started, and retry dead processes' runs that have tries left.

        Returns the schedule slots among them that are Late (not started within
        the grace period), by deployment id: the catch-up policy decides those.
        """
        from kernelflow.store.compact import compact

        now = time.time() if now is None else now
        compact()
        with self._lock:
            deployments = dict(self._deployments)
            known = set(self._known_runs)
        late: dict[str, list[_Queued]] = {}
        for fire in records.unstarted_fires():
            deployment = deployments.get(fire["deployment_id"])
            if deployment is None or fire["flow_run_id"] in known or not self._usable(deployment):
                continue
            run = _existing_or_new_run(deployment, fire)
            item = _Queued(deployment, run, fire["scheduled_time"], fire["parameters"])
            with self._lock:
                self._known_runs.add(run.id)
            if fire["kind"] in _SLOT_FIRES and now - fire["scheduled_time"] > deployment.grace:
                late.setdefault(deployment.id, []).append(item)
            else:
                self._enqueue(item)
        for row in records.orphaned_runs():
            deployment = deployments.get(row["deployment_id"])
            if deployment is None or row["id"] in known or not self._usable(deployment):
                continue
            if row["unstarted"]:
                # Its try was claimed by a process that died before starting it.
                attempt = int(row["attempts"])
                if not records.take_over_attempt(row["id"], attempt, row["process"]):
                    continue
                item = _Queued(
                    deployment,
                    resume_run(deployment, row),
                    row["scheduled_time"] or now,
                    row["parameters"],
                    attempt,
                    claimed=True,
                )
                with self._lock:
                    self._known_runs.add(row["id"])
                slot = attempt == 1 and row["kind"] in _SLOT_FIRES
                if slot and now - item.scheduled_time > deployment.grace:
                    late.setdefault(deployment.id, []).append(item)
                else:
                    self._enqueue(item)
                continue
            attempt = int(row["attempts"]) + 1
            if not records.claim_attempt(row["id"], attempt):
                continue
            run = resume_run(deployment, row)
            logger.info(
                "kernelflow: %s: run %s was %s; starting try %d",
                deployment.name,
                row["id"],
                row["state_name"],
                attempt,
            )
            self._enqueue(
                _Queued(
                    deployment,
                    run,
                    row["scheduled_time"] or time.time(),
                    row["parameters"],
                    attempt,
                    claimed=True,
                )
            )
        return late

    def _reload(self) -> None:
        """Re-read deployments after a change; reschedule what changed."""
        now = time.time()
        fresh = {d.id: d for d in records.load_deployments()}
        with self._lock:
            old = self._deployments
            self._deployments = fresh
        for dep_id, deployment in fresh.items():
            before = old.get(dep_id)
            if before is not None and before.updated == deployment.updated:
                continue
            if not self._usable(deployment):
                continue
            if deployment.paused or deployment.schedule() is None:
                self._versions[dep_id] = self._versions.get(dep_id, 0) + 1
                continue
            # New, resumed or updated: fire from now on (updated stamps the change).
            self._isolated(
                deployment,
                "scheduling",
                self._schedule_next,
                deployment,
                max(now, deployment.updated) - 1e-6,
            )
        for dep_id in set(old) - set(fresh):
            self._versions[dep_id] = self._versions.get(dep_id, 0) + 1
        for dep_id, late in self._recover(now).items():
            deployment = fresh[dep_id]
            self._isolated(deployment, "catching up", self._settle_late, deployment, late)

    # -- firing ---------------------------------------------------------------------------
    def _schedule_next(self, deployment: Deployment, after: float) -> None:
        schedule = deployment.schedule()
        if schedule is None:
            return
        when = schedule.next_after(dt.datetime.fromtimestamp(after, dt.timezone.utc)).timestamp()
        version = self._versions.get(deployment.id, 0) + 1
        self._versions[deployment.id] = version
        with self._lock:
            self._seq += 1
            heapq.heappush(self._heap, (when, self._seq, deployment.id, version))

    def _fire_due(self, now: float) -> None:
        while True:
            with self._lock:
                if not self._heap or self._heap[0][0] > now + LEAD_S:
                    return
                when, _, dep_id, version = heapq.heappop(self._heap)
                deployment = self._deployments.get(dep_id)
            if deployment is None or self._versions.get(dep_id) != version:
                continue  # superseded by a change, or deleted
            if not deployment.paused:
                try:
                    if not self._isolated(
                        deployment, "firing", self._fire, deployment, when, "scheduled"
                    ):
                        continue  # left alone until deployed again
                except StoreError:
                    with self._lock:  # not claimed: due again on the next try
                        heapq.heappush(self._heap, (when, _, dep_id, version))
                    raise
            self._isolated(deployment, "scheduling", self._schedule_next, deployment, when)

    def _room_for(self, deployment: Deployment) -> bool:
        with self._lock:
            if len(self._running) >= self.slots:
                return False
            if deployment.limit is None:
                return True
            mine = sum(1 for _, e in self._running.values() if e.deployment.id == deployment.id)
            return mine < deployment.limit

    def _fire(
        self,
        deployment: Deployment,
        when: float,
        kind: str,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        run_id = new_id()
        start = self._room_for(deployment) and not self._queue_has(deployment)
        if not records.claim_fire(deployment.id, when, run_id, kind, parameters, start=start):
            logger.debug("kernelflow: %s at %s was claimed already", deployment.name, when)
            return
        run = create_run(deployment, when, parameters or {}, run_id=run_id)
        item = _Queued(deployment, run, when, parameters or {}, 1, claimed=start)
        if start:
            self._start(item)
        else:
            self._enqueue(item)

    def _queue_has(self, deployment: Deployment) -> bool:
        with self._lock:
            return any(q.deployment.id == deployment.id for q in self._queue)

    def _enqueue(self, item: _Queued) -> None:
        with self._lock:
            self._known_runs.add(item.run.id)
            self._queue.append(item)
        self._wake()

    def _start_queued(self) -> None:
        while True:
            with self._lock:
                pick = None
                for i, item in enumerate(self._queue):
                    if self._room_for_locked(item.deployment):
                        pick = self._queue.pop(i)
                        break
            if pick is None:
                return
            if not pick.claimed:
                if not records.claim_attempt(pick.run.id, pick.attempt):
                    continue  # another process started it
                pick.claimed = True
            self._start(pick)

    def _room_for_locked(self, deployment: Deployment) -> bool:
        if len(self._running) >= self.slots:
            return False
        if deployment.limit is None:
            return True
        mine = sum(1 for _, e in self._running.values() if e.deployment.id == deployment.id)
        return mine < deployment.limit

    def _mark_late_queued(self, now: float) -> None:
        with self._lock:
            waiting = [q for q in self._queue if now - q.scheduled_time > q.deployment.grace]
        for item in waiting:
            if item.run.state is not None and item.run.state.name not in (
                "Late",
                "Crashed",
                "AwaitingRetry",
            ):
                RunExecution(item.deployment, item.run, item.scheduled_time).mark_late()

    def _start(self, item: _Queued) -> None:
        execution = RunExecution(
            item.deployment,
            item.run,
            item.scheduled_time,
            item.parameters,
            first_attempt=item.attempt,
            cancel=threading.Event(),
            on_final=self._after_final,
            launcher=self._standby.launch if self._standby is not None else None,
        )
        if self._cancel.is_set():
            execution.cancel.set()

        def target() -> None:
            try:
                execution.execute()
            except Exception:
                logger.exception(
                    "kernelflow: run %s of %s failed to execute", item.run.id, item.deployment.name
                )
            finally:
                with self._lock:
                    self._running.pop(item.run.id, None)
                if execution.worker_started is not None:
                    self.started_fires.append(_started_fire(item, execution))
                self._wake()
                execution.wait_for_files()  # a stopping scheduler waits for the HTML too

        thread = threading.Thread(
            target=target, name=f"kernelflow-run-{item.run.id[-8:]}", daemon=True
        )
        with self._lock:
            self._known_runs.add(item.run.id)
            self._running[item.run.id] = (thread, execution)
            self._threads.append(thread)
        thread.start()

    def _after_final(self, deployment: Deployment, run: FlowRun, state: State) -> None:
        if state.type is not StateType.COMPLETED:
            return
        with self._lock:
            downstream = [
                d for d in self._deployments.values() if d.after == deployment.name and not d.paused
            ]
        for target in downstream:
            queued = trigger_after(target, run, signal=False)
            if queued is not None:
                self._enqueue(queued)


def _started_fire(item: _Queued, execution: RunExecution) -> StartedFire:
    """How the last try of ``execution`` began."""
    timings = execution.worker_timings
    sent, preloaded = timings.get("sent"), timings.get("preloaded")
    return StartedFire(
        deployment=item.deployment.name,
        scheduled_time=item.scheduled_time,
        attempt=execution.run.run_count,
        pid=timings.get("pid"),
        sent=sent,
        worker_started=timings.get("started"),
        received=timings.get("received"),
        kernel_requested=timings.get("kernel_requested"),
        kernel_ready=timings.get("kernel_ready"),
        standby=sent is not None and preloaded is not None and preloaded <= sent,
    )


def _default_label() -> str:
    """``kernelflow scheduler``, ``jupyter-lab``...: the program and its first argument."""
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:2]]
    return " ".join(a for a in argv if not a.startswith("-"))[:80] or "python"


def lease_holder(home: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """Who holds the scheduler lease of the store at ``home`` (default: the active one).

    Returns
    -------
    dict or None
        ``pid``, ``host``, ``process`` (a label such as ``jupyter server``) and
        ``since`` (ISO 8601), or None when no scheduler holds the lease (none
        runs, so deployments do not fire).
    """
    base = settings.home() if home is None else Path(home)
    try:
        fd = os.open(base / "scheduler.lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # no scheduler ever ran on this store
    try:
        try:
            # A shared lock we can take means nobody holds the exclusive one.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            first = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
    finally:
        os.close(fd)
    pid = int(first) if first.isdigit() else None
    holder: dict[str, Any] = {"pid": pid, "host": None, "process": None, "since": None}
    try:
        found = json.loads((base / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        found = None  # an older kernelflow, or the holder is writing it right now
    # Only the current holder's line: a previous holder's may not be removed yet.
    if isinstance(found, dict) and (pid is None or found.get("pid") == pid):
        holder.update({k: found[k] for k in holder if k in found})
    return holder


def cancel_requests_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """``<home>/deployments/cancel``: one file per run another process asks to cancel."""
    base = settings.home() if home is None else Path(home)
    return base / "deployments" / CANCEL_DIR


def request_cancel(run_id: str) -> None:
    """Ask the lease holder (another process) to cancel run ``run_id``; wake it."""
    from kernelflow.deployments.registry import signal_change

    folder = cancel_requests_dir()
    settings.paths().ensure(folder)
    settings.write_private(folder / run_id, b"")
    signal_change()


def describe_error(exc: BaseException) -> str:
    """One line for an error that stopped scheduling: ours as is, anything else as a bug."""
    from kernelflow.errors import KernelflowError

    text = " ".join(str(exc).split())
    if isinstance(exc, KernelflowError):
        return text
    return (
        f"{type(exc).__name__}: {text or 'no message'} (a bug in kernelflow; set "
        "KERNELFLOW_LOGGING_LEVEL=DEBUG for the traceback and report it)"
    )


def _drain_fd(fd: int) -> None:
    with contextlib.suppress(BlockingIOError, OSError):
        while os.read(fd, 4096):
            pass


def _record_skipped(deployment: Deployment, when: float, run_id: str) -> None:
    iso = dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(timespec="seconds")
    state = State(
        StateType.CANCELLED,
        "Skipped",
        f"Slot {iso} was missed while no scheduler ran (--catchup {deployment.catchup})",
    )
    create_run(deployment, when, {}, run_id=run_id, state=state)


def _existing_or_new_run(deployment: Deployment, fire: dict[str, Any]) -> FlowRun:
    """The run of a claimed fire; recorded now if its claimer died before recording it."""
    from kernelflow.store.deployments import recorded_run_name

    name = recorded_run_name(fire["flow_run_id"])
    if name is not None:
        run = resume_run(
            deployment,
            {
                "id": fire["flow_run_id"],
                "name": name,
                "parameters": fire["parameters"],
            },
        )
        from kernelflow.states import Scheduled

        run.state = Scheduled()
        return run
    return create_run(
        deployment, fire["scheduled_time"], fire["parameters"], run_id=fire["flow_run_id"]
    )


def trigger_after(deployment: Deployment, upstream: FlowRun, signal: bool = True) -> _Queued | None:
    """Claim a run of ``deployment`` because ``upstream`` completed; wake the scheduler.

    The upstream run's id goes in as the ``upstream_run_id`` parameter (given
    to the notebook when its ``parameters`` cell declares it).
    """
    from kernelflow.deployments.registry import signal_change

    now = time.time()
    run_id = new_id()
    parameters = {UPSTREAM_PARAMETER: upstream.id}
    if not records.claim_fire(deployment.id, now, run_id, "after", parameters, start=False):
        return None
    run = create_run(
        deployment, now, parameters, run_id=run_id, message=f"After run {upstream.id} completed"
    )
    if signal:
        signal_change()
    return _Queued(deployment, run, now, parameters)


def after_hook(deployment: Deployment, run: FlowRun, state: State) -> None:
    """Outside a scheduler: queue the ``--after`` dependents of a completed run for one."""
    if state.type is not StateType.COMPLETED:
        return
    for target in records.load_deployments():
        if target.after == deployment.name and not target.paused:
            trigger_after(target, run)
