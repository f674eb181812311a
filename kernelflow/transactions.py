"""Transactions: task runs that commit or roll back together (Prefect's ``prefect.transactions``).

>>> import os
>>> from kernelflow import flow, task
>>> from kernelflow.transactions import transaction
>>> @task
... def write_file(path: str) -> None:
...     with open(path, "w") as f:
...         f.write("one line")
>>> @write_file.on_rollback
... def remove_file(txn):
...     os.unlink(txn.get("path"))
>>> @task
... def check_file(path: str) -> None:
...     if len(open(path).readlines()) < 2:
...         raise ValueError("Not enough data!")
>>> @flow
... def pipeline(path: str) -> None:
...     with transaction() as txn:
...         txn.set("path", path)
...         write_file(path)
...         check_file(path)  # raises: remove_file runs, nothing is cached
>>> pipeline("out.txt")  # doctest: +SKIP
Traceback (most recent call last):
ValueError: Not enough data!

Design
------
A transaction goes PENDING → ACTIVE → (STAGED) → COMMITTED | ROLLED_BACK, as in
Prefect. A task run inside a ``transaction()`` block has a transaction of its
own, a child of the block's: when the task completes, its result is written to
the result store at once, but its cache entry (the "record",
:func:`kernelflow.cache_index.point`) and its ``on_commit`` hooks wait for the
commit, which with the default ``CommitMode.LAZY`` is the outermost
transaction's. When a task in the block fails, the block's transaction rolls
back: the ``on_rollback`` hooks of the tasks that completed in it run, newest
first, each such task run gets the state ``RolledBack`` (type COMPLETED), and
no cache entry is written, so their next run computes again.

A task run outside any transaction does not pay for one: its cache entry is
written when it completes, as ever. Only a task with ``on_commit`` /
``on_rollback`` hooks, whose code calls :func:`get_transaction`, or that calls
other tasks gets a transaction of its own, made when first needed; it commits
when the run completes, and the runs of the tasks it called commit (or roll
back) with it, as in Prefect.

A transaction with a ``key`` (``transaction(key="daily-load")``) has a record
of its own in the cache index, written when it commits; a later transaction
with that key begins committed (``txn.is_committed()``), so the block can skip
work done before. ``IsolationLevel.SERIALIZABLE`` holds an exclusive ``flock``
on ``<store>/locks/<hash of key>.lock`` from the start of the transaction to
its commit or rollback: another thread or process opening a transaction with
the same key waits there, then finds the record committed. The kernel drops the
lock when its holder dies, so a killed process never leaves a key locked.

Differences from Prefect (see ``docs/decisions/transactions.md``): a task's
transaction spans all its tries, so a try that fails and is retried does not
roll the enclosing transaction back (Prefect rolls back on the first failed
try); a task run's own transaction takes no lock (there is no
``cache_policy.configure(isolation_level=...)``); the store is always
kernelflow's, so ``store=`` is refused, and no lock manager is needed for
SERIALIZABLE.
"""

from __future__ import annotations

import copy
import enum
import fcntl
import inspect
import logging
import os
import threading
import time
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, NamedTuple

from kernelflow import context
from kernelflow.errors import ConfigurationError, ResultSerializationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from kernelflow.cache_index import CacheEntry, CacheHit
    from kernelflow.results import ResultRecord
    from kernelflow.runs import TaskRun

__all__ = [
    "CommitMode",
    "IsolationLevel",
    "Transaction",
    "TransactionRecord",
    "TransactionState",
    "get_transaction",
    "transaction",
]

_log = logging.getLogger("kernelflow.transactions")
_NOT_SET: Any = object()
#: The transaction of the code running now (see :func:`get_transaction`).
_active: ContextVar[Transaction | None] = ContextVar("kernelflow_transaction", default=None)
#: Guards the claim to commit or roll back (see :meth:`Transaction._claim`).
_claim_lock = threading.Lock()


class IsolationLevel(str, enum.Enum):
    """How transactions with the same key see each other.

    ``READ_COMMITTED`` (the default): a transaction sees records committed
    before it began; two at once may both do the work. ``SERIALIZABLE``: a
    transaction with a key holds a lock on it until it commits or rolls back,
    so a second one waits and then sees the first one's record.
    """

    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


