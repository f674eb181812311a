"""The engine: the one place that moves flow and task runs through their states.

Every transition goes through :func:`set_state`, which

1. updates the in-memory run (``run.state``),
2. appends one event to the process's journal (the store folds it into
   DuckDB later; see :mod:`kernelflow.store.journal`),
3. tells listeners (live widgets) registered with :func:`subscribe`.

A task run goes Pending → Running → Completed | Cached | Failed | TimedOut,
with AwaitingRetry → Retrying between tries; a flow run the same, plus
Crashed when the process is interrupted. The terminal state is always written,
in ``finally`` if need be. Sync and async runs share every decision
(:class:`TaskAttempt`, :func:`exception_to_state`, :func:`return_value_to_state`);
the drivers only differ in how they call, wait and sleep.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
import json
import logging
import random
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING, Any

from kernelflow import context, transactions
from kernelflow._sync import run_coro_sync
from kernelflow.errors import (
    ConfigurationError,
    FlowRunTimeoutError,
    HashingError,
    KernelflowError,
    ParameterTypeError,
    ResultSerializationError,
    StoreError,
    TaskRunTimeoutError,
    UpstreamTaskError,
)
from kernelflow.futures import TaskRunFuture, resolve_futures_to_states
from kernelflow.logs import configure as configure_logging
from kernelflow.logs import enable_print_capture, run_logger
from kernelflow.runners import call_task_fn
from kernelflow.runs import FlowRun, TaskRun
from kernelflow.states import (
    AwaitingRetry,
    Cached,
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Pending,
    Retrying,
    Running,
    State,
    StateType,
    StoredResult,
    TimedOut,
)
from kernelflow.store.journal import current_journal, encode_event
from kernelflow.timeouts import DeadlineExceeded, call_with_timeout
from kernelflow.utilities.annotations import allow_failure, opaque, quote

if TYPE_CHECKING:
    from kernelflow.flows import Flow
    from kernelflow.runners import TaskRunner
    from kernelflow.tasks import Task

__all__ = [
    "run_flow",
    "run_task",
    "set_state",
    "subscribe",
    "unsubscribe",
]

_MESSAGE_LIMIT = 4000
_listeners: list[Callable[[str, Any, State], None]] = []
_engine_log = logging.getLogger("kernelflow.engine")


# --- transitions --------------------------------------------------------------
def subscribe(listener: Callable[[str, Any, State], None]) -> None:
    """Call ``listener(kind, run, state)`` on every transition in this process."""
    _listeners.append(listener)


def unsubscribe(listener: Callable[[str, Any, State], None]) -> None:
    """Stop calling ``listener``."""
    if listener in _listeners:
        _listeners.remove(listener)


#: Run id -> (journal lines, event count) held back by ``set_state(..., hold=True)``.
_held: dict[str, tuple[bytes, int]] = {}


def _write_held(run: FlowRun | TaskRun) -> None:
    """Write what is still held for ``run`` (its next state never came: an early error)."""
    earlier = _held.pop(run.id, None) if _held else None
    if earlier is not None:
        current_journal().write_encoded(*earlier)


def _state_event(kind: str, run: FlowRun | TaskRun, state: State, result: str | None) -> dict:
    message = state.message
    if message is not None and len(message) > _MESSAGE_LIMIT:
        message = message[:_MESSAGE_LIMIT] + "…"
    event = {
        "ev": "state",
        "run_id": run.id,
        "kind": kind,
        "type": state.type.value,
        "name": state.name,
        "message": message,
        "t": state.timestamp,
        "run_count": run.run_count,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "result": result,
    }
    # A field left out reads as null: most states have no message, end or result.
    return {key: value for key, value in event.items() if value is not None}


_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C, as the journal's
_float = float.__repr__  # TypeError for anything but a float, as _encode_state_event needs
_MESSAGE_KEY, _START_KEY, _END_KEY, _RESULT_KEY = (
    '"message":',
    ',"start_time":',
    ',"end_time":',
    ',"result":',
)
_PENDING_FIELD = ',"pending":true'


def _encode_state_event(
    kind: str, run: FlowRun | TaskRun, state: State, result: str | None
) -> bytes | None:
    """The journal line of a state event, built without the generic JSON encoder.

    A run's every transition writes one, so this is the hottest line of the
    engine: the same bytes as ``_state_event`` through the journal's encoder
    (``tests/test_scale.py`` checks), several times faster. None when a field
    is not of the plain type this relies on (a float that is not finite, a
    name that is not a string...); the caller then encodes the event the
    generic way. Null fields are left out, as ``_state_event`` leaves them.
    """
    message, t, start, end = state.message, state.timestamp, run.start_time, run.end_time
    try:
        if t - t or (start is not None and start - start) or (end is not None and end - end):
            return None  # NaN or infinity: the generic encoder writes them its own way
        if message is not None and len(message) > _MESSAGE_LIMIT:
            message = message[:_MESSAGE_LIMIT] + "…"
        text = (
            f'{{"ev":"state","run_id":{_quote(run.id)},"kind":"{kind}",'
            f'"type":"{state.type._value_}","name":{_quote(state.name)},'
            f"{'' if message is None else _MESSAGE_KEY + _quote(message) + ','}"
            f'"t":{_float(t)},"run_count":{int.__index__(run.run_count)}'
            f"{'' if start is None else _START_KEY + _float(start)}"
            f"{'' if end is None else _END_KEY + _float(end)}"
            f"{'' if result is None else _RESULT_KEY + _quote(result)}}}\n"
        )
    except TypeError:
        return None
    return text.encode("utf-8", "surrogatepass")


def _encode_created(event: dict) -> bytes:
    """The journal line of an event written with a state (``before``): a task run's
    creation fast, as :func:`_encode_state_event`; any other event the generic way.

    A creation that implies its Pending state (``"pending": true``, see
    :func:`_implies_pending`) carries that field last.
    """
    if event.get("ev") != "task_run":
        return encode_event(event)
    pending = event.get("pending")
    if len(event) != (10 if pending is True else 9):
        return encode_event(event)
    try:
        flow_run_id, cache_key, tags = event["flow_run_id"], event["cache_key"], event["tags"]
        if type(tags) is not list:
            return encode_event(event)
        inputs = []
        for name, record in event["inputs"].items():
            hash_, upstream = _hash_and_upstream(record)
            inputs.append(
                f'{_quote(name)}:{{"hash":{"null" if hash_ is None else _quote(hash_)},'
                f'"upstream":{"null" if upstream is None else _quote(upstream)}}}'
            )
        t = event["t"]
        if t - t:
            return encode_event(event)  # NaN or infinity
        if pending and next(reversed(event)) != "pending":
            return encode_event(event)  # not last: the generic encoder keeps the order
        text = (
            f'{{"ev":"task_run","id":{_quote(event["id"])},'
            f'"flow_run_id":{"null" if flow_run_id is None else _quote(flow_run_id)},'
            f'"task_name":{_quote(event["task_name"])},"name":{_quote(event["name"])},'
            f'"tags":[{",".join([_quote(tag) for tag in event["tags"]])}],'
            f'"cache_key":{"null" if cache_key is None else _quote(cache_key)},'
            f'"inputs":{{{",".join(inputs)}}},"t":{_float(t)}'
            f"{_PENDING_FIELD if pending else ''}}}\n"
        )
    except (TypeError, KeyError, ValueError):
        return encode_event(event)
    return text.encode("utf-8", "surrogatepass")


def _implies_pending(run: FlowRun | TaskRun, state: State, before: list[dict]) -> bool:
    """Whether ``state`` is the plain Pending that ``before``'s task run creation implies.

    Then the creation line carries ``"pending": true`` and no state line is written: the
    fold reads it as a Pending state at the creation's time (one line of four fewer per
    task run). Anything else about the state (a message, a result, another time) keeps
    its own line.
    """
    created = before[-1]
    return (
        created.get("ev") == "task_run"
        and created.get("id") == run.id
        and state.type is StateType.PENDING
        and state.name == "Pending"
        and state.message is None
        and created.get("t") == state.timestamp
        and not run.run_count
        and run.start_time is None
        and run.end_time is None
    )


def _hash_and_upstream(record: dict) -> tuple[str | None, str | None]:
    """An input record's two fields, in the order the journal writes them (else ValueError)."""
    if type(record) is not dict or len(record) != 2:
        raise ValueError("not an input record")
    (k1, hash_), (k2, upstream) = record.items()
    if k1 != "hash" or k2 != "upstream":
        raise ValueError("not an input record")
    return hash_, upstream


