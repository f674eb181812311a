"""Task runs: creating one, and driving it through its tries from sync or async code.

One body, :func:`_task_steps`, holds the order of a task run's steps once its
inputs are resolved (:func:`_attempt_or_not_ready`): look the cache up, then
per try take the tags' concurrency slots, enter Running, call, release,
decide on a retry, sleep; finish. It is a generator that asks its driver for
the three things sync and async code do differently, by yielding a request:

``_SLOTS``
    take a slot of each concurrency limit the run's tags name; reply: the slots held.
``_CALL``
    call the task's function once; reply: the state the try ended in.
a number
    sleep that many seconds before the next try; reply: None.

The drivers :func:`run_task` and :func:`run_task_async` answer them, the one
with plain calls, the other with ``await``. An exception that escapes a
driver's answer (KeyboardInterrupt...) is thrown into the body, which records
the run as interrupted and lets it go on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from kernelflow import context
from kernelflow._sync import run_coro_sync
from kernelflow.engine.inputs import resolve_inputs, upstream_ids
from kernelflow.engine.task_attempt import TaskAttempt
from kernelflow.engine.transitions import _finished_log, _held, _write_held, set_state
from kernelflow.errors import UpstreamTaskError
from kernelflow.logs import configure as configure_logging
from kernelflow.runners import call_task_fn
from kernelflow.runs import TaskRun
from kernelflow.states import Pending, State
from kernelflow.store.events import task_run_created
from kernelflow.timeouts import DeadlineExceeded

if TYPE_CHECKING:
    from kernelflow._protocols import TaskLike, TaskRunnerLike

__all__ = ["create_task_run", "run_task", "run_task_any", "run_task_async"]

# What a task run's body asks its driver for (see the module docstring); a number: sleep.
_SLOTS, _CALL = "slots", "call"

_detached_counts: dict[str, int] = {}
_detached_lock = threading.Lock()


def create_task_run(
    task: TaskLike,
    parameters: dict[str, Any],
    flow_ctx: context.FlowRunContext | None,
    inputs: dict[str, dict] | None = None,
    *,
    hold: bool = False,
) -> TaskRun:
    """Create a task run in state Pending and record it.

    ``inputs`` overrides the recorded lineage of the run's inputs (name ->
    ``{"hash", "upstream"}``); a ``%%task`` cell passes the notebook names it reads.
    ``hold=True`` (a run that :func:`run_task` starts at once, in this thread)
    journals the creation with the run's next state, in one append.
    """
    configure_logging()
    if flow_ctx is not None:
        index = flow_ctx.flow_run.next_task_index(task.name)
    else:
        with _detached_lock:
            index = _detached_counts.get(task.name, 0)
            _detached_counts[task.name] = index + 1
    name = task.render_run_name(parameters, index)
    run = TaskRun(
        task.name, name, flow_ctx.flow_run.id if flow_ctx else None, context.run_tags(task.tags)
    )
    pending = Pending()
    created = task_run_created(
        id=run.id,
        flow_run_id=run.flow_run_id,
        task_name=task.name,
        name=name,
        tags=run.tags,
        cache_key=None,
        inputs=upstream_ids(parameters) if inputs is None else inputs,
        # The creation's time is its Pending's, so its line can stand for both.
        t=pending.timestamp,
    )
    set_state("task", run, pending, before=[created], hold=hold)
    return run


def _tag_slots(tags: frozenset[str]) -> Any:
    """One slot of each concurrency limit named by a tag (see kernelflow.concurrency._tags)."""
    from kernelflow.concurrency._tags import acquire_tag_slots

    return acquire_tag_slots(tags)


async def _tag_slots_async(tags: frozenset[str]) -> Any:
    from kernelflow.concurrency._tags import acquire_tag_slots_async

    return await acquire_tag_slots_async(tags)


def _attempt_or_not_ready(
    task: TaskLike,
    task_run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: context.FlowRunContext | None,
) -> TaskAttempt | State:
    """The run's attempt, its inputs resolved; or its final NotReady state when an
    upstream did not complete."""
    try:
        resolved, _ = resolve_inputs(parameters, wait_for)
    except UpstreamTaskError as exc:
        state = set_state("task", task_run, Pending(name="NotReady", message=str(exc), data=exc))
        _finished_log("task", task_run, state)
        return state
    return TaskAttempt(task, task_run, resolved, flow_ctx)


def _task_steps(attempt: TaskAttempt) -> Generator[Any, Any, State]:
    """A task run from its cache lookup to its final state (see the module docstring)."""
    attempt.enter()
    try:
        state = attempt.cached_state()
        if state is not None:
            return attempt.finish(state)
        tags = attempt.task_run.tags
        while True:
            # Concurrency limits named by the task's tags: a slot each, per try.
            slots = (yield _SLOTS) if tags else None
            attempt.start_try()
            try:
                state = yield _CALL
            finally:
                if slots is not None:
                    slots.release()
            delay = attempt.retry_delay(state)
            if delay is None:
                break
            yield delay
        return attempt.finish(state)
    except BaseException as exc:
        # KeyboardInterrupt, SystemExit: record what happened, then let it go on.
        attempt.crash(exc)
        raise
    finally:
        attempt.exit()


def _call_sync(attempt: TaskAttempt, call: Any) -> State:
    """One try of a sync task: ``call(task, parameters)``, as a state."""
    try:
        return attempt.outcome(call(attempt.task, attempt.ctx.parameters))
    except DeadlineExceeded:
        return attempt.outcome(timed_out=True)
    except Exception as exc:
        return attempt.outcome(error=exc)


async def _call_async(attempt: TaskAttempt) -> State:
    """One try of an async task: its coroutine awaited (with its timeout), as a state."""
    import asyncio

    task = attempt.task
    args, kwargs = task.to_call_args(attempt.ctx.parameters)
    try:
        coro = task.fn(*args, **kwargs)
        if task.timeout_seconds is None:
            value = await coro
        else:
            value = await asyncio.wait_for(coro, task.timeout_seconds)
        return attempt.outcome(value)
    except asyncio.TimeoutError:
        return attempt.outcome(timed_out=True)
    except Exception as exc:
        return attempt.outcome(error=exc)


def run_task(
    task: TaskLike,
    task_run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: context.FlowRunContext | None,
    runner: TaskRunnerLike | None = None,
) -> State:
    """Run a sync task to its final state (all tries) in the calling thread.

    Each try's function call goes to ``runner.call`` when the run was submitted
    (a process or Dask runner executes it elsewhere), else runs here. The
    state machine itself always runs in this process, so workers never need
    the store.
    """
    try:
        attempt = _attempt_or_not_ready(task, task_run, parameters, wait_for, flow_ctx)
        if not isinstance(attempt, TaskAttempt):
            return attempt
        call = runner.call if runner is not None else call_task_fn
        steps = _task_steps(attempt)
        reply: Any = None
        while True:
            request = steps.send(reply)
            try:
                if request is _CALL:
                    reply = _call_sync(attempt, call)
                elif request is _SLOTS:
                    reply = _tag_slots(frozenset(task_run.tags))
                else:
                    time.sleep(request)
                    reply = None
            except BaseException as exc:
                steps.throw(exc)  # records the interruption, then raises it again
                raise
    except StopIteration as stop:
        return stop.value
    finally:
        if _held:  # an error before the run's next state: its creation is still recorded
            _write_held(task_run)


async def run_task_async(
    task: TaskLike,
    task_run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: context.FlowRunContext | None,
) -> State:
    """Run an async task to its final state (all tries)."""
    import asyncio

    attempt = _attempt_or_not_ready(task, task_run, parameters, wait_for, flow_ctx)
    if not isinstance(attempt, TaskAttempt):
        return attempt
    steps = _task_steps(attempt)
    reply: Any = None
    try:
        while True:
            request = steps.send(reply)
            try:
                if request is _CALL:
                    reply = await _call_async(attempt)
                elif request is _SLOTS:
                    reply = await _tag_slots_async(frozenset(task_run.tags))
                else:
                    await asyncio.sleep(request)
                    reply = None
            except BaseException as exc:
                steps.throw(exc)
                raise
    except StopIteration as stop:
        return stop.value


def run_task_any(
    task: TaskLike,
    task_run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: context.FlowRunContext | None,
    runner: TaskRunnerLike | None = None,
) -> State:
    """Run a sync or async task to its final state from sync code."""
    if task.is_async:
        return run_coro_sync(run_task_async(task, task_run, parameters, wait_for, flow_ctx))
    return run_task(task, task_run, parameters, wait_for, flow_ctx, runner)
