"""Pausing a flow run until someone resumes it, with typed input (Prefect's ``prefect.flow_runs``).

>>> from kernelflow import flow, pause_flow_run
>>> from kernelflow.input import RunInput
>>> class Approval(RunInput):
...     approved: bool
...     comment: str = ""
>>> @flow
... def release():
...     answer = pause_flow_run(wait_for_input=Approval, timeout=600)
...     return "shipped" if answer.approved else "held"

While it waits, the flow run is in state ``Paused`` (``Suspended`` for
:func:`suspend_flow_run`) and the thread that called the function is blocked;
task runs submitted before keep running. It is resumed

- in a notebook, from the form the cell shows: one input per field of the
  model and a Resume button (see :mod:`kernelflow.kernel.pause_form`);
- from anywhere else: ``kernelflow flow-run resume ID --input approved=true``
  in a terminal, or :func:`resume_flow_run` in Python, in any process on the
  machine that uses the same store (``KERNELFLOW_HOME``).

The run then goes back to ``Running`` and the call returns the input: an
instance of the model, or the value itself for a plain type
(``wait_for_input=str``, resumed with ``--input value=Ada``). Without a
resume within ``timeout`` seconds, the call raises
:class:`~kernelflow.errors.FlowPauseTimeout`, and the flow run ends ``Failed``
with Prefect's message ``The flow was failed and never resumed.``; a flow that
catches the error goes on, but still ends ``Failed`` (``The flow was
completed and never resumed.``), as Prefect's server decides for a run that
leaves a timed-out pause. How the paused process hears of a resume is
described in :mod:`kernelflow._resume`.

A pause with a ``key`` that already fired in the current try of the flow run
returns the input it got then, without pausing again (Prefect's pause keys);
the default key counts the pauses of the try, so each call pauses.

Differences from Prefect
------------------------
- **Input is validated before the run resumes.** The paused process checks
  the input with the model itself, including the model's own validators; input
  that does not fit is refused with :class:`~kernelflow.errors.RunInputError`
  (one line naming each field) and the run stays paused. Prefect's server
  checks only the JSON schema, so a model validator fails the flow after it
  resumed, with ``ValidationError``.
- **Suspending does not end the process.** There is no worker to stop and
  later restart the run, so :func:`suspend_flow_run` waits in place like
  :func:`pause_flow_run`. It differs in the state name (``Suspended``) and its
  default timeout (none, as in Prefect), and can suspend only the flow run it
  is called in.
- ``poll_interval`` is an upper bound: kernelflow looks for a resume every
  0.2 s (a directory listing), so a resume takes effect at once.
- ``timeout=None`` waits without limit (Prefect requires a number for pauses).
- ``resume_flow_run`` outside an async flow or task resumes at once, even
  where an event loop runs (a notebook cell); it returns an object that
  ``await`` accepts there, so Prefect's ``await resume_flow_run(...)`` works too.
  Errors: ``NotPausedError`` for a run that is not paused (as Prefect),
  ``RunInputError`` for input that does not fit (Prefect: ``RuntimeError``).
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, TypeVar, overload

from kernelflow import context
from kernelflow._resume import (
    INVALID,
    NOT_PAUSED,
    POLL_SECONDS,
    RESUMED,
    TIMED_OUT,
    Mailbox,
    PauseRecord,
    explain_not_waiting,
    find_pause,
    send_resume,
)
from kernelflow.errors import (
    ConfigurationError,
    FlowPauseTimeout,
    MissingContextError,
    PauseError,
    RunInputError,
)

if TYPE_CHECKING:
    from uuid import UUID

    from kernelflow.runs import FlowRun
    from kernelflow.states import State

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
        return to_jsonable_python(run_input)
    except PydanticSerializationError as exc:
        raise RunInputError(
            f"run_input cannot be sent to the paused run: {exc}; give JSON-like values "
            "(str, numbers, bool, None, lists, dicts, dates)."
        ) from None


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


# --- the pause itself -------------------------------------------------------------
class _Try:
    """The pauses seen in one try of a flow run (keys fire once per try, as in Prefect)."""

    __slots__ = ("count", "fired", "run_count")

    def __init__(self, run_count: int) -> None:
        self.run_count = run_count
        self.count = 0
        self.fired: dict[str, Any] = {}


_tries: weakref.WeakKeyDictionary[FlowRun, _Try] = weakref.WeakKeyDictionary()
#: Runs whose pause timed out, with that Paused state (see :func:`after_timed_out_pause`).
_timed_out: weakref.WeakKeyDictionary[FlowRun, State] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
#: Ids of the flow runs paused in this process right now.
_paused_here: set[str] = set()
_NOT_FIRED = object()


def after_timed_out_pause(run: FlowRun, state: State) -> State:
    """The final state of a run that ends while its timed-out pause is its state.

    Prefect's rule (its server's ``HandleResumingPausedFlows``): a run cannot
    leave a pause that timed out, so whatever it ends in becomes
    ``Failed("The flow was <that state's name> and never resumed.")``, e.g.
    ``The flow was failed and never resumed.`` for the usual uncaught
    :class:`~kernelflow.errors.FlowPauseTimeout`. Called by the engine when a
    flow run finishes in a PAUSED state; other states pass through.
    """
    with _lock:
        expired = _timed_out.get(run)
    if expired is None or expired is not run.state:
        return state
    from kernelflow.states import Failed

    return Failed(message=f"The flow was {state.name.lower()} and never resumed.", data=state.data)


def _try_of(run: FlowRun) -> _Try:
    with _lock:
        found = _tries.get(run)
        if found is None or found.run_count != run.run_count:
            found = _tries[run] = _Try(run.run_count)
        return found


class _Pause:
    """One pause of a flow run: enter Paused, wait for a resume, go back to Running.

    The sync and async drivers (:meth:`wait`, :meth:`wait_async`) share every
    decision; they differ only in how they sleep between two looks.
    """

    def __init__(
        self,
        state_name: str,
        wait_for_input: Any,
        timeout: float | None,
        poll_interval: float,
        key: str | None,
    ) -> None:
        verb = "paused" if state_name == "Paused" else "suspended"
        if timeout is not None and not (_is_number(timeout) and timeout >= 0):
            raise ConfigurationError(
                f"timeout={timeout!r}: give a number of seconds >= 0, or None to wait "
                "without limit."
            )
        if not (_is_number(poll_interval) and poll_interval > 0):
            raise ConfigurationError(
                f"poll_interval={poll_interval!r}: give a number of seconds > 0."
            )
        flow_ctx = context.current_flow_context()
        if flow_ctx is None:
            raise MissingContextError(
                f"Flow runs can only be {verb} from within a flow run: call this inside a "
                "@flow (or in a notebook with %load_ext kernelflow, whose session is a flow run)."
            )
        self.state_name = state_name
        self.run: FlowRun = flow_ctx.flow_run
        self.is_session = flow_ctx.flow is None
        self.timeout = None if timeout is None else float(timeout)
        self.interval = min(float(poll_interval), POLL_SECONDS)
        attempt = _try_of(self.run)
        with _lock:
            attempt.count += 1
            self.key = str(key) if key is not None else str(attempt.count)
        self.attempt = attempt
        self.model: Any = None
        if wait_for_input is not None:
            from kernelflow.input.run_input import run_input_subclass_from_type

            self.model = run_input_subclass_from_type(wait_for_input)
        self.value: Any = None
        self.resumed = False
        self.resumed_by: str | None = None
        self.form: Any = None
        self.mailbox: Mailbox | None = None
        self.paused_state: State | None = None
        self.deadline: float | None = None

    # -- drivers
    def wait(self) -> Any:
        """Pause, block this thread until resumed or timed out, and return the input."""
        fired = self.attempt.fired.get(self.key, _NOT_FIRED)
        if fired is not _NOT_FIRED:
            return self._returned(fired)
        self.begin()
        try:
            while not self.poll():
                remaining = self.remaining()
                if remaining is not None and remaining <= 0:
                    if self.poll():  # one last look, as Prefect
                        break
                    raise FlowPauseTimeout("Flow run was paused and never resumed.")
                wait = self.interval if remaining is None else min(self.interval, remaining)
                if self.form is not None:
                    self.form.submitted.wait(wait)
                else:
                    time.sleep(wait)
        except BaseException as exc:
            self.end(exc)
            raise
        self.end(None)
        return self._returned(self.value)

    async def wait_async(self) -> Any:
        """As :meth:`wait`, sleeping with ``asyncio.sleep`` so the event loop goes on."""
        import asyncio

        fired = self.attempt.fired.get(self.key, _NOT_FIRED)
        if fired is not _NOT_FIRED:
            return self._returned(fired)
        self.begin()
        try:
            while not self.poll():
                remaining = self.remaining()
                if remaining is not None and remaining <= 0:
                    if self.poll():
                        break
                    raise FlowPauseTimeout("Flow run was paused and never resumed.")
                await asyncio.sleep(
                    self.interval if remaining is None else min(self.interval, remaining)
                )
        except BaseException as exc:
            self.end(exc)
            raise
        self.end(None)
        return self._returned(self.value)

    # -- steps
    def begin(self) -> None:
        """Announce the pause, enter Paused, show the notebook form."""
        from kernelflow.engine import set_state
        from kernelflow.logs import run_logger
        from kernelflow.states import Paused, Suspended
        from kernelflow.store.journal import process_identity

        run = self.run
        with _lock:
            if run.id in _paused_here:
                raise PauseError(
                    f"Flow run '{run.name}' is paused already (by another thread); it can "
                    "wait for one resume at a time."
                )
            _paused_here.add(run.id)
        try:
            me = process_identity()
            if self.timeout is not None:
                self.deadline = time.monotonic() + self.timeout
            self.mailbox = Mailbox(
                PauseRecord(
                    flow_run_id=run.id,
                    flow_run_name=run.name,
                    flow_name=run.flow_name,
                    state_name=self.state_name,
                    key=self.key,
                    deadline=None if self.timeout is None else time.time() + self.timeout,
                    schema=self._schema(),
                    model_name=None if self.model is None else self.model.__name__,
                    host=me.host,
                    pid=me.pid,
                    start_ticks=me.start_ticks,
                    boot_id=me.boot_id,
                )
            )
            self.mailbox.open()
            logger = run_logger("flow", run)
            if self.state_name == "Paused":
                logger.info("Pausing flow, execution will continue when this flow run is resumed.")
            else:
                logger.info(
                    "Suspending flow run, execution will continue when this flow run is resumed."
                )
            make = Paused if self.state_name == "Paused" else Suspended
            self.paused_state = set_state("flow", run, make(message=self._state_message()))
            logger.info("Resume it with: %s", self.command())
            self.form = self._show_form()
        except BaseException as exc:
            self.end(exc)
            raise

    def poll(self) -> bool:
        """Take a resume if one came (from the form or a request); True once resumed."""
        if self.resumed:
            return True
        if self.form is not None:
            submitted, value = self.form.take()
            if submitted:
                self._resume(value, "Resumed from the notebook form")
                return True
        assert self.mailbox is not None
        for request in self.mailbox.requests():
            if self.resumed:
                self.mailbox.answer(
                    request, NOT_PAUSED, f"Flow run {self._label()} was resumed already."
                )
                continue
            value, error = self.validate(request.run_input)
            if error is not None:
                self.mailbox.answer(request, INVALID, error)
                self._logger().warning("A resume was refused: %s", error)
                if self.form is not None:
                    self.form.note(error)
                continue
            self._resume(value, f"Resumed by {request.sender}")
            self.mailbox.answer(request, RESUMED)
        return self.resumed

    def validate(self, run_input: Any) -> tuple[Any, str | None]:
        """``(input, None)`` when ``run_input`` fits the model, else ``(None, message)``."""
        if self.model is None:
            return None, None
        import pydantic

        from kernelflow.input.run_input import describe_validation_error

        if run_input is None:
            run_input = {}
        if not isinstance(run_input, dict):
            return None, (
                f"Input for flow run {self._label()} must be field name -> value pairs, not "
                f"{type(run_input).__name__}; the run stays paused."
            )
        try:
            return self.model.model_validate(run_input), None
        except pydantic.ValidationError as exc:
            return None, (
                f"Input for flow run {self._label()} does not fit {self._model_label()}: "
                f"{describe_validation_error(exc)}; the run stays paused."
            )

    def remaining(self) -> float | None:
        """Seconds left before the pause times out (None: no timeout)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def end(self, error: BaseException | None) -> None:
        """Close the channel and the form; an unresumed pause leaves a notebook session Running."""
        with _lock:
            _paused_here.discard(self.run.id)
        label = self._label()
        if self.resumed:
            status, message = NOT_PAUSED, f"Flow run {label} was resumed already."
            self.attempt.fired[self.key] = self.value
        elif isinstance(error, FlowPauseTimeout):
            if self.paused_state is not None and not self.is_session:
                with _lock:
                    _timed_out[self.run] = self.paused_state
            status, message = (
                TIMED_OUT,
                f"Flow run {label} can no longer be resumed: its pause timed out.",
            )
        else:
            ended = type(error).__name__ if error is not None else "it ended"
            status, message = NOT_PAUSED, f"The pause of flow run {label} ended ({ended})."
        if self.mailbox is not None:
            try:
                self.mailbox.close(status, message)
            except OSError:
                self._logger().warning("The resume channel of this pause could not be removed")
        if self.form is not None:
            try:
                self.form.close(*self._summary(error))
            except Exception:  # the run's outcome matters more than the form's last words
                self._logger().exception("The pause form could not be closed")
        if not self.resumed and self.is_session and self.run.state is self.paused_state:
            # A notebook session outlives the cell that paused it.
            from kernelflow.engine import set_state
            from kernelflow.states import Running

            set_state("flow", self.run, Running(message="Notebook session"))

    # -- helpers
    def command(self) -> str:
        """The ``kernelflow flow-run resume`` command line for this pause."""
        parts = ["kernelflow", "flow-run", "resume", self.run.id]
        if self.model is not None:
            for name, info in self.model.model_fields.items():
                if info.is_required():
                    parts.append(f"--input {info.alias or name}=...")
        return " ".join(parts)

    def _resume(self, value: Any, message: str) -> None:
        from kernelflow.engine import set_state
        from kernelflow.states import Running

        self.value = value
        self.resumed_by = message
        set_state("flow", self.run, Running(message=message))
        self.resumed = True
        self._logger().info("Resuming flow run execution!")

    def _returned(self, value: Any) -> Any:
        from kernelflow.input.run_input import AutomaticRunInput

        if isinstance(value, AutomaticRunInput):
            return value.value  # type: ignore[attr-defined]
        return value

    def _schema(self) -> dict | None:
        if self.model is None:
            return None
        try:
            schema = self.model.model_json_schema()
        except Exception:  # a field type with no JSON schema: values are still validated
            schema = {"properties": {name: {} for name in self.model.model_fields}}
        # with_initial_data(description=...): what the JupyterLab panel shows above the form.
        description = getattr(self.model, "_description", None)
        if isinstance(description, str) and description.strip():
            schema["description"] = description
        return schema

    def _state_message(self) -> str:
        what = "Waiting to be resumed"
        if self.model is not None and self.model.model_fields:
            what += f" with input ({', '.join(self.model.model_fields)})"
        if self.timeout is not None:
            what += f", for at most {self.timeout:g} s"
        return what

    def _model_label(self) -> str:
        from kernelflow.input.run_input import AutomaticRunInput

        if issubclass(self.model, AutomaticRunInput):
            annotation = self.model.model_fields["value"].annotation
            return f"'value: {getattr(annotation, '__name__', annotation)}'"
        return self.model.__name__

    def _summary(self, error: BaseException | None) -> tuple[str, str]:
        """``(kind, text)`` for the form's last words."""
        name = self.run.name
        if self.resumed:
            if self.resumed_by == "Resumed from the notebook form":
                return "resumed", f"Flow run '{name}' resumed from this form."
            by = (self.resumed_by or "").removeprefix("Resumed by ")
            return "resumed", f"Flow run '{name}' was resumed from elsewhere ({by})."
        if isinstance(error, FlowPauseTimeout):
            return "failed", (
                f"Flow run '{name}' was not resumed within {self.timeout:g} s (FlowPauseTimeout)."
            )
        return "failed", f"The pause of flow run '{name}' ended ({type(error).__name__})."

    def _show_form(self) -> Any:
        """The notebook form, when this runs in a Jupyter kernel; else None."""
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        if getattr(shell, "kernel", None) is None:
            return None
        from kernelflow.kernel.pause_form import PauseForm

        try:
            return PauseForm.show(
                model=self.model,
                run_name=self.run.name,
                verb="paused" if self.state_name == "Paused" else "suspended",
                command=self.command(),
            )
        except Exception:  # a form that cannot be shown must not break the pause
            self._logger().exception("The pause form cannot be shown; resume with the command")
            return None

    def _label(self) -> str:
        return f"'{self.run.name}' ({self.run.id})"

    def _logger(self) -> Any:
        from kernelflow.logs import run_logger

        return run_logger("flow", self.run)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
