"""One flow run's decisions, shared by its drivers (sync, async, generators).

:class:`FlowAttempt` records the run, validates its parameters, starts each
try, turns what a try returned or raised into a state
(:func:`return_value_to_state`), decides on a retry and finishes the run
(result, hooks, the final line). The drivers (:mod:`kernelflow.engine.flow_run`)
only call the function, sleep and wait.
"""

from __future__ import annotations

import contextvars
import inspect
from typing import TYPE_CHECKING, Any

from kernelflow import context
from kernelflow.engine.inputs import _needs_resolving, _resolve
from kernelflow.engine.lifecycle import (
    crash_needs_recording,
    enter_try,
    exception_to_state,
    interrupted_state,
    record_flow_run,
    short_repr,
)
from kernelflow.engine.pauses import after_timed_out_pause
from kernelflow.engine.transitions import _CONSOLE_ONLY, _call_hooks, _finished_log, set_state
from kernelflow.errors import (
    ConfigurationError,
    FlowRunTimeoutError,
    ParameterTypeError,
    ResultSerializationError,
    StoreError,
)
from kernelflow.futures import TaskRunFuture, resolve_futures_to_states
from kernelflow.logs import configure as configure_logging
from kernelflow.logs import enable_print_capture, run_logger
from kernelflow.runs import FlowRun
from kernelflow.states import (
    AwaitingRetry,
    Cancelled,
    Completed,
    Failed,
    Pending,
    State,
    StateType,
    StoredResult,
    TimedOut,
)

if TYPE_CHECKING:
    from kernelflow._protocols import FlowLike

__all__ = ["FlowAttempt", "return_value_to_state"]


def return_value_to_state(value: Any) -> State:
    """A flow's final state from what its function returned, as Prefect defines it."""
    if isinstance(value, State) and value.run_id is None:
        return value  # a state the user built: taken as it is
    if isinstance(value, TaskRunFuture):
        value = value.final_state()
    if isinstance(value, State):
        # A run's state counts as a group of one, as in Prefect ("1/1 states failed.").
        group = return_value_to_state([value])
        return group.copy(data=value)
    resolved = resolve_futures_to_states(value)
    if (
        isinstance(resolved, (list, tuple, set))
        and resolved
        and all(isinstance(s, State) for s in resolved)
    ):
        # Prefect's aggregate rule: all completed -> Completed; any cancelled ->
        # Cancelled; otherwise Failed, also when some state never became final
        # (e.g. NotReady): a flow run must end in a final state.
        states = list(resolved)
        total = len(states)
        if all(s.is_completed() for s in states):
            return Completed(message="All states completed.", data=resolved)
        cancelled = [s for s in states if s.is_cancelled()]
        if cancelled:
            return Cancelled(message=f"{len(cancelled)}/{total} states cancelled.", data=resolved)
        failed = [s for s in states if s.is_failed() or s.is_crashed()]
        if failed:
            return Failed(message=f"{len(failed)}/{total} states failed.", data=resolved)
        not_final = [s for s in states if not s.is_final()]
        return Failed(message=f"{len(not_final)}/{total} states are not final.", data=resolved)
    # Futures inside other values (a dict of futures) come back as their states, as in Prefect.
    return Completed(data=resolved)


