"""Users' SQL on the store: one read-only statement on a sandboxed connection.

:func:`sql` is the one way users' SQL reaches the store: ``kernelflow.sql``,
``kernelflow sql`` and ``%kf sql`` all call it. It runs exactly one statement,
and only a ``SELECT`` (which includes ``WITH``, ``VALUES``, ``FROM ...``,
``DESCRIBE``, ``SHOW`` and ``SUMMARIZE``), on a sandboxed connection (see
:data:`kernelflow.store.db.SANDBOX`): no files, network or extensions, and no
setting can be changed. The statement is checked with DuckDB's own parser,
and the parsed statement is what runs, so the check and the run cannot
disagree. Every DuckDB error becomes a one-line :class:`QueryError`.

Everything in the database is readable this way, so what must stay private
is not in it: secrets (:mod:`kernelflow.store.secrets`) are files of their
own. Variables, artifacts and events are tables like the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import duckdb

from kernelflow import settings
from kernelflow.errors import QueryError
from kernelflow.store.queries.reading import _SCHEMA_HINT, _query_error, _reading

if TYPE_CHECKING:
    import pandas


def sql(query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pandas.DataFrame:
    """Run a read-only SQL query on the store and return the result.

    Parameters
    ----------
    query
        One DuckDB ``SELECT`` over the tables in ``docs/schema.md``; ``?`` or
        ``$name`` placeholders are bound from ``params``. Files, the network and
        extensions are out of reach, and settings cannot be changed.
    params
        Values for the placeholders.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    QueryError
        The query is not one read-only statement, reaches outside the store,
        or is invalid (the message keeps DuckDB's, on one line).
    StoreError
        The database cannot be opened (see :mod:`kernelflow.errors`).

    Examples
    --------
    >>> import kernelflow
    >>> kernelflow.sql(  # doctest: +SKIP
    ...     "SELECT state_name, count(*) AS n FROM task_runs GROUP BY ALL"
    ... )
      state_name   n
    0  Completed  41
    1     Cached   7
    """
    paths = settings.paths()
    with _reading(paths) as con:
        try:
            statement = _one_read(con, query)
            return con.execute(statement, params).df()
        except duckdb.Error as exc:
            raise _query_error(exc, paths) from exc


def _one_read(con: duckdb.DuckDBPyConnection, query: str) -> duckdb.Statement:
    """The one ``SELECT`` statement ``query`` holds, parsed; else a :class:`QueryError`."""
    if not isinstance(query, str):
        raise QueryError(f"A query is a string of SQL, not {type(query).__name__}.")
    statements = con.extract_statements(query)
    if not statements:
        raise QueryError(f"The query is empty; write one SELECT ({_SCHEMA_HINT}).")
    if len(statements) > 1:
        raise QueryError(
            f"A store query runs one statement, and this has {len(statements)}; run them "
            "one at a time (without ';' between them)."
        )
    (statement,) = statements
    if statement.type != duckdb.StatementType.SELECT:
        # INSTALL parses as LOAD; name what the user wrote.
        kind = "an INSTALL or LOAD" if statement.type.name == "LOAD" else statement.type.name
        if not kind.startswith("an "):
            kind = f"{'an' if kind[0] in 'AEIOU' else 'a'} {kind.replace('_', ' ')}"
        raise QueryError(
            f"Store queries are read-only: {kind} statement is not run; write one SELECT "
            f"(or WITH, DESCRIBE, SHOW, SUMMARIZE) ({_SCHEMA_HINT})."
        )
    return statement
