"""How a transaction settles: commits or rolls back once, children and hooks in order.

:class:`Settlement` is the base of :class:`~kernelflow.transactions.Transaction`
holding its commit, rollback and hook running; the transaction's life before
that (beginning, values, nesting) is in ``_transaction``. Two threads may end
one transaction at once, so the right to settle is claimed under one lock.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kernelflow.errors import ResultSerializationError
from kernelflow.transactions._modes import DONE as _DONE
from kernelflow.transactions._modes import TransactionState

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is Python 3.11+

    from kernelflow.runs import TaskRun
    from kernelflow.store.cache_index import CacheHit
    from kernelflow.transactions._modes import StagedEntry

__all__ = ["Settlement"]

_log = logging.getLogger("kernelflow.transactions")
#: Guards the claim to commit or roll back (see :meth:`Settlement._claim`).
_claim_lock = threading.Lock()


class Settlement:
    """Commit, rollback and hooks of a transaction (the base of ``Transaction``)."""

    # The attributes settling changes; Transaction.__slots__ holds the others.
    __slots__ = ("_claimed", "_hit", "_lock", "_logger", "state")

    state: TransactionState
    _claimed: bool
    _hit: CacheHit | None
    _lock: int | None
    _logger: logging.Logger | logging.LoggerAdapter | None
    # Set by Transaction.__init__ and read here.
    key: str | None
    children: list[Self]
    on_commit_hooks: list[Callable[[Any], Any]]  # called with the Transaction
    on_rollback_hooks: list[Callable[[Any], Any]]
    write_on_commit: bool
    _staged_value: Any
    _staged_entry: StagedEntry | None
    _records: bool
    _task_run: TaskRun | None
    _began: float

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
            from kernelflow.store import cache_index

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

    def run_hook(self: Self, hook: Callable[[Self], Any], hook_type: str) -> None:
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


def _hook_name(hook: Any) -> str:
    name = getattr(hook, "__name__", None)
    if name is None:
        name = getattr(getattr(hook, "func", None), "__name__", None)  # functools.partial
    return name or repr(hook)