class FlowAttempt:
    """The decisions of one flow run, shared by the sync and async drivers."""

    def __init__(self, flow: FlowLike, parameters: dict[str, Any]) -> None:
        configure_logging()
        self.flow = flow
        # Futures and states among the arguments (a subflow called with a task's future)
        # arrive as their values, quote()/opaque() as what they wrap, as in Prefect.
        if any(_needs_resolving(v) for v in parameters.values()):
            parameters = {
                k: _resolve(v, []) if _needs_resolving(v) else v for k, v in parameters.items()
            }
        self.parameters = parameters
        parent = context.current_flow_context()
        parent_task = context.task_context.get()
        run = FlowRun(
            flow.name,
            flow.render_run_name(parameters),
            parameters,
            context.run_tags(flow.tags),
            parent_flow_run_id=parent.flow_run.id if parent else None,
            parent_task_run_id=parent_task.task_run.id if parent_task else None,
        )
        self.flow_run = run
        log_prints = flow.log_prints
        if log_prints is None:
            log_prints = parent.log_prints if parent else False
        if log_prints:
            enable_print_capture()
        self.ctx = context.FlowRunContext(flow, run, flow.task_runner.duplicate, log_prints)
        self.token: contextvars.Token | None = None
        recorded = {k: short_repr(v) for k, v in parameters.items()}
        record_flow_run(run, Pending(), recorded, version=flow.version)
        #: The parent flow run (a subflow's "Beginning" line is logged by it, as in Prefect).
        self.parent_run = parent.flow_run if parent else None

    def enter(self) -> None:
        """Make this flow run the current one."""
        self.token = context.flow_context.set(self.ctx)
        # A flow called from inside a task is the innermost run now: its
        # prints, loggers and get_run_context() must not see the task.
        self.task_token = context.task_context.set(None)

    def exit(self) -> None:
        """Restore the previous flow context and stop the task runner."""
        if self.token is not None:
            context.task_context.reset(self.task_token)
            context.flow_context.reset(self.token)
            self.token = None

    def start_try(self) -> None:
        """Enter Running (or Retrying)."""
        run = self.flow_run
        state = enter_try("flow", run, run.run_count + 1, run.run_count >= 1)
        # Prefect's first line of every try: "Beginning flow run 'x' for flow 'f'". Console
        # only, as the final-state line: the store has the run's start in its states.
        if self.parent_run is None:
            run_logger("flow", run).info(
                "Beginning flow run %r for flow %r", run.name, self.flow.name, extra=_CONSOLE_ONLY
            )
        else:
            run_logger("flow", self.parent_run).info(
                "Beginning subflow run %r for flow %r",
                run.name,
                self.flow.name,
                extra=_CONSOLE_ONLY,
            )
        if self.flow.on_running_hooks:
            _call_hooks(self.flow.on_running_hooks, self.flow, run, state, "flow")

    def validate_parameters(self) -> State | None:
        """Validate and coerce the parameters (Prefect's ``validate_parameters``).

        Returns the Failed state to finish with when they do not fit, as
        Prefect's flow engine fails the run before the body starts; the call
        then raises :class:`~kernelflow.errors.ParameterTypeError`.
        """
        try:
            parameters = self.flow.validate_parameters(self.parameters)
        except (ParameterTypeError, ConfigurationError) as exc:
            message = "Validation of flow parameters failed with error:"
            run_logger("flow", self.flow_run).error("%s %s", message, exc)
            return exception_to_state(exc, message)
        if parameters is not self.parameters:
            self.parameters = self.flow_run.parameters = parameters
        return None

    def settle(self, value: Any) -> State:
        """Wait for the run's leftover futures, then derive the final state.

        A generator the flow returned is run to its end inside the flow run, as
        in Prefect, and its items are the result: the list Prefect's docs
        promise (Prefect 3.9 itself returns None).
        """
        if inspect.isgenerator(value):
            value = list(value)
        self.wait_for_futures()
        return return_value_to_state(value)

    def wait_for_futures(self) -> None:
        """A flow ends only once every task it submitted has ended, as in Prefect."""
        for future in list(self.ctx.futures):
            future.wait()
        self.ctx.futures.clear()

    def abandon_futures(self) -> None:
        """After a timeout: cancel tasks that have not started yet."""
        runner = self.ctx.task_runner
        for future in self.ctx.futures:
            if future._future.cancel():
                set_state(
                    "task",
                    future.task_run,
                    Cancelled(message="The flow run ended before this task started"),
                )
        self.ctx.futures.clear()
        if runner is not None:
            runner.shutdown(wait=False)
            self.ctx.task_runner = None

    def outcome(
        self, value: Any = None, error: BaseException | None = None, timed_out: bool = False
    ) -> State:
        """The state a try ended in."""
        if timed_out:
            self.abandon_futures()
            seconds = self.flow.timeout_seconds
            exc = FlowRunTimeoutError(f"Flow run exceeded timeout of {seconds} second(s)")
            run_logger("flow", self.flow_run).error("%s", exc)
            return TimedOut(message=str(exc), data=exc)
        if error is not None:
            # Not when recording itself failed (a full disk): that error is raised once,
            # in one line, and writing a log line about it would fail again.
            if not isinstance(error, StoreError):
                run_logger("flow", self.flow_run).error(
                    "Encountered exception during execution: %r", error, exc_info=error
                )
            self.wait_for_futures()
            return exception_to_state(error, "Flow run encountered an exception:")
        return self.settle(value)

    def retry_delay(self, state: State) -> float | None:
        """Seconds before the flow's next try, or None."""
        if state.type is not StateType.FAILED or self.flow_run.run_count > self.flow.retries:
            return None
        delay = self.flow.delay_for_retry(self.flow_run.run_count)
        set_state("flow", self.flow_run, AwaitingRetry(message=state.message, data=state.data))
        run_logger("flow", self.flow_run).info(
            "Received non-final state 'AwaitingRetry' when proposing final state %r and will "
            "attempt to run again...",
            state.name,
            extra={"retry_delay": delay},  # widgets/_logs.py: the live view's countdown
        )
        return delay

    def finish(self, state: State) -> State:
        """Enter the final state and call hooks."""
        flow, run = self.flow, self.flow_run
        runner = self.ctx.task_runner
        if runner is not None:
            runner.shutdown(wait=True)
            self.ctx.task_runner = None
        if run.state is not None and run.state.is_paused():
            # Prefect's rule: a run that ends in a pause that timed out fails.
            state = after_timed_out_pause(run, state)
        stored = None
        if not flow.cache_result_in_memory and state.is_completed():
            try:
                stored = _store_flow_result(flow, state)
            except (ResultSerializationError, ConfigurationError) as exc:
                state = Failed(message=str(exc), data=exc)
        set_state("flow", run, state, result=stored.path if stored else None)
        hooks = None
        if state.is_completed():
            hooks = flow.on_completion_hooks
        elif state.is_failed():
            hooks = flow.on_failure_hooks
        elif state.is_crashed():
            hooks = flow.on_crashed_hooks
        elif state.is_cancelled():
            hooks = flow.on_cancellation_hooks
        if hooks:
            _call_hooks(hooks, flow, run, state, "flow")
        _finished_log("flow", run, state)  # after the hooks, as Prefect's console shows
        if stored is not None:
            state.data = stored  # the store has it: let go of the value
        return state

    def crash(self, exc: BaseException) -> None:
        """Record an interrupted flow run: Cancelled, or Crashed (see interrupted_state)."""
        if crash_needs_recording(self.flow_run, exc):
            self.finish(interrupted_state(exc))


def _store_flow_result(flow: FlowLike, state: State) -> StoredResult:
    """Write a flow run's return value to the result store (``cache_result_in_memory=False``)."""
    from kernelflow.results import write_result

    written = write_result(state.result(), task_name=flow.name)
    return StoredResult(written.path, written.checksum, written.format)
