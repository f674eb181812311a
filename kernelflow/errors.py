"""Every error kernelflow raises on purpose.

Each message says what happened and what to do next, in one line. Errors
subclass the builtin a user would already catch, so ``except ValueError``
keeps working around our configuration errors.

The tree::

    KernelflowError
    ├── ConfigurationError (ValueError)        a bad option on @task / @flow / the CLI
    │   ├── CachePolicyError                   a cache policy that cannot be built
    │   └── RunInputError                      resume input that does not fit the pause's model
    ├── HashingError (TypeError)               a cache input that cannot be hashed
    ├── ResultSerializationError (TypeError)   a return value that cannot be persisted
    ├── ResultMissingError (LookupError)       a persisted result that is gone or corrupt
    ├── StoreError (OSError)                   the DuckDB store cannot be used
    │   ├── StoreLockedError                   another program holds the database
    │   ├── StoreCorruptError                  the file is not a readable database
    │   ├── StoreNotWritableError              the store directory cannot be written
    │   │   └── StoreFullError                 no space: disk, quota or file size limit full
    │   ├── StoreNotPrivateError               others can write the store, or it is theirs
    │   └── SchemaTooNewError                  written by a newer kernelflow
    ├── QueryError (ValueError)                a store query that is refused or fails
    ├── RunNotFoundError (LookupError)         no run with that id
    ├── LimitNotFoundError (LookupError)       no concurrency limit has that name
    ├── DeploymentNotFoundError (LookupError)  no deployment has that name
    ├── AcquireConcurrencySlotTimeoutError (TimeoutError)  no slot within timeout_seconds
    ├── TaskSerializationError (TypeError)     a task or argument cannot go to a worker
    ├── TaskRunnerError (RuntimeError)         a task runner cannot run work (e.g. no cluster)
    │   └── WorkerLostError                    the worker process running a try died
    ├── ParameterTypeError (TypeError)         a flow parameter fails its type annotation
    ├── TaskRunTimeoutError (TimeoutError)     raised inside a task that ran too long
    ├── FlowRunTimeoutError (TimeoutError)     raised inside a flow that ran too long
    ├── FlowPauseTimeout (TimeoutError)        a paused flow run was not resumed in time
    ├── PauseError (RuntimeError)              a flow run cannot be paused or resumed now
    │   └── NotPausedError                     resuming a flow run that is not paused
    ├── UpstreamTaskError                      an input's task did not complete
    ├── MissingContextError (RuntimeError)     called where no run is active
    ├── CellSyntaxError                        a %%task cell's code is not valid Python
    └── FailedRun                              a failed state with no exception to re-raise
        ├── CrashedRun                         a crashed state's result
        ├── CancelledRun                       a cancelled state's result
        └── UnfinishedRun                      the result of a state that is not final

And one warning: ``CacheWarning`` (UserWarning), a result that ran but could not be cached.

``TaskRunTimeout`` and ``FlowRunTimeout`` are the former names of the two timeout
errors (Prefect names them ``...Error``), kept as aliases.
"""

from __future__ import annotations

import errno as _errno

__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "CachePolicyError",
    "CacheWarning",
    "CancelledRun",
    "CellSyntaxError",
    "ConcurrencySlotAcquisitionError",
    "ConfigurationError",
    "CrashedRun",
    "DeploymentNotFoundError",
    "FailedRun",
    "FlowPauseTimeout",
    "FlowRunTimeout",
    "FlowRunTimeoutError",
    "HashingError",
    "KernelflowError",
    "LimitNotFoundError",
    "MissingContextError",
    "NotPausedError",
    "ParameterTypeError",
    "PauseError",
    "QueryError",
    "ResultMissingError",
    "ResultSerializationError",
    "RunInputError",
    "RunNotFoundError",
    "SchemaTooNewError",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "StoreLockedError",
    "StoreNotPrivateError",
    "StoreNotWritableError",
    "TaskRunTimeout",
    "TaskRunTimeoutError",
    "TaskRunnerError",
    "TaskSerializationError",
    "UnfinishedRun",
    "UpstreamTaskError",
    "WorkerLostError",
]


