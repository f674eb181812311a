"""Run states, named and typed as Prefect names them.

A :class:`State` has a ``type`` (a :class:`StateType`) and a ``name``: several
names share a type, as in Prefect (``Cached`` is a ``COMPLETED`` state,
``TimedOut`` a ``FAILED`` one, ``Retrying`` a ``RUNNING`` one, ``Suspended``
a ``PAUSED`` one). Only the engine moves a run from state to state; users
build states only to return them from a task (``return Failed(message="negative")``).

Example
-------
>>> s = Completed(data=3, message="ok")
>>> s.is_completed(), s.result(), s.name
(True, 3, 'Completed')
"""

from __future__ import annotations

import enum
import time
from typing import Any, Generic, Literal, TypeVar, overload

from kernelflow.errors import CancelledRun, CrashedRun, FailedRun, UnfinishedRun
from kernelflow.store.schema import TERMINAL_STATE_TYPES

__all__ = [
    "AwaitingRetry",
    "Cached",
    "Cancelled",
    "Cancelling",
    "Completed",
    "Crashed",
    "Failed",
    "Late",
    "Paused",
    "Pending",
    "Retrying",
    "Running",
    "Scheduled",
    "State",
    "StateType",
    "Suspended",
    "TimedOut",
]

R = TypeVar("R")


