"""``transaction()``: open a transaction block, logging to the current run."""

from __future__ import annotations

import logging
from typing import Any

from kernelflow import context
from kernelflow.errors import ConfigurationError
from kernelflow.transactions._modes import CommitMode, IsolationLevel
from kernelflow.transactions._transaction import Transaction

__all__ = ["transaction"]

_log = logging.getLogger("kernelflow.transactions")


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