class CommitMode(str, enum.Enum):
    """When a transaction commits.

    ``LAZY`` (the default): when the outermost transaction ends without an
    error. ``EAGER``: as soon as the transaction itself ends, even inside
    another. ``OFF``: never on its own; it rolls back at the end unless
    :meth:`Transaction.commit` was called.
    """

    EAGER = "EAGER"
    LAZY = "LAZY"
    OFF = "OFF"


class TransactionState(str, enum.Enum):
    """Where a transaction is in its life: PENDING → ACTIVE → STAGED → COMMITTED | ROLLED_BACK."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


_DONE = (TransactionState.COMMITTED, TransactionState.ROLLED_BACK)


class TransactionRecord(NamedTuple):
    """A committed record, as :meth:`Transaction.read` returns it.

    Attributes
    ----------
    result
        The committed value (Prefect's ``ResultRecord.result``).
    entry
        Its :class:`~kernelflow.cache_index.CacheEntry` (when, by which run, expiry).
    """

    result: Any
    entry: CacheEntry


class StagedEntry(NamedTuple):
    """A task's cache entry waiting for its transaction to commit (written by the engine)."""

    key: str
    result: ResultRecord
    task_name: str
    expires: float | None
    task_run_id: str
    duration: float

    def write(self) -> None:
        """Point the key at the persisted result."""
        from kernelflow import cache_index

        cache_index.point(
            self.key,
            self.result,
            task_name=self.task_name,
            expires=self.expires,
            task_run_id=self.task_run_id,
            duration=self.duration,
        )


class Transaction:
    """A unit of work that commits or rolls back as a whole; made by :func:`transaction`.

    Use it as a context manager; the block's transaction is the parent of the
    transactions of task runs (and of ``transaction()`` blocks) inside it.

    Parameters
    ----------
    key
        The transaction's identity. :func:`transaction` keeps a record under
        it; a bare ``Transaction(key=...)`` has none, as in Prefect.
    commit_mode
        A :class:`CommitMode`; None inherits the parent's (LAZY at the top).
    isolation_level
        An :class:`IsolationLevel`; None inherits the parent's.
    overwrite
        Begin even if a record exists under ``key``, and replace it on commit.
    write_on_commit
        Write the record on commit (a keyed :func:`transaction` only).
    logger
        Where hook runs and errors are logged (default: the current run's logger).

    Attributes
    ----------
    state
        The :class:`TransactionState`.
    children
        Transactions that ended inside this one and wait for its commit.
    on_commit_hooks, on_rollback_hooks
        Callables called as ``hook(transaction)``; rollback hooks newest first.

    Example
    -------
    >>> with transaction(key="load-2024-01-01") as txn:   # doctest: +SKIP
    ...     if txn.is_committed():
    ...         print("loaded before")
    ...     else:
    ...         load("2024-01-01")
    """

    __slots__ = (
        "_began",
        "_claimed",
        "_closed",
        "_hit",
        "_lock",
        "_logger",
        "_parent",
        "_records",
        "_staged_entry",
        "_staged_value",
        "_task_run",
        "_token",
        "_values",
        "children",
        "commit_mode",
        "isolation_level",
        "key",
        "on_commit_hooks",
        "on_rollback_hooks",
        "overwrite",
        "state",
        "write_on_commit",
    )

    def __init__(
        self,
        key: str | None = None,
        *,
        commit_mode: CommitMode | str | None = None,
        isolation_level: IsolationLevel | str | None = IsolationLevel.READ_COMMITTED,
        overwrite: bool = False,
        write_on_commit: bool = True,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
    ) -> None:
        if key is not None and not isinstance(key, str):
            raise ConfigurationError(
                f"A transaction key must be a string, got {type(key).__name__} {key!r}; "
                "build one, e.g. key=f'load-{day}'."
            )
        self.key = key
        self.commit_mode = _member(CommitMode, commit_mode, "commit_mode")
        self.isolation_level = _member(IsolationLevel, isolation_level, "isolation_level")
        self.overwrite = bool(overwrite)
        self.write_on_commit = bool(write_on_commit)
        self.state = TransactionState.PENDING
        self.children: list[Transaction] = []
        self.on_commit_hooks: list[Callable[[Transaction], Any]] = []
        self.on_rollback_hooks: list[Callable[[Transaction], Any]] = []
        self._logger = logger
        self._values: dict[str, Any] = {}
        self._staged_value: Any = None
        self._staged_entry: StagedEntry | None = None
        self._parent: Transaction | None = None
        self._token: Token | None = None
        self._records = False  # keeps a record under key (set by transaction())
        self._lock: int | None = None
        self._hit: CacheHit | None = None
        self._task_run: TaskRun | None = None
        self._began = 0.0
        self._claimed = False
        self._closed = False

    # --- values ------------------------------------------------------------
    def set(self, name: str, value: Any) -> None:
        """Keep ``value`` under ``name`` for code and hooks of this transaction and its children.

        Example
        -------
        >>> with transaction() as txn:
        ...     txn.set("path", "out.csv")
        ...     txn.get("path")
        'out.csv'
        """
        self._values[name] = value

    def get(self, name: str, default: Any = _NOT_SET) -> Any:
        """The value set under ``name`` here or, failing that, in a parent transaction.

        A copy is returned, so changing it changes nothing stored; call
        :meth:`set` to store a new value.

        Raises
        ------
        ValueError
            No value is set under ``name`` and no ``default`` is given.
        """
        txn: Transaction | None = self
        while txn is not None:
            if name in txn._values:
                return copy.deepcopy(txn._values[name])
            txn = txn._parent
        if default is not _NOT_SET:
            return default
        raise ValueError(f"Could not retrieve value for unknown key: {name}")

    # --- state ---------------------------------------------------------------
    def is_committed(self) -> bool:
        """Whether the transaction committed, or began with its record already committed."""
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        """Whether the transaction rolled back."""
        return self.state is TransactionState.ROLLED_BACK

    def is_staged(self) -> bool:
        """Whether a value is staged, waiting for the commit."""
        return self.state is TransactionState.STAGED

    def is_pending(self) -> bool:
        """Whether the transaction has not begun."""
        return self.state is TransactionState.PENDING

    def is_active(self) -> bool:
        """Whether the transaction has begun and nothing is staged yet."""
        return self.state is TransactionState.ACTIVE

    def get_parent(self) -> Transaction | None:
        """The transaction this one began in, or None."""
        return self._parent

    def add_child(self, transaction: Transaction) -> None:
        """Make ``transaction`` commit and roll back with this one."""
        self.children.append(transaction)

    @property
    def logger(self) -> logging.Logger | logging.LoggerAdapter:
        """Where hook runs and errors are logged."""
        logger = self._logger
        if logger is None:
            if self._task_run is not None:
                from kernelflow.logs import run_logger

                logger = run_logger("task", self._task_run)
            else:
                logger = _log
            self._logger = logger
        return logger

    # --- staging, reading ------------------------------------------------------
    def stage(
        self,
        value: Any,
        on_rollback_hooks: list[Callable[[Transaction], Any]] | None = None,
        on_commit_hooks: list[Callable[[Transaction], Any]] | None = None,
    ) -> None:
        """Stage ``value`` to be written as the record at commit, with hooks to call then.

        Does nothing when the transaction is already committed (its record existed).
        """
        if self.state is TransactionState.COMMITTED:
            return
        self._staged_value = value
        if on_rollback_hooks:
            self.on_rollback_hooks += on_rollback_hooks
        if on_commit_hooks:
            self.on_commit_hooks += on_commit_hooks
        self.state = TransactionState.STAGED

    def _stage_entry(
        self,
        value: Any,
        entry: StagedEntry | None,
        on_rollback_hooks: list[Callable[[Transaction], Any]],
        on_commit_hooks: list[Callable[[Transaction], Any]],
    ) -> None:
        """Stage a task's result, whose cache entry ``entry`` is written at commit."""
        self.stage(value, on_rollback_hooks, on_commit_hooks)
        if self.state is TransactionState.STAGED:
            self._staged_entry = entry

    def read(self) -> TransactionRecord | None:
        """The record committed under the key, or None (no key, no record)."""
        if self.key is None:
            return None
        hit = self._hit
        if hit is None:
            from kernelflow import cache_index

            hit = cache_index.lookup(self.key)
            if hit is None:
                return None
        return TransactionRecord(hit.value, hit.entry)

    # --- the block ------------------------------------------------------------
    def __enter__(self) -> Transaction:
        if self._token is not None:
            raise RuntimeError("Context already entered. Context enter calls cannot be nested.")
        if self.state is not TransactionState.PENDING:
            raise RuntimeError(
                f"This transaction has run ({self.state.value}); a transaction runs once, so "
                "open a new one with transaction(...)."
            )
        self._begin(get_transaction())
        self._token = _active.set(self)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._token is None:
            raise RuntimeError("Asymmetric use of context. Context exit called without an enter.")
        self._close(failed=exc_type is not None)

    def _begin(self, parent: Transaction | None) -> None:
        """Begin inside ``parent``: inherit its modes; lock and look up the key if keyed."""
        self._parent = parent
        if self.commit_mode is None:
            self.commit_mode = parent.commit_mode if parent is not None else CommitMode.LAZY
        if self.isolation_level is None:
            self.isolation_level = (
                parent.isolation_level if parent is not None else IsolationLevel.READ_COMMITTED
            )
        self.state = TransactionState.ACTIVE
        if not (self._records and self.key is not None):
            return
        self._began = time.time()
        try:
            if self.isolation_level is IsolationLevel.SERIALIZABLE:
                self.logger.debug("Acquiring lock for transaction %r", self.key)
                self._lock = _acquire_lock(self.key)
            if not self.overwrite:
                from kernelflow import cache_index

                self._hit = cache_index.lookup(self.key)
                if self._hit is not None:
                    self.state = TransactionState.COMMITTED
        except BaseException:
            self._release()
            raise

    def _close(self, failed: bool) -> None:
        """End the transaction: roll back, commit or hand over to the parent, as Prefect does."""
        parent = self._parent
        try:
            if failed:
                self.rollback()
            else:
                if self.commit_mode is CommitMode.EAGER:
                    self.commit()
                if parent is None:
                    if self.commit_mode is CommitMode.OFF:
                        self.rollback()  # nobody committed it
                    elif self.commit_mode is CommitMode.LAZY:
                        self.commit()
        finally:
            self._closed = True
            self._deactivate()
        if parent is not None:
            parent._adopt(self)

    def _adopt(self, child: Transaction) -> None:
        """Take responsibility for a child that has ended; a rolled-back child rolls this back."""
        if self._closed and self.state in _DONE:
            # The child outlived this transaction (a task submitted inside the block and
            # not waited for): it follows the outcome, rather than never committing.
            if self.state is TransactionState.COMMITTED:
                child.commit()
            else:
                child.rollback()
        else:
            self.add_child(child)
        if child.state is TransactionState.ROLLED_BACK:
            self.rollback()

    def _began_committed(self) -> None:
        """The record under the key exists (a task run's cache hit): begin committed, as Prefect."""
        if self.state is TransactionState.ACTIVE:
            self.state = TransactionState.COMMITTED

    def _abort(self) -> None:
        """Roll back and end, unless ended already (a run interrupted by KeyboardInterrupt)."""
        if not self._closed:
            self._close(failed=True)

    def _activate(self) -> None:
        """Make this the current transaction (a task run's, while the run goes on)."""
        self._token = _active.set(self)

    def _deactivate(self) -> None:
        token = self._token
        if token is not None:
            self._token = None
            try:
                _active.reset(token)
            except ValueError:  # ended in another context (a generator closed elsewhere)
                pass

    # --- commit, rollback --------------------------------------------------------
    def _claim(self) -> bool:
        """Take the right to settle this transaction; False if it is settled or being settled.

        Two threads may end one transaction at once (a submitted task failing while
        the block commits): only one runs the hooks.
        """
        with _claim_lock:
            if self._claimed or self.state in _DONE:
                return False
            self._claimed = True
            return True

    def commit(self) -> bool:
        """Commit: children first, then the commit hooks, then the record; True if it committed.

        A failing hook or record write is logged and rolls the transaction back.
        """
        if not self._claim():
            self._release_if_done()
            return False
        try:
            for child in list(self.children):
                child.commit()
            for hook in list(self.on_commit_hooks):
                self.run_hook(hook, "commit")
            self._write()
        except ResultSerializationError as exc:
            self.logger.warning(
                "Encountered an error while serializing result for transaction %r: %s Code "
                "execution will continue, but the transaction will not be committed.",
                self.key,
                exc,
            )
            self._rollback()
            return False
        except Exception:
            self.logger.exception(
                "An error was encountered while committing transaction %r", self.key
            )
            self._rollback()
            return False
        self.state = TransactionState.COMMITTED
        self._release()
        return True

    def _write(self) -> None:
        entry = self._staged_entry
        if entry is not None:
            entry.write()
        elif self._records and self.key is not None and self.write_on_commit:
            from kernelflow import cache_index

            self._hit = None
            cache_index.store(
                self.key,
                self._staged_value,
                task_name="transaction",
                expires=None,
                task_run_id=None,
                duration=time.time() - self._began,
            )

    def rollback(self) -> bool:
        """Roll back: the rollback hooks newest first, then the children; True if it did.

        Nothing is written. A failing hook is logged and skips this
        transaction's remaining hooks; its children still roll back.
        """
        if not self._claim():
            self._release_if_done()
            return False
        return self._rollback()

    def _rollback(self) -> bool:
        done = True
        try:
            try:
                for hook in reversed(self.on_rollback_hooks):
                    self.run_hook(hook, "rollback")
            except Exception:
                self.logger.exception(
                    "An error was encountered while rolling back transaction %r", self.key
                )
                done = False
            self.state = TransactionState.ROLLED_BACK
            for child in reversed(self.children):
                child.rollback()
        finally:
            self._release()
        return done

    def run_hook(self, hook: Callable[[Transaction], Any], hook_type: str) -> None:
        """Call ``hook(self)`` (awaiting it if it is async), logging its start and end.

        Raises
        ------
        Exception
            Whatever the hook raised, after logging that it failed.
        """
        name = _hook_name(hook)
        should_log = getattr(hook, "log_on_run", True)
        if should_log:
            self.logger.info("Running %s hook %r", hook_type, name)
        try:
            outcome = hook(self)
            if inspect.isawaitable(outcome):
                from kernelflow._sync import run_coro_sync

                run_coro_sync(outcome)
        except Exception:
            if should_log:
                self.logger.error(
                    "An error was encountered while running %s hook %r", hook_type, name
                )
            raise
        if should_log:
            self.logger.info(
                "%s hook %r finished running successfully", hook_type.capitalize(), name
            )

    def _release(self) -> None:
        if self._lock is None:
            return
        with _claim_lock:
            fd, self._lock = self._lock, None
        if fd is not None:
            self.logger.debug("Releasing lock for transaction %r", self.key)
            os.close(fd)  # closing the descriptor drops the flock

    def _release_if_done(self) -> None:
        # A transaction that began committed (its record existed) holds its lock until
        # it ends; one settled by another thread is released by that thread.
        if self.state in _DONE:
            self._release()

    def __repr__(self) -> str:
        return f"Transaction(key={self.key!r}, state={self.state.value})"


def get_transaction() -> Transaction | None:
    """The current transaction: the innermost ``transaction()`` block, or the task run's own.

    Inside a task run there always is one: the run's transaction, made here if
    the run had none yet. Its values and hooks are those the task's
    ``on_commit`` / ``on_rollback`` hooks receive. Outside task runs and
    ``transaction()`` blocks, None.
    """
    txn = _active.get()
    if txn is not None:
        return txn
    ctx = context.task_context.get()
    if ctx is None:
        return None
    return task_transaction(ctx)


def transaction(
    key: str | None = None,
    store: Any = None,
    commit_mode: CommitMode | str | None = None,
    isolation_level: IsolationLevel | str | None = None,
    overwrite: bool = False,
    write_on_commit: bool = True,
    logger: logging.Logger | logging.LoggerAdapter | None = None,
) -> Transaction:
    """Open a transaction: ``with transaction() as txn: ...``.

    Task runs inside the block stage their results; the block commits when it
    ends (with the default LAZY mode, at the outermost block), and rolls back
    if an exception leaves it or a task in it fails.

    Parameters
    ----------
    key
        Keep a record under this key when the transaction commits; a later
        transaction with the key begins committed (``txn.is_committed()``).
    store
        Not supported: records live in kernelflow's store. Leave it out.
    commit_mode
        A :class:`CommitMode` (default: the parent's, LAZY at the top).
    isolation_level
        An :class:`IsolationLevel` (default: the parent's, READ_COMMITTED at the
        top). SERIALIZABLE with a key locks the key until the end.
    overwrite
        Run even if a record exists under ``key``, and replace it.
    write_on_commit
        Write the record when committing.
    logger
        Where hook runs and errors are logged (default: the current run's logger).

    Returns
    -------
    Transaction
        Enter it with ``with``.

    Raises
    ------
    ConfigurationError
        ``store`` was given, or a mode, level or key is not valid.

    Example
    -------
    >>> level = IsolationLevel.SERIALIZABLE
    >>> with transaction(key="nightly-2024-01-01", isolation_level=level) as txn:  # doctest: +SKIP
    ...     if not txn.is_committed():
    ...         load_and_write()
    """
    if store is not None:
        raise ConfigurationError(
            "transaction(store=...) is not supported: kernelflow keeps transaction records "
            "in its own store (KERNELFLOW_HOME) and locks keys with file locks there; "
            "drop the store argument."
        )
    if logger is None:
        logger = _current_run_logger()
    txn = Transaction(
        key,
        commit_mode=commit_mode,
        isolation_level=isolation_level,
        overwrite=overwrite,
        write_on_commit=write_on_commit,
        logger=logger,
    )
    txn._records = key is not None
    return txn


# --- task runs (used by the engine) ------------------------------------------------
def task_transaction(ctx: context.TaskRunContext, parent: Transaction | None = None) -> Transaction:
    """The transaction of the task run ``ctx``, begun now (inside ``parent``) if it has none.

    Its key is the run's cache key; the engine stages the run's result and
    cache entry in it, and commits or rolls it back when the run ends.
    """
    txn = ctx.transaction
    if txn is None:
        txn = Transaction(
            ctx.task_run.cache_key, isolation_level=None, overwrite=ctx.task.refresh_cache
        )
        txn._task_run = ctx.task_run
        txn._begin(parent)
        ctx.transaction = txn
    return txn


def _member(kind: type[enum.Enum], value: Any, option: str) -> Any:
    if value is None or isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ConfigurationError(
            f"{option}={value!r} is not a {kind.__name__}; use one of {choices}."
        ) from None


def _hook_name(hook: Any) -> str:
    name = getattr(hook, "__name__", None)
    if name is None:
        name = getattr(getattr(hook, "func", None), "__name__", None)  # functools.partial
    return name or repr(hook)


def _current_run_logger() -> logging.Logger | logging.LoggerAdapter:
    from kernelflow.logs import run_logger

    ctx = context.task_context.get()
    if ctx is not None:
        return run_logger("task", ctx.task_run)
    flow_ctx = context.current_flow_context()
    if flow_ctx is not None:
        return run_logger("flow", flow_ctx.flow_run)
    from kernelflow.logs import configure

    configure()
    return _log


def _acquire_lock(key: str) -> int:
    """Hold an exclusive flock on the key's lock file, waiting for it; the descriptor holds it.

    Every acquisition opens the file anew, so two transactions in one process
    (two threads) are two holders, as two processes are.
    """
    from kernelflow.hashing import hash_bytes
    from kernelflow.settings import open_private, paths

    store = paths()
    directory = store.home / "locks"
    store.ensure(directory)
    fd = open_private(directory / f"{hash_bytes('transaction lock', key)}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd
