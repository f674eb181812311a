"""One pause of a flow run: enter Paused, wait for a resume, go back to Running.

:class:`_Pause` does the work of :func:`~kernelflow.flow_runs.pause_flow_run`
and :func:`~kernelflow.flow_runs.suspend_flow_run`; the records of the pauses
of each try (pause keys) live here too; a pause that timed out is noted in
:mod:`kernelflow.engine.pauses`, which decides how its run ends.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from kernelflow import context
from kernelflow._resume import (
    INVALID,
    NOT_PAUSED,
    POLL_SECONDS,
    RESUMED,
    TIMED_OUT,
    Mailbox,
    PauseRecord,
)
from kernelflow.engine.pauses import note_timed_out_pause
from kernelflow.errors import (
    ConfigurationError,
    FlowPauseTimeout,
    MissingContextError,
    PauseError,
)

if TYPE_CHECKING:
    from kernelflow.runs import FlowRun
    from kernelflow.states import State

__all__: list[str] = []


# --- the pause itself -------------------------------------------------------------
class _Try:
    """The pauses seen in one try of a flow run (keys fire once per try, as in Prefect)."""

    __slots__ = ("count", "fired", "run_count")

    def __init__(self, run_count: int) -> None:
        self.run_count = run_count
        self.count = 0
        self.fired: dict[str, Any] = {}


_tries: weakref.WeakKeyDictionary[FlowRun, _Try] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
#: Ids of the flow runs paused in this process right now.
_paused_here: set[str] = set()
_NOT_FIRED = object()


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
        self.paused_state: State[Any] | None = None
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
        from kernelflow.engine.transitions import set_state
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
                # The engine fails the run if it ends still in this pause (Prefect's rule).
                note_timed_out_pause(self.run, self.paused_state)
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
            from kernelflow.engine.transitions import set_state
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
        from kernelflow.engine.transitions import set_state
        from kernelflow.states import Running

        self.value = value
        self.resumed_by = message
        set_state("flow", self.run, Running(message=message))
        self.resumed = True
        self._logger().info("Resuming flow run execution!")

    def _returned(self, value: Any) -> Any:
        from kernelflow.input.run_input import AutomaticRunInput

        if isinstance(value, AutomaticRunInput):
            # The field each subclass declares (run_input_subclass_from_type makes them).
            return value.value  # type: ignore[attr-defined]
        return value

    def _schema(self) -> dict[str, Any] | None:
        if self.model is None:
            return None
        schema: dict[str, Any]
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
        return str(self.model.__name__)

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
        from kernelflow._pause_hooks import pause_presenter

        present = pause_presenter()  # the kernel extension registers it when it loads
        if present is None:
            return None
        try:
            return present(
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
