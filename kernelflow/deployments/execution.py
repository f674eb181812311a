"""Driving one deployment run through its states, try after try.

A deployment run is a flow run with ``deployment_id`` set. This module owns
its states, all set through :func:`kernelflow.engine.set_state`::

    Scheduled ─(Late)─ Pending ─ Running ─┬─ Completed
                                          ├─ Failed / TimedOut / Crashed
                                          └─ AwaitingRetry ─ Retrying ─ ...

Each try is claimed once in the store (``deployment_attempts``), then run
by a worker process (:mod:`kernelflow.deployments.runner`) with a fresh
kernel, locally or on a Dask worker (:mod:`kernelflow.deployments.scaleout`).
The database is opened only for the claims, never while the notebook runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from kernelflow import settings
from kernelflow.deployments import records
from kernelflow.deployments.models import UPSTREAM_PARAMETER, Deployment
from kernelflow.errors import ConfigurationError
from kernelflow.runs import FlowRun, new_id, random_run_name
from kernelflow.states import (
    AwaitingRetry,
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Late,
    Pending,
    Scheduled,
    State,
    TimedOut,
)

if TYPE_CHECKING:
    from kernelflow.deployments.backends import DeploymentBackend

__all__ = [
    "RunExecution",
    "create_run",
    "flow_name_of",
    "new_run_id",
    "output_paths",
    "resume_run",
]

logger = logging.getLogger("kernelflow.deployments")

#: Seconds a worker may take beyond the notebook timeout before it is killed from outside.
BACKSTOP_S = 30.0


def flow_name_of(deployment: Deployment) -> str:
    """The flow name of a deployment's runs: the notebook's file name without ``.ipynb``."""
    return Path(deployment.notebook).stem


def output_paths(deployment_name: str, run_id: str) -> tuple[Path, Path]:
    """Where a deployment run's executed notebook and its HTML copy are kept.

    Both are under the store's ``outputs/<deployment>/``, named by the run id.
    The worker writes the notebook (none for a run that never started); the
    HTML copy is made from it when first asked for
    (:mod:`kernelflow.deployments.html_copy`).
    """
    folder = settings.paths().outputs / deployment_name
    return folder / f"{run_id}.ipynb", folder / f"{run_id}.html"


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(timespec="seconds")


def create_run(
    deployment: Deployment,
    scheduled_time: float,
    parameters: dict[str, Any],
    run_id: str | None = None,
    message: str | None = None,
    state: State | None = None,
) -> FlowRun:
    """Record a deployment run, Scheduled unless ``state`` says otherwise.

    Its fire is claimed by the caller first.
    """
    from kernelflow.engine.deployment_runs import create_deployment_flow_run

    if state is None:
        state = Scheduled(message=message or f"Scheduled for {_iso(scheduled_time)}")
    return create_deployment_flow_run(
        flow_name_of(deployment),
        random_run_name(),
        deployment.id,
        {**deployment.parameters, **parameters},
        [*deployment.tags, "deployment"],
        state,
        run_id=run_id,
    )


def resume_run(deployment: Deployment, row: dict[str, Any]) -> FlowRun:
    """The in-memory run for a stored deployment run another process started."""
    run = FlowRun(
        flow_name_of(deployment),
        row["name"] or random_run_name(),
        {**deployment.parameters, **row.get("parameters", {})},
        [*deployment.tags, "deployment"],
        deployment_id=deployment.id,
    )
    run.id = row["id"]
    run.run_count = int(row.get("attempts") or row.get("run_count") or 0)
    run.start_time = row.get("start_time")
    return run


class RunExecution:
    """Runs one deployment run to its final state.

    Parameters
    ----------
    deployment
        What to run.
    run
        The flow run (in state Scheduled, or Crashed/AwaitingRetry when resumed).
    scheduled_time
        When it should have started (epoch seconds), for Late.
    parameters
        Values given for this run, over the deployment's own.
    first_attempt
        The try to start with; it must already be claimed (the fire's claim
        includes try 1; a resumed run claims its next try first).
    cancel
        Set to stop the run: the worker is killed and the run Cancelled.
    on_final
        Called with (deployment, run, state) after the final state is set.
    launcher
        Starts a try's worker for a job (default:
        :func:`kernelflow.deployments.workers.launch`, a cold start; a
        scheduler passes :meth:`StandbyWorkers.launch
        <kernelflow.deployments.standby.StandbyWorkers.launch>`).
    backend
        Where each try runs (default:
        :class:`~kernelflow.deployments.backends.DefaultBackend`, Dask when
        the deployment names a cluster, else a local worker).
    """

    def __init__(
        self,
        deployment: Deployment,
        run: FlowRun,
        scheduled_time: float,
        parameters: dict[str, Any] | None = None,
        first_attempt: int = 1,
        cancel: threading.Event | None = None,
        on_final: Callable[[Deployment, FlowRun, State], None] | None = None,
        launcher: Callable[[dict[str, Any]], Any] | None = None,
        backend: DeploymentBackend | None = None,
    ) -> None:
        self.deployment = deployment
        self.run = run
        self.scheduled_time = scheduled_time
        self.parameters = dict(parameters or {})
        self.first_attempt = first_attempt
        self.cancel = cancel or threading.Event()
        #: Why :attr:`cancel` was set, for the Cancelled state (None: the scheduler stopped).
        self.cancel_message: str | None = None
        self.on_final = on_final
        self.launcher = launcher
        self.backend = backend
        self.worker_started: float | None = None  #: when the worker process began (its clock)
        self.worker_launched: float | None = None  #: when it was launched (our clock)
        #: The last try's worker: its pid, when its job was sent (``sent``) and the
        #: worker's own ``timings`` (see :mod:`kernelflow.deployments.runner`).
        self.worker_timings: dict[str, Any] = {}
        self._worker: Any = None
        self._closers: list[threading.Thread] = []

    # -- states ---------------------------------------------------------------------------
    def _set(self, state: State) -> State:
        from kernelflow.engine.transitions import set_state

        return set_state("flow", self.run, state)

    def _log(self, message: str, level: int = logging.INFO) -> None:
        from kernelflow.logs import run_logger

        run_logger("flow", self.run, "kernelflow.deployments").log(level, message)

    def mark_late(self) -> None:
        """Enter Late (the run has not started within the deployment's grace period)."""
        if self.run.state is None or self.run.state.name != "Late":
            late_by = time.time() - self.scheduled_time
            when = _iso(self.scheduled_time)
            self._set(Late(message=f"Not started {late_by:.1f} s after {when}"))

    def skip(self, message: str) -> State:
        """Enter Skipped (a Cancelled state): the catch-up policy does not run this slot."""
        from kernelflow.states import StateType

        return self._set(State(StateType.CANCELLED, "Skipped", message))

    # -- the run ---------------------------------------------------------------------------
    def execute(self) -> State:
        """Run every try needed; return the final state (never raises for a run's failure)."""
        state: State
        try:
            state = self._execute()
        except BaseException as exc:
            from kernelflow.engine.lifecycle import record_interrupted

            crashed = Crashed(message=f"Interrupted by {type(exc).__name__}: {exc}")
            record_interrupted("flow", self.run, exc, crashed)
            raise
        if self.on_final is not None:
            try:
                self.on_final(self.deployment, self.run, state)
            except Exception:
                logger.exception("kernelflow: after-run hook failed for %s", self.run.id)
        return state

    def _execute(self) -> State:
        deployment = self.deployment
        if time.time() - self.scheduled_time > deployment.grace:
            self.mark_late()
        try:
            parameters = self._checked_parameters()
        except ConfigurationError as exc:
            return self._finish(Failed(message=str(exc)))
        # A scheduler prepares a fire a little ahead (claim, record, check); the
        # notebook itself starts at the scheduled instant.
        if self.cancel.wait(max(0.0, self.scheduled_time - time.time())):
            return self._finish(
                Cancelled(message=self.cancel_message or "The scheduler stopped before this run")
            )
        attempt = self.first_attempt
        while True:
            if self.cancel.is_set():
                return self._finish(
                    Cancelled(
                        message=self.cancel_message or "The scheduler stopped before this try"
                    )
                )
            if attempt > self.first_attempt and not records.claim_attempt(self.run.id, attempt):
                # Another process took this try over; it owns the run from here. The run
                # has a state: the tries before this one set it.
                return cast("State", self.run.state)
            state = self._try(attempt, parameters)
            if state.is_completed() or state.is_cancelled():
                return self._finish(state)
            if attempt >= 1 + deployment.retries:
                return self._finish(state)
            self._set(AwaitingRetry(message=state.message))
            self._log(
                f"Try {attempt} ended {state.name}: {state.message}; retrying in "
                f"{deployment.retry_delay:g} s",
                logging.WARNING,
            )
            if self.cancel.wait(deployment.retry_delay):
                return self._finish(
                    Cancelled(
                        message=self.cancel_message or "The scheduler stopped before the retry"
                    )
                )
            attempt += 1

    def _checked_parameters(self) -> dict[str, Any]:
        """The run's parameters, checked against the snapshot's ``parameters`` cell again."""
        from kernelflow.deployments.parameters import (
            coerce_parameters,
            notebook_parameters,
            read_snapshot,
        )

        deployment = self.deployment
        nb = read_snapshot(deployment.snapshot_path(settings.paths().home))
        given = dict(self.parameters)
        declared = notebook_parameters(nb) or {}
        if UPSTREAM_PARAMETER in given and UPSTREAM_PARAMETER not in declared:
            # The upstream run's id is recorded on the run; the notebook gets it if it asks.
            given.pop(UPSTREAM_PARAMETER)
        where = f"deployment {deployment.name!r}"
        return {**deployment.parameters, **coerce_parameters(nb, given, where)}

    def job(self, attempt: int, parameters: dict[str, Any]) -> dict[str, Any]:
        """The worker's job for try ``attempt``."""
        paths = settings.paths()
        deployment = self.deployment
        notebook, _ = output_paths(deployment.name, self.run.id)
        cwd = Path(deployment.notebook).parent
        return {
            "flow_run_id": self.run.id,
            "flow_run_name": self.run.name,
            "deployment": deployment.name,
            "deployment_id": deployment.id,
            "deployment_version": deployment.content_hash,
            "scheduled_time": self.scheduled_time,
            "attempt": attempt,
            "snapshot": str(deployment.snapshot_path(paths.home)),
            "output": str(notebook),
            "parameters": parameters,
            "kernel": deployment.kernel,
            "timeout": deployment.timeout,
            "cell_timeout": deployment.cell_timeout,
            "cwd": str(cwd) if cwd.is_dir() else str(paths.home),
            "home": str(paths.home),
        }

    def _try(self, attempt: int, parameters: dict[str, Any]) -> State:
        run = self.run
        if run.state is None or (run.state.type.value == "SCHEDULED" and attempt == 1):
            self._set(Pending())
        job = self.job(attempt, parameters)
        from kernelflow.engine.lifecycle import enter_try

        enter_try("flow", run, attempt, attempt != 1)
        from kernelflow.deployments.backends import DefaultBackend

        return (self.backend or DefaultBackend()).run(self, job)

    def state_of(self, outcome: dict[str, Any] | None, code: int | None = None) -> State:
        """The state a worker's ``outcome`` means (None: it ended without one, exit ``code``)."""
        return self._state_of(outcome, code)

    def run_locally(self, job: dict[str, Any]) -> State:
        """Run try ``job`` in a worker process on this machine; the state it ended in.

        What :class:`~kernelflow.deployments.backends.LocalBackend` does.
        """
        if self.launcher is None:
            from kernelflow.deployments.workers import launch

            worker = launch(job)
        else:
            worker = self.launcher(job)
        self.worker_launched = worker.started
        self.worker_timings = {"pid": worker.pid, "sent": worker.sent}
        self._worker = worker
        deadline = None
        if self.deployment.timeout:
            deadline = time.monotonic() + self.deployment.timeout + BACKSTOP_S
        watcher = threading.Thread(target=self._watch_cancel, args=(worker,), daemon=True)
        watcher.start()
        code = None
        try:
            outcome = worker.outcome(deadline)
            backstop = outcome is None and deadline is not None and time.monotonic() >= deadline
            if backstop:
                worker.kill()
            if outcome is None:
                code = worker.close()
            else:
                # The worker ends its kernel and exits now; reaped in the background.
                closer = threading.Thread(
                    target=worker.close, daemon=True, name="kernelflow-worker-exit"
                )
                closer.start()
                self._closers.append(closer)
        finally:
            self._worker = None
        if outcome is None and backstop:
            outcome = {
                "status": "timed_out",
                "output": job["output"],
                "message": (
                    f"Notebook run exceeded timeout of {self.deployment.timeout} second(s); "
                    "the worker did not stop and was killed"
                ),
            }
        return self._state_of(outcome, code)

    def wait_for_files(self, timeout: float = 120.0) -> None:
        """Wait until the workers of the tries have exited (their kernels ended with them)."""
        deadline = time.monotonic() + timeout
        for closer in self._closers:
            closer.join(max(0.0, deadline - time.monotonic()))

    def _watch_cancel(self, worker: Any) -> None:
        while self._worker is worker:
            if self.cancel.wait(0.5):
                if self._worker is worker:
                    worker.kill()
                return

    def _state_of(self, outcome: dict[str, Any] | None, code: int | None) -> State:
        if outcome is None:
            if self.cancel.is_set():
                return Cancelled(
                    message=self.cancel_message or "The scheduler stopped; the notebook was killed"
                )
            return Crashed(
                message=f"The notebook process exited with code {code} before reporting an outcome"
            )
        status = outcome.get("status")
        message = outcome.get("message")
        if outcome.get("started"):
            self.worker_started = outcome["started"]
        if isinstance(outcome.get("timings"), dict):
            self.worker_timings.update(outcome["timings"])
        if status == "completed":
            where = outcome.get("output")
            return Completed(message=f"Output notebook {where}" if where else None)
        if status == "timed_out":
            return TimedOut(message=message)
        if status == "crashed":
            return Crashed(message=message)
        return Failed(message=message)

    def _finish(self, state: State) -> State:
        self._set(state)
        from kernelflow.engine.lifecycle import log_finished

        log_finished("flow", self.run, state)
        if not state.is_completed() and not state.is_cancelled() and self.deployment.notify:
            from kernelflow.deployments.notify import notify_run

            notify_run(self.deployment, self.run, state)
        return state


def new_run_id() -> str:
    """A new flow run id (claimed with its fire before the run is recorded)."""
    return new_id()


def process_label() -> str:
    """``host pid`` of this process, for messages."""
    return f"{os.uname().nodename} pid {os.getpid()}"