def set_state(
    kind: str,
    run: FlowRun | TaskRun,
    state: State,
    *,
    result: str | None = None,
    before: list[dict] | None = None,
    hold: bool = False,
) -> State:
    """Move ``run`` to ``state``: the only function that changes a run's state.

    ``before`` are events (e.g. the run's creation) written in the same
    journal append, ahead of the state event. ``hold`` keeps the events back
    until the run's next state, to be written in the same append: for a task
    run that starts at once, whose Pending nobody reads in between (listeners
    are told at once all the same).
    """
    if state.is_final() and run.end_time is None:
        run.end_time = state.timestamp
    run.state = state
    state.run_id = run.id
    if before and result is None and _implies_pending(run, state, before):
        before[-1]["pending"] = True
        line, count = b"".join(map(_encode_created, before)), len(before)
    else:
        line = _encode_state_event(kind, run, state, result)
        if line is None:
            line = encode_event(_state_event(kind, run, state, result))
        count = 1
        if before:
            line = b"".join(map(_encode_created, before)) + line
            count += len(before)
    if _held:
        earlier = _held.pop(run.id, None)
        if earlier is not None:
            line, count = earlier[0] + line, earlier[1] + count
    if hold:
        _held[run.id] = (line, count)
    else:
        current_journal().write_encoded(line, count)
    for listener in _listeners:
        try:
            listener(kind, run, state)
        except Exception:  # a broken listener must never break a run
            _engine_log.exception("A state listener failed; the run goes on")
    return state


_finish_loggers = {kind: logging.getLogger(f"kernelflow.runs.{kind}") for kind in ("flow", "task")}


#: ``extra`` of a log line shown on the console but not written to the run's logs.
_CONSOLE_ONLY = {"journal": False}


def _finished_log(kind: str, run: FlowRun | TaskRun, state: State) -> None:
    # As Prefect 3 prints it: a flow's final state at INFO whatever it is, a task's at
    # ERROR unless it completed; the state in its short form ("Failed('boom')").
    level = logging.INFO if kind == "flow" or state.is_completed() else logging.ERROR
    # The level first: building the record costs more than the check, and this line
    # is often below the configured level (e.g. every cache hit under WARNING).
    logger = _finish_loggers[kind]
    if not logger.isEnabledFor(level):
        return
    # One line per run: the record is made here as run_logger(kind, run).log() would make
    # it, minus the adapter and the stack walk (findCaller), which cost more than the rest.
    label = f"{'Flow' if kind == 'flow' else 'Task'} run '{run.name}'"
    extra = {"run_id": run.id, "run_kind": kind, "run_label": label, "journal": False}
    record = logger.makeRecord(
        logger.name,
        level,
        *_FINISHED_CALLER,
        "Finished in state %s",
        # The state's text, not the state: a handler that keeps records (a test's capture,
        # a live view) must not keep every run's state and result alive with them.
        (str(state),),
        None,
        _finished_log.__name__,
        extra,
    )
    logger.handle(record)


