"""The calls users make: pause, suspend and resume a flow run, sync and async."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypeVar, overload

from kernelflow import context
from kernelflow._resume import (
    POLL_SECONDS,
    PauseRecord,
    explain_not_waiting,
    find_pause,
    send_resume,
)
from kernelflow.errors import ConfigurationError, RunInputError
from kernelflow.flow_runs._pause import _Pause

if TYPE_CHECKING:
    from uuid import UUID

__all__ = [
    "apause_flow_run",
    "aresume_flow_run",
    "asuspend_flow_run",
    "pause_flow_run",
    "resume_flow_run",
    "suspend_flow_run",
]

T = TypeVar("T")


# --- pausing --------------------------------------------------------------------
@overload
def pause_flow_run(
    wait_for_input: None = None,
    timeout: float | None = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> None: ...


@overload
def pause_flow_run(
    wait_for_input: type[T],
    timeout: float | None = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> T: ...


def pause_flow_run(
    wait_for_input: Any = None,
    timeout: float | None = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> Any:
    """Pause the current flow run until it is resumed; return the input it was resumed with.

    In an async flow or task this returns a coroutine to await (as Prefect's
    does); see :func:`apause_flow_run`.

    Parameters
    ----------
    wait_for_input
        What to wait for: a :class:`~kernelflow.input.RunInput` subclass,
        another ``pydantic.BaseModel`` subclass, or a type such as ``str``
        (the input is then one field, ``value``). None: wait for a resume only.
    timeout
        Seconds to wait before raising :class:`~kernelflow.errors.FlowPauseTimeout`
        (default one hour); None waits without limit.
    poll_interval
        The longest time between two looks for a resume (kernelflow looks every
        0.2 s at most).
    key
        Names the pause within the current try of the run: a key that already
        fired returns that pause's input at once. Default: the pause's count.

    Returns
    -------
    The input: an instance of the model, or the value for a plain type; None
    without ``wait_for_input``.

    Raises
    ------
    MissingContextError
        Outside a flow run (in a notebook with ``%load_ext kernelflow``, the
        session is one).
    FlowPauseTimeout
        Not resumed within ``timeout``.
    PauseError
        The flow run is paused already (by another thread).

    Examples
    --------
    >>> @flow
    ... def greet():
    ...     name = pause_flow_run(wait_for_input=str)  # resume ID --input value=Ada
    ...     print(f"Hello, {name}!")
    """
    if _in_async_run():
        return apause_flow_run(wait_for_input, timeout, poll_interval, key)
    return _Pause("Paused", wait_for_input, timeout, poll_interval, key).wait()


async def apause_flow_run(
    wait_for_input: Any = None,
    timeout: float | None = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> Any:
    """Pause the current flow run without blocking the event loop (Prefect's name).

    The same as :func:`pause_flow_run`, for async code: waiting sleeps with
    ``asyncio.sleep``, so other coroutines go on.
    """
    return await _Pause("Paused", wait_for_input, timeout, poll_interval, key).wait_async()


@overload
def suspend_flow_run(
    wait_for_input: None = None,
    flow_run_id: UUID | str | None = None,
    timeout: float | None = None,
    key: str | None = None,
) -> None: ...


@overload
def suspend_flow_run(
    wait_for_input: type[T],
    flow_run_id: UUID | str | None = None,
    timeout: float | None = None,
    key: str | None = None,
) -> T: ...


def suspend_flow_run(
    wait_for_input: Any = None,
    flow_run_id: UUID | str | None = None,
    timeout: float | None = None,
    key: str | None = None,
) -> Any:
    """Suspend the current flow run until it is resumed: a pause recorded as ``Suspended``.

    In Prefect, suspending ends the process and a worker restarts the run from
    the top once it is resumed. kernelflow has no worker to do that, so the
    run waits in place exactly as with :func:`pause_flow_run`; only the state
    name (``Suspended``, of type ``PAUSED``) and the default timeout (none)
    differ. In an async flow or task this returns a coroutine to await.

    Parameters
    ----------
    wait_for_input
        As for :func:`pause_flow_run`.
    flow_run_id
        Must be None or the current flow run's id: kernelflow cannot suspend
        another run from outside.
    timeout
        Seconds to wait before raising :class:`~kernelflow.errors.FlowPauseTimeout`;
        None (the default) waits without limit.
    key
        As for :func:`pause_flow_run`.

    Returns
    -------
    The input, as :func:`pause_flow_run` returns it.

    Raises
    ------
    ConfigurationError
        ``flow_run_id`` names another flow run.
    """
    if _in_async_run():
        return asuspend_flow_run(wait_for_input, flow_run_id, timeout, key)
    _check_suspend_target(flow_run_id)
    return _Pause("Suspended", wait_for_input, timeout, POLL_SECONDS, key).wait()


async def asuspend_flow_run(
    wait_for_input: Any = None,
    flow_run_id: UUID | str | None = None,
    timeout: float | None = None,
    key: str | None = None,
) -> Any:
    """Suspend the current flow run without blocking the event loop (Prefect's name).

    The same as :func:`suspend_flow_run`, for async code.
    """
    _check_suspend_target(flow_run_id)
    return await _Pause("Suspended", wait_for_input, timeout, POLL_SECONDS, key).wait_async()


def _check_suspend_target(flow_run_id: UUID | str | None) -> None:
    if flow_run_id is None:
        return
    flow_ctx = context.current_flow_context()
    if flow_ctx is not None and str(flow_run_id) == flow_ctx.flow_run.id:
        return
    raise ConfigurationError(
        f"suspend_flow_run(flow_run_id={str(flow_run_id)!r}): kernelflow can suspend only the "
        "flow run it is called in (there is no worker to stop another run); call "
        "suspend_flow_run() inside that flow."
    )


# --- resuming -------------------------------------------------------------------
def resume_flow_run(flow_run_id: UUID | str, run_input: dict[str, Any] | None = None) -> Any:
    """Resume a paused (or suspended) flow run, in this process or another one.

    Returns once the paused run has accepted the resume: its state is
    ``Running`` again. In an async flow or task this returns a coroutine to
    await (see :func:`aresume_flow_run`); elsewhere the resume is done at once,
    and where an event loop runs (a notebook cell, ``async def``) the returned
    object may also be awaited, as Prefect code does.

    Parameters
    ----------
    flow_run_id
        The paused run's id, or a unique prefix of it.
    run_input
        Field name -> value for the input the run waits for (``{"value": ...}``
        for a plain type). Ignored by a pause without ``wait_for_input``.

    Raises
    ------
    RunInputError
        ``run_input`` does not fit the run's input model (the message names each
        field); the run stays paused.
    NotPausedError
        The run is not paused.
    FlowPauseTimeout
        The run's pause timed out.
    RunNotFoundError
        No flow run has this id.
    PauseError
        The paused process ended, or did not answer within 10 s.

    Examples
    --------
    >>> resume_flow_run("0190c2b4", run_input={"approved": True})  # doctest: +SKIP
    """
    if _in_async_run():
        return aresume_flow_run(flow_run_id, run_input)
    _resume(flow_run_id, run_input, "resume_flow_run()")
    return _Resumed() if _loop_running() else None


async def aresume_flow_run(
    flow_run_id: UUID | str, run_input: dict[str, Any] | None = None
) -> None:
    """Resume a paused flow run from async code (Prefect's name); see :func:`resume_flow_run`."""
    import asyncio

    await asyncio.to_thread(_resume, flow_run_id, run_input, "resume_flow_run()")


def _resume(flow_run_id: UUID | str, run_input: dict[str, Any] | None, sender: str) -> PauseRecord:
    if run_input is not None:
        if not isinstance(run_input, dict):
            raise RunInputError(
                f"run_input must be a dict of field name -> value, not {type(run_input).__name__}."
            )
        run_input = _jsonable(run_input)
    record = find_pause(str(flow_run_id))
    if record is None:
        explain_not_waiting(str(flow_run_id))
    send_resume(record, run_input, sender)
    return record


def _jsonable(run_input: dict[str, Any]) -> dict[str, Any]:
    """The input as JSON types (dates, enums, sets, models), to cross to the paused process."""
    from pydantic_core import PydanticSerializationError, to_jsonable_python

    try:
        jsonable: dict[str, Any] = to_jsonable_python(run_input)
    except PydanticSerializationError as exc:
        raise RunInputError(
            f"run_input cannot be sent to the paused run: {exc}; give JSON-like values "
            "(str, numbers, bool, None, lists, dicts, dates)."
        ) from None
    return jsonable


class _Resumed:
    """What :func:`resume_flow_run` returns where an event loop runs: the resume is done.

    ``await`` on it returns None at once, so Prefect's ``await resume_flow_run(...)``
    works; as the last line of a notebook cell it shows nothing, like None.
    """

    __slots__ = ()

    def __await__(self) -> Any:
        return iter(())

    def __repr__(self) -> str:
        return "<flow run resumed>"

    def _ipython_display_(self) -> None:
        pass  # like None: nothing to show


def _in_async_run() -> bool:
    """Whether the innermost run (a task, else a flow) is async, so the caller can await."""
    task_ctx = context.task_context.get()
    if task_ctx is not None:
        return bool(getattr(task_ctx.task, "is_async", False))
    flow_ctx = context.current_flow_context()
    return flow_ctx is not None and flow_ctx.flow is not None and flow_ctx.flow.is_async


def _loop_running() -> bool:
    if "asyncio" not in sys.modules:
        return False
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