class KernelflowError(Exception):
    """Base class of every error kernelflow raises on purpose."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a 40-line traceback: our
        # messages are written to be read alone.
        return [f"{type(self).__name__}: {self}"]


class ConfigurationError(KernelflowError, ValueError):
    """An option has a value kernelflow cannot use, e.g. ``@task(retries=-1)``."""


class CachePolicyError(ConfigurationError):
    """A cache policy or cache option is malformed."""


class RunInputError(ConfigurationError):
    """Input given to resume a paused flow run does not fit the model it waits for.

    The message names each field that does not fit; the flow run stays paused,
    so the resume can be tried again with corrected input.
    """


class HashingError(KernelflowError, TypeError):
    """A cache input cannot be hashed; the message names the argument."""


class ResultSerializationError(KernelflowError, TypeError):
    """A task's return value cannot be written to the result store."""


class ResultMissingError(KernelflowError, LookupError):
    """A persisted result file is missing or fails its checksum."""


class StoreError(KernelflowError, OSError):
    """The DuckDB store cannot be opened or written."""


class StoreLockedError(StoreError):
    """Another program keeps the database file open for longer than we wait."""


class StoreCorruptError(StoreError):
    """The database file exists but is not a readable DuckDB database."""


class StoreNotWritableError(StoreError):
    """The store directory (``KERNELFLOW_HOME``) cannot be created or written."""


class StoreFullError(StoreNotWritableError):
    """The store cannot grow: the disk or a quota is full, or the file size limit is reached.

    Raised where a run records an event (ENOSPC, EDQUOT or EFBIG from the
    journal append), where a result or cache entry is written, and where the
    database file is written. What failed is not recorded; everything
    recorded before stays. Its
    ``errno`` is the system's, so ``except OSError`` code that checks
    ``errno.ENOSPC`` keeps working.

    Examples
    --------
    >>> my_flow()  # doctest: +SKIP
    StoreFullError: Cannot append to the journal ~/.kernelflow/journal/... (No space
    left on device), so the latest events are not recorded (those before are kept): ...
    """

    #: The ``errno`` values that mean the store cannot grow.
    ERRNOS = frozenset({_errno.ENOSPC, _errno.EFBIG, _errno.EDQUOT})

    @classmethod
    def writing(cls, what: str, exc: OSError) -> StoreFullError:
        """The error for writing ``what`` (e.g. "the result of task 'load'") failing for space."""
        error = cls(
            f"Cannot write {what} ({exc.strerror or exc}): free disk space, or raise the disk "
            "quota or the file size limit (ulimit -f), then run again (what was recorded "
            "before is kept)."
        )
        error.errno = exc.errno
        return error


class StoreNotPrivateError(StoreError):
    """The store directory can be written by other users, or belongs to another user.

    Anyone who can write the store could plant results that kernelflow would
    load, so kernelflow refuses such a store; the message names the ``chmod``
    (or the other directory) that fixes it.
    """


class SchemaTooNewError(StoreError):
    """The database was written by a newer kernelflow with an unknown schema."""


class QueryError(KernelflowError, ValueError):
    """A query on the store was refused or failed; the message says what to change.

    Store queries (``kernelflow.sql``, ``kernelflow sql``, ``%kf sql``) run one
    read-only statement over the store's tables, without access to files, the
    network or extensions.

    Examples
    --------
    >>> import kernelflow
    >>> kernelflow.sql("DELETE FROM flow_runs")  # doctest: +SKIP
    Traceback (most recent call last):
    QueryError: Store queries are read-only: a DELETE statement is not run; ...
    """


class RunNotFoundError(KernelflowError, LookupError):
    """No flow or task run has the given id."""


class LimitNotFoundError(KernelflowError, LookupError):
    """No concurrency limit has the given name; the message names the command that creates it."""


class ConcurrencySlotAcquisitionError(LimitNotFoundError):
    """``concurrency(..., strict=True)`` named a limit that does not exist (Prefect's name).

    Without ``strict`` a missing limit is a warning and nothing is limited.
    """


class DeploymentNotFoundError(KernelflowError, LookupError):
    """No deployment has the given name; the message names the command that lists them."""


class AcquireConcurrencySlotTimeoutError(KernelflowError, TimeoutError):
    """No slot of a concurrency or rate limit became free within ``timeout_seconds``."""


