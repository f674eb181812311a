"""Flow runs driven to their final state: plain and generator flows, sync and async.

One body, :func:`_flow_steps`, holds the order of a flow run's steps:
validate the parameters, then per try enter Running, call, decide on a retry,
sleep; finish. It is a generator that asks its driver for what sync and
async code do differently, by yielding a request ``(what, argument)``:

``(_CALL, attempt)``
    call the flow's function once; reply: the state the try ended in.
``(_SLEEP, seconds)``
    wait before the next try; reply: None.

The four drivers answer them: :func:`run_flow` and :func:`run_flow_async`
call the function; :func:`run_generator_flow` and
:func:`run_generator_flow_async` iterate it, handing each item to their own
caller. An exception that escapes a driver's answer is thrown into the body,
which records the run as interrupted and lets it go on (for a generator flow
whose caller stopped iterating, ``GeneratorExit``, the run ends Completed).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

from kernelflow.engine.flow_attempt import FlowAttempt
from kernelflow.errors import FlowRunTimeoutError
from kernelflow.states import State
from kernelflow.timeouts import DeadlineExceeded, call_with_timeout

if TYPE_CHECKING:
    from kernelflow._protocols import FlowLike

__all__ = ["run_flow", "run_flow_async", "run_generator_flow", "run_generator_flow_async"]

# What a flow run's body asks its driver for (see the module docstring).
_CALL, _SLEEP = "call", "sleep"


def _flow_steps(attempt: FlowAttempt, generator: bool) -> Generator[tuple[str, Any], Any, State]:
    """A flow run from its parameters to its final state (see the module docstring)."""
    attempt.enter()
    try:
        state = attempt.validate_parameters()
        if state is None:
            while True:
                attempt.start_try()
                state = yield _CALL, attempt
                delay = attempt.retry_delay(state)
                if delay is None:
                    break
                yield _SLEEP, delay
        return attempt.finish(state)
    except BaseException as exc:
        if generator and isinstance(exc, GeneratorExit):
            # The caller stopped iterating: the run ends Completed, as in Prefect.
            attempt.finish(attempt.outcome(None))
        else:
            # KeyboardInterrupt, SystemExit: record what happened, then let it go on.
            attempt.crash(exc)
        raise
    finally:
        if generator:
            _exit_generator_run(attempt)
        else:
            attempt.exit()


def _call_sync(attempt: FlowAttempt) -> State:
    """One try of a sync flow (with its timeout), as a state."""
    flow = attempt.flow
    args, kwargs = flow.to_call_args(attempt.parameters)
    try:
        if flow.timeout_seconds is None:
            value = flow.fn(*args, **kwargs)
        else:
            value = call_with_timeout(
                flow.fn, args, kwargs, flow.timeout_seconds, FlowRunTimeoutError
            )
        return attempt.outcome(value)
    except DeadlineExceeded:
        return attempt.outcome(timed_out=True)
    except Exception as exc:
        return attempt.outcome(error=exc)


async def _call_async(attempt: FlowAttempt) -> State:
    """One try of an async flow: its coroutine awaited (with its timeout), as a state."""
    import asyncio

    flow = attempt.flow
    args, kwargs = flow.to_call_args(attempt.parameters)
    try:
        coro = flow.fn(*args, **kwargs)
        if flow.timeout_seconds is None:
            value = await coro
        else:
            value = await asyncio.wait_for(coro, flow.timeout_seconds)
        return attempt.outcome(value)
    except asyncio.TimeoutError:
        return attempt.outcome(timed_out=True)
    except Exception as exc:
        return attempt.outcome(error=exc)


def run_flow(flow: FlowLike, parameters: dict[str, Any]) -> State:
    """Run a sync flow to its final state in the calling thread."""
    steps = _flow_steps(FlowAttempt(flow, parameters), generator=False)
    reply: Any = None
    try:
        while True:
            what, argument = steps.send(reply)
            try:
                if what is _CALL:
                    reply = _call_sync(argument)
                else:
                    time.sleep(argument)
                    reply = None
            except BaseException as exc:
                steps.throw(exc)  # records the interruption, then raises it again
                raise
    except StopIteration as stop:
        return stop.value


async def run_flow_async(flow: FlowLike, parameters: dict[str, Any]) -> State:
    """Run an async flow to its final state."""
    import asyncio

    steps = _flow_steps(FlowAttempt(flow, parameters), generator=False)
    reply: Any = None
    try:
        while True:
            what, argument = steps.send(reply)
            try:
                if what is _CALL:
                    reply = await _call_async(argument)
                else:
                    await asyncio.sleep(argument)
                    reply = None
            except BaseException as exc:
                steps.throw(exc)
                raise
    except StopIteration as stop:
        return stop.value


def run_generator_flow(flow: FlowLike, parameters: dict[str, Any]) -> Generator[Any, None, Any]:
    """Run a generator flow, yielding what its function yields (Prefect's generator flows).

    The run starts at the first ``next()`` and is current while the caller
    handles each value, as in Prefect. It ends Completed when the generator
    returns (its return value is the run's result and the generator's), or is
    closed early; Failed when it raises, which re-raises to the caller.
    Retries run the generator again from the start.
    """
    attempt = FlowAttempt(flow, parameters)
    steps = _flow_steps(attempt, generator=True)
    reply: Any = None
    try:
        while True:
            what, argument = steps.send(reply)
            try:
                if what is _CALL:
                    args, kwargs = flow.to_call_args(attempt.parameters)
                    try:
                        value = yield from flow.fn(*args, **kwargs)
                        reply = attempt.outcome(value)
                    except Exception as exc:
                        reply = attempt.outcome(error=exc)
                else:
                    time.sleep(argument)
                    reply = None
            except BaseException as exc:
                steps.throw(exc)
                raise
    except StopIteration as stop:
        return stop.value.result()


async def run_generator_flow_async(
    flow: FlowLike, parameters: dict[str, Any]
) -> AsyncGenerator[Any]:
    """Run an async generator flow, yielding what its function yields.

    As :func:`run_generator_flow`; an async generator cannot return a value,
    so the run's result is None, and a failure re-raises to the caller.
    """
    import asyncio

    attempt = FlowAttempt(flow, parameters)
    steps = _flow_steps(attempt, generator=True)
    reply: Any = None
    try:
        while True:
            what, argument = steps.send(reply)
            try:
                if what is _CALL:
                    args, kwargs = flow.to_call_args(attempt.parameters)
                    try:
                        async for item in flow.fn(*args, **kwargs):
                            yield item
                        reply = attempt.outcome(None)
                    except Exception as exc:
                        reply = attempt.outcome(error=exc)
                else:
                    await asyncio.sleep(argument)
                    reply = None
            except BaseException as exc:
                steps.throw(exc)
                raise
    except StopIteration as stop:
        stop.value.result()


def _exit_generator_run(attempt: FlowAttempt) -> None:
    """Leave a generator flow's run; a generator closed by the garbage collector
    (or from another thread) runs in another context, where there is nothing to reset."""
    try:
        attempt.exit()
    except ValueError:
        attempt.token = None
