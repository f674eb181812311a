"""The store's ``concurrency_limits`` table: a mirror of the limit definition files.

Acquisitions never touch the database; they read the definition files. Each
change (create, update, delete) is applied to the file and to the table in
one step, under the store's write lock, so the table is what ``kernelflow.sql``
users see and concurrent changes are serialised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol, TypeVar

from kernelflow.settings import paths

if TYPE_CHECKING:
    import duckdb

__all__ = ["LimitRow", "insert_limit_rows", "mirror_limit_change"]


class LimitRow(Protocol):
    """What the table keeps of a limit definition (``LimitDefinition`` has it)."""

    @property
    def name(self) -> str:
        """The limit's name."""

    @property
    def limit(self) -> int:
        """How many slots it has."""

    @property
    def slot_decay_per_second(self) -> float:
        """Slots freed a second (a rate limit), or 0."""

    @property
    def active(self) -> bool:
        """Whether it is enforced."""

    @property
    def created(self) -> float:
        """Epoch seconds."""

    @property
    def updated(self) -> float:
        """Epoch seconds."""


#: A definition, or None for a deleted limit: callers get back the type they passed.
_Limit = TypeVar("_Limit", bound="LimitRow | None")


def mirror_limit_change(name: str, apply: Callable[[], _Limit]) -> _Limit:
    """Run ``apply`` (which changes limit ``name``'s file) and mirror the result in the table.

    ``apply`` returns the new definition, or None when the limit was deleted.
    It runs inside the database transaction, after the old row is deleted, so
    a failure of either leaves both unchanged.
    """
    from kernelflow.store.db import connect

    with connect(paths()) as con:
        con.begin()
        try:
            con.execute("DELETE FROM concurrency_limits WHERE name = ?", [name])
            definition = apply()
            if definition is not None:
                insert_limit_rows(con, [definition])
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return definition


def insert_limit_rows(con: duckdb.DuckDBPyConnection, definitions: Iterable[LimitRow]) -> None:
    """Insert one ``concurrency_limits`` row per definition, on the caller's connection.

    The caller owns the transaction (and deletes the rows being replaced):
    :func:`mirror_limit_change` for one limit, the store's repair for all.
    """
    rows = [
        (d.name, d.limit, d.slot_decay_per_second, d.active, d.created, d.updated)
        for d in definitions
    ]
    if rows:
        con.executemany(
            "INSERT INTO concurrency_limits VALUES (?, ?, ?, ?, to_timestamp(?), to_timestamp(?))",
            rows,
        )
