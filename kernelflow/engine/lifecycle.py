"""The run lifecycle shared by every kind of flow run: created, tries, interrupted.

A ``@flow`` run (:mod:`kernelflow.engine.flow_attempt`), a notebook session's
run (:mod:`kernelflow.kernel.session`) and a deployment run
(:mod:`kernelflow.deployments.execution`) are recorded, start their tries and
end when interrupted the same way; the helpers here are that one way. Each
state still goes through :func:`~kernelflow.engine.transitions.set_state`.
"""

from __future__ import annotations

import time
from typing import Any

from kernelflow.engine.transitions import _finished_log, set_state
from kernelflow.errors import StoreError
from kernelflow.runs import FlowRun, TaskRun
from kernelflow.states import Cancelled, Crashed, Failed, Retrying, Running, State
from kernelflow.store.events import flow_run_created

__all__ = [
    "adopt_running",
    "crash_needs_recording",
    "enter_try",
    "exception_to_state",
    "interrupted_state",
    "log_finished",
    "record_flow_run",
    "record_interrupted",
    "short_repr",
]


def record_flow_run(
    run: FlowRun,
    state: State,
    parameters: dict[str, Any],
    *,
    version: str | None = None,
) -> State:
    """Journal the creation of ``run`` (its ``flow_run`` event) together with its first state.

    ``parameters`` are the values recorded for the run (a ``@flow``'s as
    :func:`short_repr` texts).
    """
    created = flow_run_created(
        id=run.id,
        flow_name=run.flow_name,
        name=run.name,
        version=version,
        parent_flow_run_id=run.parent_flow_run_id,
        parent_task_run_id=run.parent_task_run_id,
        deployment_id=run.deployment_id,
        parameters=parameters,
        tags=run.tags,
        t=time.time(),
    )
    return set_state("flow", run, state, before=[created])


def enter_try(
    kind: str,
    run: FlowRun | TaskRun,
    run_count: int,
    retrying: bool,
    message: str | None = None,
    before: list[Any] | None = None,
) -> State:
    """Start try ``run_count`` of ``run``: Running, or Retrying when ``retrying``.

    The run's start time is that of its first try: the time of its first Running state.
    """
    run.run_count = run_count
    state = Retrying(message) if retrying else Running(message)
    if run.start_time is None:
        run.start_time = state.timestamp  # the same float: its journal text is made once
    return set_state(kind, run, state, before=before)


def adopt_running(run: FlowRun, message: str) -> None:
    """Show ``run`` as in its first try, in memory only: another process owns its states.

    For a kernel that executes a deployment run: the scheduler that launched
    it recorded the run Running; the kernel's tasks only need to see that.
    """
    run.run_count = 1
    run.start_time = time.time()
    run.state = Running(message=message)


def log_finished(kind: str, run: FlowRun | TaskRun, state: State) -> None:
    """Log the run's "Finished in state ..." line (console only), as Prefect prints it."""
    _finished_log(kind, run, state)


def interrupted_state(exc: BaseException) -> State:
    """The final state of a run that ``exc`` interrupted.

    The stop button (KeyboardInterrupt) is the user cancelling, as in Prefect's
    UI: Cancelled. Anything else (SystemExit, a killed worker) is Crashed.
    """
    if isinstance(exc, KeyboardInterrupt):
        return Cancelled(message="Cancelled by an interrupt (KeyboardInterrupt)")
    return Crashed(message=f"Interrupted by {type(exc).__name__}")


def crash_needs_recording(run: FlowRun | TaskRun, exc: BaseException) -> bool:
    """Whether a run that ``exc`` interrupted still needs its Crashed state written.

    Not when it already ended, nor when recording is what failed (the journal
    is full or unwritable: :class:`StoreError` from :func:`set_state`): that
    write would fail too, and bury the one clear error under a second
    traceback. Such a run is marked Crashed once this process has exited,
    like any run a process left unfinished.
    """
    if run.state is not None and run.state.is_final():
        return False
    return not isinstance(exc, StoreError)


def record_interrupted(
    kind: str, run: FlowRun | TaskRun, exc: BaseException, state: State | None = None
) -> None:
    """Put a run that ``exc`` interrupted in ``state`` (default :func:`interrupted_state`),
    if it still needs one (see :func:`crash_needs_recording`)."""
    if crash_needs_recording(run, exc):
        set_state(kind, run, interrupted_state(exc) if state is None else state)


def exception_to_state(exc: BaseException, prefix: str) -> State:
    """The Failed state for an exception raised by user code.

    Prefect's format: the prefix, a space, ``Type: message``, e.g. ``Task run
    encountered an exception ValueError: nope`` or ``Flow run encountered an
    exception: ValueError: boom``.
    """
    return Failed(message=f"{prefix} {type(exc).__name__}: {exc}", data=exc)


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to 200 characters, as a run's parameters are recorded."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:199] + "…"
