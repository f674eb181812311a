"""A transaction's life: begin inside the current one, hold values, end and hand over.

Also which transaction is current (:func:`get_transaction`) and a task run's
own (:func:`task_transaction`), which the engine begins, stages into and ends.
Committing and rolling back are in ``_settle``; the modes and records in ``_modes``.
"""

from __future__ import annotations

import copy
import fcntl
import logging
import os
import time
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, cast

from kernelflow import context
from kernelflow.errors import ConfigurationError
from kernelflow.transactions._modes import DONE as _DONE
from kernelflow.transactions._modes import (
    CommitMode,
    IsolationLevel,
    StagedEntry,
    TransactionRecord,
    TransactionState,
)
from kernelflow.transactions._modes import member as _member
from kernelflow.transactions._settle import Settlement

if TYPE_CHECKING:
    from collections.abc import Callable

    from kernelflow.runs import TaskRun
    from kernelflow.store.cache_index import CacheHit

__all__ = ["Transaction", "get_transaction", "task_transaction"]

_NOT_SET: Any = object()
#: The transaction of the code running now (see :func:`get_transaction`).
_active: ContextVar[Transaction | None] = ContextVar("kernelflow_transaction", default=None)


class Transaction(Settlement):
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

    # With Settlement.__slots__, the attributes settling changes.
    __slots__ = (
        "_began",
        "_closed",
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
            from kernelflow.store import cache_index

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
                from kernelflow.store import cache_index

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


# --- task runs (used by the engine) ------------------------------------------------
def task_transaction(ctx: context.TaskRunContext, parent: Transaction | None = None) -> Transaction:
    """The transaction of the task run ``ctx``, begun now (inside ``parent``) if it has none.

    Its key is the run's cache key; the engine stages the run's result and
    cache entry in it, and commits or rolls it back when the run ends.
    """
    # The context types it as a Protocol (it cannot import this module); it only
    # ever holds a Transaction made here.
    txn = cast("Transaction | None", ctx.transaction)
    if txn is None:
        txn = Transaction(
            ctx.task_run.cache_key, isolation_level=None, overwrite=ctx.task.refresh_cache
        )
        txn._task_run = ctx.task_run
        txn._begin(parent)
        ctx.transaction = txn
    return txn


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