class StateType(str, enum.Enum):
    """The kind of a state; several state names share one type."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"

    def __str__(self) -> str:
        return self.value


#: The final state types; one list for the model and the store's SQL alike.
TERMINAL_TYPES = frozenset(StateType(value) for value in TERMINAL_STATE_TYPES)

_NOT_SET = object()
#: At most this many characters of a result in a state's repr.
_RESULT_REPR_LIMIT = 1000


class StoredResult:
    """A completed run's value kept in the result store, not in memory.

    What a state holds for a run with ``cache_result_in_memory=False``;
    :meth:`State.result` reads the file back (checked against its checksum)
    on each call, as Prefect retrieves such a result from storage.
    """

    __slots__ = ("checksum", "format", "path")

    def __init__(self, path: str, checksum: str, format: str) -> None:
        self.path, self.checksum, self.format = path, checksum, format

    def load(self) -> Any:
        """The value, read from the store (ResultMissingError if the file is gone or corrupt)."""
        from kernelflow.results import read_result

        return read_result(self.path, self.checksum, self.format)

    def __repr__(self) -> str:
        return f"StoredResult({self.path!r})"


class State(Generic[R]):
    """The state of a flow or task run, optionally carrying its result.

    Parameters
    ----------
    type:
        The state's :class:`StateType`.
    name:
        Its name; defaults to the type's title (``Completed``).
    message:
        A human-readable explanation, e.g. the exception of a failed run.
    data:
        The run's return value (completed) or exception (failed).
    """

    __slots__ = ("data", "message", "name", "run_id", "timestamp", "type")

    def __init__(
        self,
        type: StateType,
        name: str | None = None,
        message: str | None = None,
        data: Any = None,
        timestamp: float | None = None,
    ) -> None:
        self.type = type
        self.name = name or type.value.title()
        self.message = message
        self.data = data
        self.timestamp = time.time() if timestamp is None else timestamp
        #: The run that entered this state (set by the engine), or None.
        self.run_id: str | None = None

    def __repr__(self) -> str:
        # Prefect's long form, e.g. "Failed(message='x', type=FAILED, result=None)".
        result = repr(self.data)
        if len(result) > _RESULT_REPR_LIMIT:  # a DataFrame's repr is not a log line
            result = result[:_RESULT_REPR_LIMIT] + "..."
        return f"{self.name}(message={self.message!r}, type={self.type.value}, result={result})"

    def __str__(self) -> str:
        # Prefect's short form, as its console prints it: "Completed()", "Failed('x')",
        # "Cached(type=COMPLETED)": the message if any, the type when the name is not it.
        type_ = self.type._value_  # not .value: an enum property, slow on the engine's path
        shown = [repr(self.message)] if self.message else []
        if self.name.upper() != type_:
            shown.append(f"type={type_}")
        return f"{self.name}({', '.join(shown)})"

    # Predicates, as in Prefect.
    def is_scheduled(self) -> bool:
        """True for Scheduled and Late."""
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        """True for Pending (and NotReady)."""
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        """True for Running and Retrying."""
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        """True for Completed and Cached."""
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        """True for Failed and TimedOut."""
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        """True for Crashed."""
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        """True for Cancelled."""
        return self.type is StateType.CANCELLED

    def is_cancelling(self) -> bool:
        """True for Cancelling."""
        return self.type is StateType.CANCELLING

    def is_paused(self) -> bool:
        """True for Paused and Suspended."""
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        """True once the run can no longer change (completed, failed, crashed, cancelled)."""
        return self.type in TERMINAL_TYPES

    @overload
    def result(self, raise_on_failure: Literal[True] = True) -> R: ...

    @overload
    def result(self, raise_on_failure: bool = True) -> R | BaseException: ...

    def result(self, raise_on_failure: bool = True) -> R | BaseException:
        """The run's return value; for a failed state, raise its exception.

        Parameters
        ----------
        raise_on_failure:
            When False, a failed state returns its exception instead of raising it.
        """
        if self.type is StateType.COMPLETED:
            data = self.data
            if isinstance(data, State):
                data = data.result(raise_on_failure)
            elif isinstance(data, StoredResult):
                data = data.load()
            value: R = data  # the value of a completed State[R], however it is held
            return value
        exc = self._exception()
        if raise_on_failure:
            raise exc
        return exc

    def _exception(self) -> BaseException:
        data = self.data
        if isinstance(data, BaseException):
            return data
        if isinstance(data, State):
            return data._exception()
        if isinstance(data, (list, tuple)):
            # A flow whose return value was a collection of states: re-raise the
            # first failure's own exception, as the user would expect.
            for item in data:
                if isinstance(item, State) and not item.is_completed():
                    return item._exception()
        # Prefect's exception for each kind of unfinished result (all FailedRun here).
        if self.type is StateType.CRASHED:
            return CrashedRun(self.message or f"Run ended in state {self.name}")
        if self.type is StateType.CANCELLED:
            return CancelledRun(self.message or f"Run ended in state {self.name}")
        if not self.is_final():
            return UnfinishedRun(self.message or f"Run is in state {self.name}, not finished")
        return FailedRun(self.message or f"Run ended in state {self.name}")

    def copy(self, **changes: Any) -> State[R]:
        """A copy with some fields changed."""
        fields = {k: getattr(self, k) for k in ("type", "name", "message", "data")}
        fields.update(changes)
        return State(**fields)


def _constructor(type_: StateType, name: str) -> Any:
    # Keyword arguments spelled out, not **kwargs: the engine makes three states per task run.
    def make(
        message: str | None = None,
        data: Any = None,
        *,
        name: str | None = name,
        timestamp: float | None = None,
    ) -> State[Any]:
        return State(type_, name, message, data, timestamp)

    make.__name__ = make.__qualname__ = name
    make.__doc__ = f"A ``{type_.value}`` state named ``{name}``."
    return make


Scheduled = _constructor(StateType.SCHEDULED, "Scheduled")
Late = _constructor(StateType.SCHEDULED, "Late")
Pending = _constructor(StateType.PENDING, "Pending")
Running = _constructor(StateType.RUNNING, "Running")
Retrying = _constructor(StateType.RUNNING, "Retrying")
AwaitingRetry = _constructor(StateType.SCHEDULED, "AwaitingRetry")
Paused = _constructor(StateType.PAUSED, "Paused")
Suspended = _constructor(StateType.PAUSED, "Suspended")
Cancelling = _constructor(StateType.CANCELLING, "Cancelling")
Cancelled = _constructor(StateType.CANCELLED, "Cancelled")
Completed = _constructor(StateType.COMPLETED, "Completed")
Cached = _constructor(StateType.COMPLETED, "Cached")
Failed = _constructor(StateType.FAILED, "Failed")
TimedOut = _constructor(StateType.FAILED, "TimedOut")
Crashed = _constructor(StateType.CRASHED, "Crashed")
