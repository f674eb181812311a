"""Transitions: :func:`set_state`, the one place a run's state changes, and who hears of it.

Every transition goes through :func:`set_state`, which

1. updates the in-memory run (``run.state``),
2. appends one event to the process's journal (the store folds it into
   DuckDB later; see :mod:`kernelflow.store.journal`; the lines are encoded by
   :mod:`kernelflow.store.event_lines`),
3. tells listeners (live widgets) registered with :func:`subscribe`.

Also here: what a transition prints and calls, the run's "Finished in state"
console line and the user's state hooks.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from kernelflow.logs import print_console_only, run_logger
from kernelflow.runs import FlowRun, TaskRun
from kernelflow.states import TERMINAL_TYPES, State
from kernelflow.store.event_lines import (
    encode_created,
    encode_state_event,
    implies_pending,
    state_event,
)
from kernelflow.store.journal import current_journal, encode_event

__all__ = ["set_state", "subscribe", "unsubscribe"]

_listeners: list[Callable[[str, Any, State], None]] = []
_engine_log = logging.getLogger("kernelflow.engine")


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


def set_state(
    kind: str,
    run: FlowRun | TaskRun,
    state: State,
    *,
    result: str | None = None,
    before: list[Any] | None = None,
    hold: bool = False,
) -> State:
    """Move ``run`` to ``state``: the only function that changes a run's state.

    ``before`` are events (e.g. the run's creation) written in the same
    journal append, ahead of the state event. ``hold`` keeps the events back
    until the run's next state, to be written in the same append: for a task
    run that starts at once, whose Pending nobody reads in between (listeners
    are told at once all the same).
    """
    if state.type in TERMINAL_TYPES and run.end_time is None:  # state.is_final(), inlined
        run.end_time = state.timestamp
    run.state = state
    state.run_id = run.id
    if before and result is None and implies_pending(run, state, before):
        before[-1]["pending"] = True
        line, count = b"".join(map(encode_created, before)), len(before)
    else:
        fast = encode_state_event(kind, run, state, result)
        line = encode_event(state_event(kind, run, state, result)) if fast is None else fast
        count = 1
        if before:
            line = b"".join(map(encode_created, before)) + line
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
    label = f"{'Flow' if kind == 'flow' else 'Task'} run '{run.name}'"
    # The state's text, not the state: a handler that keeps records (a test's capture,
    # a live view) must not keep every run's state and result alive with them.
    text = str(state)
    # While only kernelflow's own handlers would see it, the line is printed without a
    # record: the record cost more than the rest of a trivial task's run.
    if print_console_only(logger, level, label, "Finished in state " + text):
        return
    # The record as run_logger(kind, run).log() would make it, minus the adapter and the
    # stack walk (findCaller), which cost more than the rest.
    extra = {"run_id": run.id, "run_kind": kind, "run_label": label, "journal": False}
    record = logger.makeRecord(
        logger.name,
        level,
        *_FINISHED_CALLER,
        "Finished in state %s",
        (text,),
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
