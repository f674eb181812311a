"""Mirroring limit definitions into the store's ``concurrency_limits`` table.

Acquisitions never touch the database; they read the definition files. Each
change (create, update, delete) is applied to the file and to the table in
one step, under the store's write lock, so the table is what ``kernelflow.sql``
users see and concurrent changes are serialised. The statements live in
:mod:`kernelflow.store.limits`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from kernelflow.concurrency._limits import LimitDefinition

__all__ = ["change_recorded"]


#: The new definition, or None when the change deletes the limit.
_Definition = TypeVar("_Definition", bound="LimitDefinition | None")


def change_recorded(name: str, apply: Callable[[], _Definition]) -> _Definition:
    """Run ``apply`` (which changes limit ``name``'s file) and record the result in the store.

    ``apply`` returns the new definition, or None when the limit was deleted.
    It runs inside the database transaction, after the row is written, so a
    failure of either leaves both unchanged.
    """
    from kernelflow.store.limits import mirror_limit_change

    return mirror_limit_change(name, apply)