class TaskSerializationError(KernelflowError, TypeError):
    """A task's function or an argument cannot be pickled to run in another process."""


class TaskRunnerError(KernelflowError, RuntimeError):
    """A task runner cannot run work, e.g. its Dask scheduler does not answer."""


class WorkerLostError(TaskRunnerError):
    """The worker (process or Dask worker) running one try of a task died mid-try."""


class TaskRunTimeoutError(KernelflowError, TimeoutError):
    """Raised inside a task's thread when it runs past ``timeout_seconds`` (Prefect's name)."""


class FlowRunTimeoutError(KernelflowError, TimeoutError):
    """Raised by a flow that runs past ``timeout_seconds`` (Prefect's name).

    The flow run ends ``TimedOut`` with the message ``Flow run exceeded timeout
    of 1.0 second(s)``, and calling the flow raises this error.
    """


class FlowPauseTimeout(KernelflowError, TimeoutError):
    """A paused flow run was not resumed within its ``timeout`` (Prefect's name).

    ``pause_flow_run`` raises it inside the flow, which then ends Failed (even
    if it catches the error, as in Prefect); ``resume_flow_run`` raises it for
    a pause that has already timed out.
    """


class PauseError(KernelflowError, RuntimeError):
    """A flow run cannot be paused or resumed now (e.g. it is paused already).

    The message says why; for a resume, the flow run stays as it was.
    """


class NotPausedError(PauseError):
    """``resume_flow_run`` (or ``kernelflow flow-run resume``) of a run that is not paused."""


#: The former name of :class:`TaskRunTimeoutError`.
TaskRunTimeout = TaskRunTimeoutError
#: The former name of :class:`FlowRunTimeoutError`.
FlowRunTimeout = FlowRunTimeoutError


class ParameterTypeError(KernelflowError, TypeError):
    """A flow was called with a parameter that does not fit its type annotation.

    Flows validate their parameters with pydantic as Prefect does
    (``validate_parameters=True``): values are coerced where pydantic's lax mode
    allows it (``"3"`` for an ``int``, a dict for a pydantic model) and refused
    otherwise. The flow run ends Failed and the call raises this error.

    Examples
    --------
    >>> @flow
    ... def greet(name: str): ...
    >>> greet(name=1)  # doctest: +SKIP
    Traceback (most recent call last):
    ParameterTypeError: Flow run received invalid parameters: name: Input should be a
    valid string; pass values of the annotated types, or use @flow(validate_parameters=False).
    """


class UpstreamTaskError(KernelflowError):
    """A task could not start because a task it depends on did not complete."""


class MissingContextError(KernelflowError, RuntimeError):
    """A function that needs an active flow or task run was called outside one."""


class CellSyntaxError(KernelflowError):
    """A ``%%task`` cell's code is not valid Python; shown as IPython shows a SyntaxError.

    Deliberately not a ``SyntaxError`` subclass: IPython prints a SyntaxError
    raised inside a magic with every frame it passed through (kernelflow's),
    and only honours ``_render_traceback_`` for other types. The original
    error is :attr:`syntax_error`.
    """

    def __init__(self, syntax_error: SyntaxError, rendered: list[str]) -> None:
        super().__init__(f"{syntax_error.msg} (line {syntax_error.lineno} of the cell)")
        self.syntax_error = syntax_error
        self._rendered = rendered

    def _render_traceback_(self) -> list[str]:
        """IPython's rendering of the syntax error: the cell's line, a caret, the message."""
        return self._rendered


class FailedRun(KernelflowError):
    """Raised by ``State.result()`` for a failed state that carries no exception."""


class CacheWarning(UserWarning):
    """A result was computed but could not be cached (e.g. a ``%%task`` output that
    cannot be pickled); the message names it and says what to do."""


# Prefect's names for the result of a run that did not complete. Subclasses of
# FailedRun, so ``except FailedRun`` (kernelflow's one name before) still catches them.
class CrashedRun(FailedRun):
    """Raised by ``State.result()`` for a Crashed state (the process or kernel went away)."""


class CancelledRun(FailedRun):
    """Raised by ``State.result()`` for a Cancelled state that carries no exception."""


class UnfinishedRun(FailedRun):
    """Raised by ``State.result()`` for a state that is not final (Pending, Running, ...)."""
