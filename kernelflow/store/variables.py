"""Variables (``kernelflow.variables.Variable``) in the DuckDB store.

Why not the journal: a variable must be read back at once, by this process
or another, and ``Variable.set(..., overwrite=False)`` must refuse a name that
exists even when two processes set it at the same moment. A journal is read
only at the next compaction and checks nothing when written; the database,
written under the store's write lock, answers both. So, as deployments do,
each call opens the database for a few milliseconds (``connect`` takes the
lock, so concurrent callers queue), checks and writes in one transaction, and
closes it. A read opens it read-only; no compaction is needed, since nothing
about variables waits in a journal.

Values are stored as JSON text in ``variables.value``; tags as a list.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from kernelflow import settings
from kernelflow.store.db import connect

__all__ = ["StoredVariable", "delete_variable", "read_variable", "write_variable"]


@dataclass(frozen=True)
class StoredVariable:
    """One row of ``variables``, with its value parsed from JSON.

    Attributes
    ----------
    name
        The variable's name.
    value
        Its value (str, int, float, bool, None, list or dict).
    tags
        Its tags.
    created, updated
        Epoch seconds.
    """

    name: str
    value: Any
    tags: list[str] = field(default_factory=list)
    created: float | None = None
    updated: float | None = None


_COLUMNS = "name, value, tags, epoch(created), epoch(updated)"


def _row(row: tuple) -> StoredVariable:
    name, value, tags, created, updated = row
    return StoredVariable(name, json.loads(value), list(tags or ()), created, updated)


def read_variable(name: str) -> StoredVariable | None:
    """The variable called ``name``, or None if there is none.

    Raises
    ------
    StoreError
        The database cannot be opened (see :mod:`kernelflow.errors`).
    """
    with connect(settings.paths(), read_only=True) as con:
        row = con.execute(f"SELECT {_COLUMNS} FROM variables WHERE name = ?", [name]).fetchone()
    return _row(row) if row is not None else None


def write_variable(
    name: str, value_json: str, tags: list[str], overwrite: bool
) -> StoredVariable | None:
    """Create variable ``name``, or replace it when ``overwrite``; None if it exists and not.

    The check and the write are one transaction under the store's write lock,
    so of two processes creating the same name at once exactly one succeeds.

    Parameters
    ----------
    name
        A valid variable name (checked by the caller).
    value_json
        The value as JSON text.
    tags
        The variable's tags (replacing any it had).
    overwrite
        Replace an existing variable of that name.

    Returns
    -------
    StoredVariable or None
        The row as written; None when the name exists and ``overwrite`` is false.
    """
    now = time.time()
    with connect(settings.paths()) as con:
        con.begin()
        try:
            existing = con.execute(
                "SELECT epoch(created) FROM variables WHERE name = ?", [name]
            ).fetchone()
            if existing is not None and not overwrite:
                con.rollback()
                return None
            created = existing[0] if existing is not None else now
            con.execute("DELETE FROM variables WHERE name = ?", [name])
            con.execute(
                "INSERT INTO variables VALUES (?, ?, ?, to_timestamp(?), to_timestamp(?))",
                [name, value_json, list(tags), created, now],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return StoredVariable(name, json.loads(value_json), list(tags), created, now)


def delete_variable(name: str) -> bool:
    """Delete variable ``name``; True if it existed."""
    with connect(settings.paths()) as con:
        deleted = con.execute(
            "DELETE FROM variables WHERE name = ? RETURNING name", [name]
        ).fetchall()
    return bool(deleted)
