"""Reading the store by attaching its file to one DuckDB kept for the process.

Opening a DuckDB database costs about 17 ms of CPU however small the file,
nearly all of it in building a new instance's catalog of built-in functions;
attaching a file read-only to an instance that exists costs about 1.5 ms.
kernelflow's own queries (:func:`~kernelflow.store.queries.session`) therefore
run on one in-memory DuckDB instance per process, to which the store's file
is attached for the few milliseconds of a page's questions and detached
right after, so the file is held no longer than a connection was: a writer
waits for it exactly as before.

What does not change: the store's shared lock is taken before the attach and
released after the detach (with the same bounded backoff as
:func:`~kernelflow.store.db.connect`, the same one-line errors), and the
threads of a process that read at once share one attach (counted). A store
that needs a migration, or does not exist yet, is opened by
:func:`~kernelflow.store.db.connect` instead, which migrates it. Users' SQL
(:func:`~kernelflow.store.queries.sql`) keeps its own sandboxed connection.
A forked child builds its own instance (DuckDB's threads do not survive a fork),
and an instance left unused for :data:`_IDLE_S` seconds is closed, so a process
that reads now and then does not keep its memory.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from kernelflow.settings import StorePaths
from kernelflow.store.db import _release, lock_then, retry_while_busy, translate_error
from kernelflow.store.schema import SCHEMA_VERSION

#: The instance's settings: as the sandbox's, but files may be attached (only the store's
#: is, by this module: the queries run here are kernelflow's own, never a user's).
_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


@dataclass
class _Attach:
    """One attached store: its alias, our lock's descriptor, how many readers use it."""

    alias: str
    lock_fd: int | None
    readers: int = 0


#: An instance nobody read through for this long is closed: it holds about 25 MB (the
#: catalog of built-in functions), which a kernel that reads now and then need not keep.
_IDLE_S = 30.0


class _Instance:
    """The process's DuckDB instance and what is attached to it (guarded by ``lock``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.con: duckdb.DuckDBPyConnection | None = None
        self.attached: dict[Path, _Attach] = {}
        self.names = itertools.count()
        self.last_used = 0.0
        self.closer: threading.Timer | None = None

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The instance's connection, made on first use (call with ``lock`` held)."""
        if self.con is None:
            self.con = duckdb.connect(":memory:", config=_CONFIG)
        return self.con

    def close_when_idle(self) -> None:
        """Close the instance once nobody used it for :data:`_IDLE_S` (``lock`` held).

        One timer at a time: when it fires early (the instance was used since),
        it waits again for the rest of the idle time.
        """
        self.last_used = time.monotonic()
        if self.closer is None:
            self._arm(_IDLE_S)

    def _arm(self, seconds: float) -> None:
        self.closer = threading.Timer(seconds, self._close_if_idle)
        self.closer.daemon = True
        self.closer.start()

    def _close_if_idle(self) -> None:
        with self.lock:
            self.closer = None
            if self.attached or self.con is None:
                return  # in use again: its last reader arms a new timer
            idle = time.monotonic() - self.last_used
            if idle < _IDLE_S:
                self._arm(_IDLE_S - idle)
                return
            con, self.con = self.con, None
            con.close()


_instance = _Instance()


def _forget_after_fork() -> None:
    # The parent's instance (and its threads) are unusable here; its attaches are the
    # parent's. Dropped, not closed: closing would touch threads that do not exist.
    global _instance
    _instance = _Instance()


os.register_at_fork(after_in_child=_forget_after_fork)


@contextmanager
def attached(paths: StorePaths, timeout: float) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A cursor reading the store's database, or None when it must be opened instead.

    None when the database does not exist yet or its schema is not this
    kernelflow's: :func:`~kernelflow.store.db.connect` creates, migrates or
    refuses it with its own error.

    Raises
    ------
    StoreLockedError
        Another program kept the database for longer than ``timeout`` seconds.
    StoreCorruptError
        The file is not a readable DuckDB database.
    """
    if not paths.database.exists():
        yield None
        return
    paths.check_private()
    instance = _instance
    alias = _attach(instance, paths, time.monotonic() + timeout)
    cursor = None
    try:
        with instance.lock:  # our attach keeps the instance open until _close
            cursor = instance.connection().cursor()
        current = _current_schema(cursor, alias, paths)
    except BaseException:
        _close(instance, paths, cursor)
        raise
    if not current:
        # Let go first: connect() may need the write lock to migrate.
        _close(instance, paths, cursor)
        yield None
        return
    try:
        yield cursor
    finally:
        _close(instance, paths, cursor)


def _close(
    instance: _Instance, paths: StorePaths, cursor: duckdb.DuckDBPyConnection | None
) -> None:
    try:
        if cursor is not None:
            cursor.close()
    finally:
        _detach(instance, paths)


def _current_schema(cursor: duckdb.DuckDBPyConnection, alias: str, paths: StorePaths) -> bool:
    """Make ``alias`` the cursor's database; whether its schema is this kernelflow's."""
    try:
        cursor.execute(f"USE {alias}")
        (version,) = cursor.execute(
            f"SELECT coalesce(max(version), 0) FROM {alias}.main.schema_version"
        ).fetchall()[0]
    except duckdb.CatalogException:
        return False  # no schema_version table: a database kernelflow never migrated
    except duckdb.Error as exc:
        raise translate_error(exc, paths) from None
    return bool(version == SCHEMA_VERSION)


def _attach(instance: _Instance, paths: StorePaths, deadline: float) -> str:
    """Attach the store (or count one more reader of its attach); its alias.

    Retried as :func:`~kernelflow.store.db.connect` retries an open: the same
    backoff, the same one-line errors when the wait ends.
    """

    def attempt() -> str:
        with instance.lock:
            known = instance.attached.get(paths.home)
            if known is not None:
                known.readers += 1
                return known.alias
            alias = f"kernelflow_store_{next(instance.names)}"
            lock_fd, _ = lock_then(
                paths,
                True,
                lambda: instance.connection().execute(
                    f"ATTACH '{_quoted(paths.database)}' AS {alias} (READ_ONLY)"
                ),
            )
            instance.attached[paths.home] = _Attach(alias, lock_fd, readers=1)
            return alias

    return retry_while_busy(deadline, attempt)


def _detach(instance: _Instance, paths: StorePaths) -> None:
    """One reader less; the last one detaches the file and releases the lock."""
    with instance.lock:
        known = instance.attached[paths.home]
        known.readers -= 1
        if known.readers:
            return
        del instance.attached[paths.home]
        try:
            instance.connection().execute(f"DETACH {known.alias}")
        finally:
            _release(known.lock_fd, read_only=True)
            if not instance.attached:
                instance.close_when_idle()


def _quoted(path: Path) -> str:
    """A path as the text of a SQL string literal (ATTACH takes no parameters)."""
    return str(path).replace("'", "''")
