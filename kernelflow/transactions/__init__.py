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
:func:`kernelflow.store.cache_index.point`) and its ``on_commit`` hooks wait for the
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

from kernelflow.transactions._block import transaction
from kernelflow.transactions._modes import (
    CommitMode,
    IsolationLevel,
    TransactionRecord,
    TransactionState,
)

# StagedEntry and task_transaction are not public: the engine drives a task run's
# transaction with them (re-exported for ``transactions.X`` in the engine).
from kernelflow.transactions._modes import StagedEntry as StagedEntry
from kernelflow.transactions._transaction import Transaction, get_transaction
from kernelflow.transactions._transaction import task_transaction as task_transaction

__all__ = [
    "CommitMode",
    "IsolationLevel",
    "Transaction",
    "TransactionRecord",
    "TransactionState",
    "get_transaction",
    "transaction",
]
