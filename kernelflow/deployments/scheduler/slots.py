"""The scheduler's run slots: claiming fires, queueing them, starting tries on workers.

At most ``slots`` runs execute at once, and at most a deployment's ``limit``
of its own; a fire that finds no room waits in a queue and turns Late after
the deployment's grace period. Each started try runs in a thread of its own
(:class:`~kernelflow.deployments.execution.RunExecution`), on a pre-started
worker when one waits. Cancelling a run (:meth:`_RunSlots.cancel`, or
:func:`request_cancel` from another process) and ``--after`` triggers live
here too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelflow import settings
from kernelflow.deployments import records
from kernelflow.deployments.backends import DeploymentBackend
from kernelflow.deployments.execution import RunExecution, create_run
from kernelflow.deployments.models import UPSTREAM_PARAMETER, Deployment
from kernelflow.deployments.scheduler.lease import _Lease
from kernelflow.errors import StoreError
from kernelflow.runs import FlowRun, new_id
from kernelflow.states import State, StateType

__all__ = [
    "CANCEL_DIR",
    "StartedFire",
    "after_hook",
    "cancel_requests_dir",
    "request_cancel",
    "trigger_after",
]

logger = logging.getLogger("kernelflow.deployments.scheduler")

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


class _RunSlots(_Lease):
    """The run slots part of :class:`~kernelflow.deployments.scheduler.Scheduler`."""

    slots: int
    started_fires: list[StartedFire]
    _lock: threading.Lock
    _cancel: threading.Event
    _wake_w: int
    _deployments: dict[str, Deployment]
    _queue: list[_Queued]
    _running: dict[str, tuple[threading.Thread, RunExecution]]
    _threads: list[threading.Thread]
    _known_runs: set[str]
    _standby: Any
    backend: DeploymentBackend

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b".")

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
            backend=self.backend,
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
                execution.wait_for_files()  # a stopping scheduler waits for the workers too

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


def cancel_requests_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """``<home>/deployments/cancel``: one file per run another process asks to cancel."""
    base = settings.home() if home is None else Path(home)
    return base / "deployments" / CANCEL_DIR


def request_cancel(run_id: str) -> None:
    """Ask the lease holder (another process) to cancel run ``run_id``; wake it."""
    from kernelflow.deployments.wake import signal_change

    folder = cancel_requests_dir()
    settings.paths().ensure(folder)
    settings.write_private(folder / run_id, b"")
    signal_change()


def trigger_after(deployment: Deployment, upstream: FlowRun, signal: bool = True) -> _Queued | None:
    """Claim a run of ``deployment`` because ``upstream`` completed; wake the scheduler.

    The upstream run's id goes in as the ``upstream_run_id`` parameter (given
    to the notebook when its ``parameters`` cell declares it).
    """
    from kernelflow.deployments.wake import signal_change

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