#: Where the "Finished in state" record says it was logged: this module (is_own_record).
_FINISHED_CALLER = (_finished_log.__code__.co_filename, _finished_log.__code__.co_firstlineno)


def _hook_name(hook: Callable) -> str:
    """A hook's name as Prefect logs it: its ``__name__``, a partial's function's, its class's."""
    name = getattr(hook, "__name__", None)
    if name is None and isinstance(hook, functools.partial):
        name = getattr(hook.func, "__name__", None)
    return name or type(hook).__name__


def _call_hooks(hooks: list[Callable], owner: Any, run: Any, state: State, kind: str) -> None:
    """Call state hooks in order; a failing hook is logged and leaves the run's state alone."""
    logger = run_logger(kind, run)
    for hook in hooks:
        name = _hook_name(hook)
        logger.info("Running hook %r in response to entering state %r", name, state.name)
        try:
            hook(owner, run, state)
        except Exception:
            logger.error("An error was encountered while running hook %r", name, exc_info=True)
        else:
            logger.info("Hook %r finished running successfully", name)


def _seconds_text(seconds: float) -> str:
    """Seconds as Prefect prints a retry delay: ``1`` for a whole number, else ``0.25``."""
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


# --- inputs -----------------------------------------------------------------
def _needs_resolving(value: Any) -> bool:
    if isinstance(value, (TaskRunFuture, State, allow_failure, quote, opaque)):
        return True
    if isinstance(value, (list, tuple, set)):
        return any(_needs_resolving(v) for v in value)
    if isinstance(value, dict):
        return any(_needs_resolving(v) for v in value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_needs_resolving(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


def _completed_value(state: State) -> Any:
    """A completed state's value, read back from the store if it is kept only there."""
    data = state.data
    return data.load() if isinstance(data, StoredResult) else data


def _resolve(value: Any, upstream: list[str], allowed: bool = False) -> Any:
    if isinstance(value, allow_failure):
        return _resolve(value.value, upstream, True)
    if isinstance(value, quote):
        return value.value  # as given: nothing resolved, nothing walked
    if isinstance(value, opaque):
        inner = value.value  # the top level resolved, its contents never walked
        if isinstance(inner, (TaskRunFuture, State)):
            return _resolve(inner, upstream, allowed)
        return inner
    if isinstance(value, TaskRunFuture):
        upstream.append(value.task_run_id)
        state = value.final_state()
        if state.is_completed():
            return _completed_value(state)
        if allowed:
            return None
        raise UpstreamTaskError(
            f"Upstream task run '{value.task_run.name}' did not reach a 'COMPLETED' state."
        )
    if isinstance(value, State):
        if value.is_completed():
            return _completed_value(value)
        if allowed:
            return None
        raise UpstreamTaskError(f"An upstream state is {value.name}, not Completed.")
    if isinstance(value, (list, tuple, set)):
        return type(value)(_resolve(v, upstream, allowed) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, upstream, allowed) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Rebuilt with the resolved fields, as Prefect does (so __init__ runs again).
        changes = {
            f.name: _resolve(getattr(value, f.name), upstream, allowed)
            for f in dataclasses.fields(value)
            if f.init and _needs_resolving(getattr(value, f.name))
        }
        return dataclasses.replace(value, **changes) if changes else value
    return value


def resolve_inputs(parameters: dict[str, Any], wait_for: Any) -> tuple[dict[str, Any], list[str]]:
    """Wait for upstream futures and replace them by their values.

    Raises
    ------
    UpstreamTaskError
        When an upstream did not complete and is not wrapped in ``allow_failure``.
    """
    upstream: list[str] = []
    if wait_for:
        for item in wait_for if isinstance(wait_for, (list, tuple, set)) else [wait_for]:
            _resolve(item, upstream)
    if not any(_needs_resolving(v) for v in parameters.values()):
        return parameters, upstream
    return {k: _resolve(v, upstream) for k, v in parameters.items()}, upstream


def upstream_ids(parameters: dict[str, Any]) -> dict[str, dict]:
    """Input records for lineage: which task run (if any) each argument came from."""
    inputs = {}
    for name, value in parameters.items():
        while isinstance(value, (allow_failure, opaque)):
            value = value.value
        inputs[name] = {
            "hash": None,
            "upstream": value.task_run_id if isinstance(value, TaskRunFuture) else None,
        }
    return inputs


# --- task runs ----------------------------------------------------------------
_detached_counts: dict[str, int] = {}
_detached_lock = threading.Lock()


def create_task_run(
    task: Task,
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
    created = {
        "ev": "task_run",
        "id": run.id,
        "flow_run_id": run.flow_run_id,
        "task_name": task.name,
        "name": name,
        "tags": run.tags,
        "cache_key": None,
        "inputs": upstream_ids(parameters) if inputs is None else inputs,
        # The creation's time is its Pending's, so its line can stand for both.
        "t": pending.timestamp,
    }
    set_state("task", run, pending, before=[created], hold=hold)
    return run


class TaskAttempt:
    """The decisions of one task run, shared by the sync and async drivers."""

    __slots__ = (
        "ctx",
        "events",
        "flow_ctx",
        "immediate_retry",
        "key",
        "persist",
        "record",
        "result_name",
        "task",
        "task_run",
        "token",
    )

    def __init__(
        self,
        task: Task,
        task_run: TaskRun,
        parameters: dict[str, Any],
        flow_ctx: context.FlowRunContext | None,
    ) -> None:
        log_prints = task.log_prints
        if log_prints is None:
            log_prints = flow_ctx.log_prints if flow_ctx is not None else False
        if log_prints:
            enable_print_capture()
        self.task = task
        self.task_run = task_run
        self.flow_ctx = flow_ctx
        self.ctx = context.TaskRunContext(task, task_run, parameters, log_prints)
        self.key: str | None = None
        #: The rendered result_storage_key: the result's name under results/.
        self.result_name: str | None = None
        # Whether the result is persisted: the task's persist_result, else its
        # flow's (Prefect's should_persist_result).
        persist = task.persist_result
        if persist is None and flow_ctx is not None and flow_ctx.flow is not None:
            persist = flow_ctx.flow.persist_result
        # A value not kept in memory must be kept in the store.
        self.persist = bool(persist) or not task.cache_result_in_memory
        #: (path, checksum, format) of the result file this run wrote, if any.
        self.record: tuple[str, str, str] | None = None
        self.token: contextvars.Token | None = None
        #: Whether the next try follows a retry with no delay (it starts "Retrying").
        self.immediate_retry = False
        # Events (inputs, cache_hit) journaled with the next state, in one write.
        self.events: list[dict] = []
        # Inside a transaction (a transaction() block, or the run of a task calling this
        # one) the run has its own, a child of it. Elsewhere it has none until one is
        # needed (hooks, get_transaction()), so a plain run pays nothing for them.
        parent = transactions.get_transaction()
        if parent is not None:
            transactions.task_transaction(self.ctx, parent)

    def enter(self) -> None:
        """Make this task run the current one for code it calls."""
        self.token = context.task_context.set(self.ctx)
        if self.ctx.transaction is not None:
            self.ctx.transaction._activate()

    def exit(self) -> None:
        """Restore the previous task context; journal any event still held."""
        if self.events:
            current_journal().write_many(self._take_events())
        if self.ctx.transaction is not None:
            self.ctx.transaction._deactivate()
        if self.token is not None:
            context.task_context.reset(self.token)
            self.token = None

    def _take_events(self) -> list[dict]:
        events, self.events = self.events, []
        return events

    def cache_policy(self) -> Any:
        """The policy this run keys on: the task's, or DEFAULT when its flow persists results."""
        task = self.task
        if task.cache_policy is None and getattr(task, "caches_by_default", False) and self.persist:
            from kernelflow.cache import DEFAULT

            return DEFAULT
        return task.cache_policy

    def cached_state(self) -> State | None:
        """Compute the cache key; on a hit, the Cached state to finish with."""
        task = self.task
        if getattr(task, "result_storage_key", None) is not None and task.persist_result:
            return self._stored_under_key()
        policy = self.cache_policy()
        if policy is None:
            return None
        from kernelflow.cache import compute_cache_key

        hashes: dict[str, str] = {}
        try:
            self.key = compute_cache_key(policy, self.ctx, hashes)
        except (HashingError, KernelflowError) as exc:
            if not (isinstance(exc, HashingError) and getattr(task, "caches_by_default", False)):
                return Failed(message=str(exc), data=exc)
            # Caching nobody asked for (DEFAULT, from persisted results) must not fail
            # the task: as in Prefect, it runs without a cache key.
            run_logger("task", self.task_run).warning(
                "No cache key (%s); the task runs without caching", exc
            )
            self.key = None
            return None
        self.task_run.cache_key = self.key
        if self.ctx.transaction is not None:
            self.ctx.transaction.key = self.key
        if hashes or self.key is not None:
            # The key is known only now (inputs resolved), after the task_run
            # event: this event carries it to task_runs.cache_key.
            self.events.append(
                {
                    "ev": "inputs",
                    "run_id": self.task_run.id,
                    "cache_key": self.key,
                    "inputs": hashes,
                }
            )
        if self.key is None or task.refresh_cache:
            return None
        from kernelflow import cache_index

        hit = cache_index.lookup(
            self.key,
            task_run_id=self.task_run.id,
            events=self.events,
            refuse=policy.refuse,
        )
        if hit is None:
            return None
        return Cached(data=hit.value)

    def _stored_under_key(self) -> State | None:
        """``result_storage_key``: the rendered key names the result and is its cache key.

        As in Prefect (``compute_transaction_key``), a result already stored
        under the key is reused, unless ``refresh_cache`` or ``NO_CACHE``.
        """
        task = self.task
        try:
            self.result_name = render_result_storage_key(task.result_storage_key, self.ctx)
        except ConfigurationError as exc:
            return Failed(message=str(exc), data=exc)
        self.key = f"result_storage_key:{self.result_name}"
        self.task_run.cache_key = self.key
        if self.ctx.transaction is not None:
            self.ctx.transaction.key = self.key
        self.events.append(
            {"ev": "inputs", "run_id": self.task_run.id, "cache_key": self.key, "inputs": {}}
        )
        from kernelflow import cache_index
        from kernelflow.cache import NO_CACHE

        if task.refresh_cache or task.cache_policy is NO_CACHE:
            return None
        hit = cache_index.lookup(self.key, task_run_id=self.task_run.id, events=self.events)
        if hit is None:
            return None
        return Cached(data=hit.value)

    def start_try(self) -> None:
        """Enter Running (first try) or Retrying (later tries)."""
        run = self.task_run
        run.run_count += 1
        if run.start_time is None:
            run.start_time = time.time()
        # As Prefect: a retry that starts at once is "Retrying", one after a delay "Running".
        retrying = run.run_count > 1 and self.immediate_retry
        set_state("task", run, Retrying() if retrying else Running(), before=self._take_events())
        if self.task.on_running_hooks:
            _call_hooks(self.task.on_running_hooks, self.task, run, run.state, "task")

    def outcome(
        self, value: Any = None, error: BaseException | None = None, timed_out: bool = False
    ) -> State:
        """The state a try ended in."""
        # A State the function returned becomes the run's state, and is what calling
        # the task returns (Prefect's task engine keeps it as the return value).
        self.task_run.returned_state = error is None and not timed_out and isinstance(value, State)
        if timed_out:
            seconds = self.task.timeout_seconds
            exc = TaskRunTimeoutError(f"Task run exceeded timeout of {seconds} second(s)")
            return TimedOut(message=str(exc), data=exc)
        if error is not None:
            return exception_to_state(error, "Task run encountered an exception")
        if isinstance(value, State):
            return value
        return Completed(data=value)

    def retry_delay(self, state: State) -> float | None:
        """Seconds to wait before the next try, or None when no try is left.

        A returned ``Failed`` state is retried like a raised exception, as in Prefect.
        """
        task, run = self.task, self.task_run
        if not state.is_failed():
            return None
        # Prefect's lines: "Task run failed with exception: ValueError('x') - Retry 1/3 will
        # start 2 second(s) from now", then "... - Retries are exhausted" at ERROR.
        failure = ("state", state) if run.returned_state else ("exception", state.data)
        if run.run_count > task.retries:
            self._roll_back()
            exhausted = " - Retries are exhausted" if task.retries else ""
            run_logger("task", run).error(
                "Task run failed with %s: %r%s", *failure, exhausted, exc_info=_exc_info(state)
            )
            return self._not_retried(state)
        if task.retry_condition_fn is not None:
            try:
                if not task.retry_condition_fn(task, run, state):
                    return self._not_retried(state)
            except Exception:
                run_logger("task", run).exception("retry_condition_fn failed; not retrying")
                return self._not_retried(state)
        delay = task.delay_for_retry(run.run_count)
        if task.retry_jitter_factor:
            delay = max(0.0, delay * (1 + random.uniform(-1, 1) * task.retry_jitter_factor))
        set_state("task", run, AwaitingRetry(message=state.message, data=state.data))
        when = f"{_seconds_text(round(delay, 3))} second(s) from now" if delay else "immediately"
        run_logger("task", run).info(
            "Task run failed with %s: %r - Retry %s/%s will start %s",
            *failure,
            run.run_count,
            task.retries,
            when,
            extra={"retry_delay": delay},  # widgets/_logs.py: the live view's countdown
        )
        self.immediate_retry = not delay
        return delay

    def _not_retried(self, state: State) -> None:
        self._roll_back()
        if state.name == "TimedOut":  # Prefect says so once more, in its own words
            run_logger("task", self.task_run).error("%s", state.message)
        return None

    def _roll_back(self) -> None:
        """Roll the failed run's transaction back now: before its failure is logged, as in
        Prefect, where the exception leaves the transaction before the engine sees it."""
        txn = self.ctx.transaction
        if txn is not None and not txn._closed:
            txn._close(failed=True)

    def finish(self, state: State) -> State:
        """Persist the result if asked, enter the final state, settle the transaction, call hooks.

        In a transaction the result is written now, its cache entry when the
        transaction commits (:meth:`_settle`). A run that did not complete
        rolls its transaction back, and with it the enclosing ones, before its
        state is written, as in Prefect.
        """
        task, run = self.task, self.task_run
        txn = self.ctx.transaction
        if txn is None and (task.on_commit_hooks or task.on_rollback_hooks):
            txn = transactions.task_transaction(self.ctx)  # the run's own, for its hooks
        result_path = None
        staged = None
        if state.is_completed() and state.name != "Cached":
            try:
                if txn is None:
                    result_path = self._persist(state)
                else:
                    result_path, staged = self._persist_staged(state)
            except (ResultSerializationError, ConfigurationError) as exc:
                state = Failed(message=str(exc), data=exc)
        if txn is not None and not state.is_completed() and not txn._closed:
            txn._close(failed=True)
        set_state("task", run, state, result=result_path, before=self._take_events())
        if txn is not None and state.is_completed():
            self._settle(txn, state, result_path, staged)
        if state.is_completed() and task.on_completion_hooks:
            _call_hooks(task.on_completion_hooks, task, run, state, "task")
        elif state.is_failed() and task.on_failure_hooks:
            _call_hooks(task.on_failure_hooks, task, run, state, "task")
        _finished_log("task", run, state)  # after the hooks, as Prefect's console shows
        if self.record is not None and not task.cache_result_in_memory and state.is_completed():
            state.data = StoredResult(*self.record)  # the store has it: let go of the value
        return state

    def _persist(self, state: State) -> str | None:
        task = self.task
        if task.persist_result is False:
            return None
        if self.key is not None:
            from kernelflow import cache_index

            run = self.task_run
            entry = cache_index.store(
                self.key,
                state.data,
                task_name=task.name,
                expires=self._expires(),
                task_run_id=run.id,
                duration=time.time() - (run.start_time or time.time()),
                result_name=self.result_name,
            )
            self.record = (entry.result, entry.checksum, entry.format)
            return entry.result
        if self.persist:
            from kernelflow.results import write_result

            written = write_result(state.data, task_name=task.name)
            self.record = (written.path, written.checksum, written.format)
            return written.path
        return None

    def _expires(self) -> float | None:
        expiration = self.task.cache_expiration
        return None if expiration is None else time.time() + expiration

    def _persist_staged(self, state: State) -> tuple[str | None, transactions.StagedEntry | None]:
        """As :meth:`_persist`, but the cache entry is returned, to be written at commit."""
        task = self.task
        if task.persist_result is False or (self.key is None and not self.persist):
            return None, None
        from kernelflow.results import write_result

        record = write_result(state.data, task_name=task.name, name=self.result_name)
        self.record = (record.path, record.checksum, record.format)
        if self.key is None:
            return record.path, None
        run = self.task_run
        duration = time.time() - (run.start_time or time.time())
        entry = transactions.StagedEntry(
            self.key, record, task.name, self._expires(), run.id, duration
        )
        return record.path, entry

    def _settle(
        self,
        txn: transactions.Transaction,
        state: State,
        result_path: str | None,
        staged: transactions.StagedEntry | None,
    ) -> None:
        """Stage the completed run's result and hooks in its transaction, then end it.

        Ending commits at once outside any transaction (or with ``CommitMode.EAGER``);
        inside one, the commit waits for the enclosing transaction's.
        """
        task = self.task
        if state.name == "Cached":
            txn._began_committed()  # its record exists: nothing to stage, no hooks
        else:
            rolled_back = functools.partial(_mark_rolled_back, self.task_run, result_path)
            rolled_back.log_on_run = False  # type: ignore[attr-defined]  # Prefect's marker
            txn._stage_entry(
                state.data,
                staged,
                [rolled_back, *task.on_rollback_hooks],
                list(task.on_commit_hooks),
            )
        txn._close(failed=False)

    def crash(self, exc: BaseException) -> None:
        """Record a run interrupted by ``exc``: Cancelled, or Crashed (see interrupted_state)."""
        txn = self.ctx.transaction
        if txn is not None:
            txn._abort()
        if _crash_needs_recording(self.task_run, exc):
            set_state("task", self.task_run, interrupted_state(exc))


def _mark_rolled_back(run: TaskRun, result: str | None, txn: transactions.Transaction) -> None:
    """The rollback hook the engine gives every completed run (Prefect's ``handle_rollback``).

    Registered first, so it runs after the task's own hooks: the run becomes
    ``RolledBack`` (type COMPLETED), keeping the value that calls and futures
    already returned.
    """
    data = run.state.data if run.state is not None else None
    message = "Task rolled back as part of transaction"
    set_state("task", run, Completed(name="RolledBack", message=message, data=data), result=result)


def interrupted_state(exc: BaseException) -> State:
    """The final state of a run that ``exc`` interrupted.

    The stop button (KeyboardInterrupt) is the user cancelling, as in Prefect's
    UI: Cancelled. Anything else (SystemExit, a killed worker) is Crashed.
    """
    if isinstance(exc, KeyboardInterrupt):
        return Cancelled(message="Cancelled by an interrupt (KeyboardInterrupt)")
    return Crashed(message=f"Interrupted by {type(exc).__name__}")


def _crash_needs_recording(run: FlowRun | TaskRun, exc: BaseException) -> bool:
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


def _exc_info(state: State) -> BaseException | bool:
    """The exception a failed state carries, for a log line's traceback (False: none)."""
    return state.data if isinstance(state.data, BaseException) else False


def exception_to_state(exc: BaseException, prefix: str) -> State:
    """The Failed state for an exception raised by user code.

    Prefect's format: the prefix, a space, ``Type: message``, e.g. ``Task run
    encountered an exception ValueError: nope`` or ``Flow run encountered an
    exception: ValueError: boom``.
    """
    return Failed(message=f"{prefix} {type(exc).__name__}: {exc}", data=exc)


def render_result_storage_key(template: str, ctx: context.TaskRunContext) -> str:
    """A task's ``result_storage_key`` formatted as Prefect formats it, checked.

    The fields are ``parameters`` (the call's arguments) and the runtime
    modules ``flow_run``, ``task_run`` and ``deployment``, e.g.
    ``"{flow_run.name}/sales-{parameters[day]}"``.

    Raises
    ------
    ConfigurationError
        The template names a field that is not there, or the result leaves ``results/``.
    """
    from kernelflow import runtime
    from kernelflow.results import check_result_name

    fields = {
        "flow_run": runtime.flow_run,
        "task_run": runtime.task_run,
        "deployment": runtime.deployment,
    }
    try:
        name = template.format(**fields, parameters=ctx.parameters)
    except (KeyError, IndexError, AttributeError, ValueError) as exc:
        raise ConfigurationError(
            f"result_storage_key {template!r} cannot be formatted ({type(exc).__name__}: "
            f"{exc}); it can use parameters[name] (one of {sorted(ctx.parameters)}), "
            "flow_run, task_run and deployment."
        ) from None
    return check_result_name(name, template)


def _tag_slots(tags: frozenset[str]) -> Any:
    """One slot of each concurrency limit named by a tag (see kernelflow.concurrency._tags)."""
    from kernelflow.concurrency._tags import acquire_tag_slots

    return acquire_tag_slots(tags)


async def _tag_slots_async(tags: frozenset[str]) -> Any:
    from kernelflow.concurrency._tags import acquire_tag_slots_async

    return await acquire_tag_slots_async(tags)


def run_task(
    task: Task,
    task_run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: context.FlowRunContext | None,
    runner: TaskRunner | None = None,
) -> State:
    """Run a sync task to its final state (all tries) in the calling thread.

    Each try's function call goes to ``runner.call`` when the run was submitted
    (a process or Dask runner executes it elsewhere), else runs here. The
    state machine itself always runs in this process, so workers never need
    the store.
    """
    try:
        return _run_task(task, task_run, parameters, wait_for, flow_ctx, runner)
    finally:
        if _held:  # an error before the run's next state: its creation is still recorded
            _write_held(task_run)


def _run_task(
    task: Task,
    task_run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: context.FlowRunContext | None,
    runner: TaskRunner | None,
) -> State:
    call = runner.call if runner is not None else call_task_fn
    try:
        resolved, _ = resolve_inputs(parameters, wait_for)
    except UpstreamTaskError as exc:
        state = set_state("task", task_run, Pending(name="NotReady", message=str(exc), data=exc))
        _finished_log("task", task_run, state)
        return state
    attempt = TaskAttempt(task, task_run, resolved, flow_ctx)
    attempt.enter()
    state: State | None = None
    try:
        state = attempt.cached_state()
        if state is not None:
            return attempt.finish(state)
        while True:
            # Concurrency limits named by the task's tags: a slot each, per try.
            slots = _tag_slots(frozenset(task_run.tags)) if task_run.tags else None
            attempt.start_try()
            try:
                state = attempt.outcome(call(task, resolved))
            except DeadlineExceeded:
                state = attempt.outcome(timed_out=True)
            except Exception as exc:
                state = attempt.outcome(error=exc)
            finally:
                if slots is not None:
                    slots.release()
            delay = attempt.retry_delay(state)
            if delay is None:
                break
            time.sleep(delay)
        return attempt.finish(state)
    except BaseException as exc:
        # KeyboardInterrupt, SystemExit: record what happened, then let it go on.
        attempt.crash(exc)
        raise
    finally:
        attempt.exit()


async def run_task_async(
    task: Task,
    task_run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: context.FlowRunContext | None,
) -> State:
    """Run an async task to its final state (all tries)."""
    import asyncio

    try:
        resolved, _ = resolve_inputs(parameters, wait_for)
    except UpstreamTaskError as exc:
        return set_state("task", task_run, Pending(name="NotReady", message=str(exc), data=exc))
    attempt = TaskAttempt(task, task_run, resolved, flow_ctx)
    attempt.enter()
    try:
        state = attempt.cached_state()
        if state is not None:
            return attempt.finish(state)
        while True:
            slots = await _tag_slots_async(frozenset(task_run.tags)) if task_run.tags else None
            attempt.start_try()
            args, kwargs = task.to_call_args(resolved)
            try:
                coro = task.fn(*args, **kwargs)
                if task.timeout_seconds is None:
                    value = await coro
                else:
                    value = await asyncio.wait_for(coro, task.timeout_seconds)
                state = attempt.outcome(value)
            except asyncio.TimeoutError:
                state = attempt.outcome(timed_out=True)
            except Exception as exc:
                state = attempt.outcome(error=exc)
            finally:
                if slots is not None:
                    slots.release()
            delay = attempt.retry_delay(state)
            if delay is None:
                break
            await asyncio.sleep(delay)
        return attempt.finish(state)
    except BaseException as exc:
        attempt.crash(exc)
        raise
    finally:
        attempt.exit()


def run_task_any(
    task: Task,
    task_run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: context.FlowRunContext | None,
    runner: TaskRunner | None = None,
) -> State:
    """Run a sync or async task to its final state from sync code."""
    if task.is_async:
        return run_coro_sync(run_task_async(task, task_run, parameters, wait_for, flow_ctx))
    return run_task(task, task_run, parameters, wait_for, flow_ctx, runner)


# --- flow runs ----------------------------------------------------------------
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

    def __init__(self, flow: Flow, parameters: dict[str, Any]) -> None:
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
        created = {
            "ev": "flow_run",
            "id": run.id,
            "flow_name": flow.name,
            "name": run.name,
            "version": flow.version,
            "parent_flow_run_id": run.parent_flow_run_id,
            "parent_task_run_id": run.parent_task_run_id,
            "deployment_id": None,
            "parameters": {k: _short_repr(v) for k, v in parameters.items()},
            "tags": run.tags,
            "t": time.time(),
        }
        set_state("flow", run, Pending(), before=[created])
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
        run.run_count += 1
        if run.start_time is None:
            run.start_time = time.time()
        set_state("flow", run, Running() if run.run_count == 1 else Retrying())
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
            _call_hooks(self.flow.on_running_hooks, self.flow, run, run.state, "flow")

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
            from kernelflow.flow_runs import after_timed_out_pause

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
        if _crash_needs_recording(self.flow_run, exc):
            self.finish(interrupted_state(exc))


def _store_flow_result(flow: Flow, state: State) -> StoredResult:
    """Write a flow run's return value to the result store (``cache_result_in_memory=False``)."""
    from kernelflow.results import write_result

    written = write_result(state.result(), task_name=flow.name)
    return StoredResult(written.path, written.checksum, written.format)


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:199] + "…"


def create_deployment_flow_run(
    flow_name: str,
    name: str,
    deployment_id: str,
    parameters: dict[str, Any],
    tags: list[str],
    state: State,
    run_id: str | None = None,
) -> FlowRun:
    """Record a flow run of a deployment (no Python :class:`Flow` behind it) in ``state``.

    A notebook deployment's run is executed by papermill in another process;
    this records it like any flow run so the store, crash detection and
    ``kernelflow runs`` see it. ``run_id`` re-creates a run whose id was
    already claimed (a scheduler taking over a claimed fire).
    """
    configure_logging()
    run = FlowRun(flow_name, name, parameters, list(tags), deployment_id=deployment_id)
    if run_id is not None:
        run.id = run_id
    created = {
        "ev": "flow_run",
        "id": run.id,
        "flow_name": flow_name,
        "name": name,
        "version": None,
        "parent_flow_run_id": None,
        "parent_task_run_id": None,
        "deployment_id": deployment_id,
        "parameters": {k: _short_repr(v) for k, v in parameters.items()},
        "tags": run.tags,
        "t": time.time(),
    }
    set_state("flow", run, state, before=[created])
    return run


def run_flow(flow: Flow, parameters: dict[str, Any]) -> State:
    """Run a sync flow to its final state in the calling thread."""
    attempt = FlowAttempt(flow, parameters)
    attempt.enter()
    try:
        invalid = attempt.validate_parameters()
        if invalid is not None:
            return attempt.finish(invalid)
        while True:
            attempt.start_try()
            args, kwargs = flow.to_call_args(attempt.parameters)
            try:
                if flow.timeout_seconds is None:
                    value = flow.fn(*args, **kwargs)
                else:
                    value = call_with_timeout(
                        flow.fn, args, kwargs, flow.timeout_seconds, FlowRunTimeoutError
                    )
                state = attempt.outcome(value)
            except DeadlineExceeded:
                state = attempt.outcome(timed_out=True)
            except Exception as exc:
                state = attempt.outcome(error=exc)
            delay = attempt.retry_delay(state)
            if delay is None:
                break
            time.sleep(delay)
        return attempt.finish(state)
    except BaseException as exc:
        attempt.crash(exc)
        raise
    finally:
        attempt.exit()


async def run_flow_async(flow: Flow, parameters: dict[str, Any]) -> State:
    """Run an async flow to its final state."""
    import asyncio

    attempt = FlowAttempt(flow, parameters)
    attempt.enter()
    try:
        invalid = attempt.validate_parameters()
        if invalid is not None:
            return attempt.finish(invalid)
        while True:
            attempt.start_try()
            args, kwargs = flow.to_call_args(attempt.parameters)
            try:
                coro = flow.fn(*args, **kwargs)
                if flow.timeout_seconds is None:
                    value = await coro
                else:
                    value = await asyncio.wait_for(coro, flow.timeout_seconds)
                state = attempt.outcome(value)
            except asyncio.TimeoutError:
                state = attempt.outcome(timed_out=True)
            except Exception as exc:
                state = attempt.outcome(error=exc)
            delay = attempt.retry_delay(state)
            if delay is None:
                break
            await asyncio.sleep(delay)
        return attempt.finish(state)
    except BaseException as exc:
        attempt.crash(exc)
        raise
    finally:
        attempt.exit()


def run_generator_flow(flow: Flow, parameters: dict[str, Any]) -> Generator[Any, None, Any]:
    """Run a generator flow, yielding what its function yields (Prefect's generator flows).

    The run starts at the first ``next()`` and is current while the caller
    handles each value, as in Prefect. It ends Completed when the generator
    returns (its return value is the run's result and the generator's), or is
    closed early; Failed when it raises, which re-raises to the caller.
    Retries run the generator again from the start.
    """
    attempt = FlowAttempt(flow, parameters)
    attempt.enter()
    try:
        invalid = attempt.validate_parameters()
        if invalid is not None:
            return attempt.finish(invalid).result()
        while True:
            attempt.start_try()
            args, kwargs = flow.to_call_args(attempt.parameters)
            try:
                value = yield from flow.fn(*args, **kwargs)
                state = attempt.outcome(value)
            except GeneratorExit:
                # The caller stopped iterating: the run ends Completed, as in Prefect.
                attempt.finish(attempt.outcome(None))
                raise
            except Exception as exc:
                state = attempt.outcome(error=exc)
            delay = attempt.retry_delay(state)
            if delay is None:
                break
            time.sleep(delay)
        return attempt.finish(state).result()
    except GeneratorExit:
        raise
    except BaseException as exc:
        attempt.crash(exc)
        raise
    finally:
        _exit_generator_run(attempt)


async def run_generator_flow_async(flow: Flow, parameters: dict[str, Any]) -> AsyncGenerator[Any]:
    """Run an async generator flow, yielding what its function yields.

    As :func:`run_generator_flow`; an async generator cannot return a value,
    so the run's result is None, and a failure re-raises to the caller.
    """
    import asyncio

    attempt = FlowAttempt(flow, parameters)
    attempt.enter()
    try:
        invalid = attempt.validate_parameters()
        if invalid is not None:
            attempt.finish(invalid).result()
            return
        while True:
            attempt.start_try()
            args, kwargs = flow.to_call_args(attempt.parameters)
            try:
                async for item in flow.fn(*args, **kwargs):
                    yield item
                state = attempt.outcome(None)
            except GeneratorExit:
                attempt.finish(attempt.outcome(None))
                raise
            except Exception as exc:
                state = attempt.outcome(error=exc)
            delay = attempt.retry_delay(state)
            if delay is None:
                break
            await asyncio.sleep(delay)
        attempt.finish(state).result()
    except GeneratorExit:
        raise
    except BaseException as exc:
        attempt.crash(exc)
        raise
    finally:
        _exit_generator_run(attempt)


def _exit_generator_run(attempt: FlowAttempt) -> None:
    """Leave a generator flow's run; a generator closed by the garbage collector
    (or from another thread) runs in another context, where there is nothing to reset."""
    try:
        attempt.exit()
    except ValueError:
        attempt.token = None
