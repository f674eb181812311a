"""Mirroring limit definitions into the store's ``concurrency_limits`` table.

Acquisitions never touch the database; they read the definition files. Each
change (create, update, delete) is applied to the file and to the table in
one step, under the store's write lock, so the table is what ``kernelflow.sql``
users see and concurrent changes are serialised.
"""

from __future__ import annotations

from collections.abc import Callable

from kernelflow.concurrency._limits import LimitDefinition
from kernelflow.settings import paths

__all__ = ["change_recorded"]


def change_recorded(
    name: str, apply: Callable[[], LimitDefinition | None]
) -> LimitDefinition | None:
    """Run ``apply`` (which changes limit ``name``'s file) and record the result in the store.

    ``apply`` returns the new definition, or None when the limit was deleted.
    It runs inside the database transaction, after the row is written, so a
    failure of either leaves both unchanged.
    """
    from kernelflow.store.db import connect

    with connect(paths()) as con:
        con.begin()
        try:
            con.execute("DELETE FROM concurrency_limits WHERE name = ?", [name])
            definition = apply()
            if definition is not None:
                con.execute(
                    "INSERT INTO concurrency_limits VALUES "
                    "(?, ?, ?, ?, to_timestamp(?), to_timestamp(?))",
                    [
                        definition.name,
                        definition.limit,
                        definition.slot_decay_per_second,
                        definition.active,
                        definition.created,
                        definition.updated,
                    ],
                )
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return definition
