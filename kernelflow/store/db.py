"""Opening the DuckDB file: one writer at a time, bounded waits, one-line errors.

A DuckDB file can be open read-write by one process at a time; a second
opener gets DuckDB's lock error at once. Our own processes therefore first
take an ``fcntl.flock`` on ``paths.lock`` (exclusive to write, shared to read),
so they queue behind each other instead of failing. A foreign program (the
``duckdb`` CLI, a user's own connection) does not know our lock, so DuckDB's
own lock error is retried too. Both waits share one deadline:
``KERNELFLOW_LOCK_TIMEOUT`` seconds (default 10).

The connection is only ever held for the few milliseconds of a compaction or
a query, never while user code runs, and is closed in ``finally``.

Read-only connections run users' queries (:func:`kernelflow.store.queries.sql`),
so every one is opened sandboxed (:data:`SANDBOX`): no files, no network, no
extensions, and settings no query can change. DuckDB lets one process open a
file several times only with the same configuration, so all read-only opens
share it. Write connections run kernelflow's own statements only.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import duckdb

from kernelflow.errors import (
    SchemaTooNewError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreNotWritableError,
)
from kernelflow.settings import PRIVATE_FILE, StorePaths, current, open_private
from kernelflow.store.schema import SCHEMA_VERSION, check_not_too_new, migrate, schema_version

__all__ = [
    "SANDBOX",
    "StoreBusy",
    "connect",
    "connection_open_in",
    "lock_then",
    "lock_timeout",
    "retry_while_busy",
    "translate_error",
    "write_lock",
]

_T = TypeVar("_T")

#: Store connections open, per thread ident (see :func:`connection_open_in`).
_open_in: Counter[int] = Counter()


def connection_open_in(thread: threading.Thread) -> bool:
    """Whether ``thread`` has a connection of :func:`connect` open (is in DuckDB's code).

    The interpreter ends a daemon thread that comes back from DuckDB's code after the
    interpreter began to end by unwinding it through DuckDB's C++ frames, which aborts
    the whole process (SIGABRT, "FATAL: exception not rethrown"): an exit hook stopping
    such a thread waits while this is true.
    """
    return thread.ident in _open_in


_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")

#: The configuration of every read-only connection (DuckDB's "Securing DuckDB" settings).
SANDBOX: dict[str, str | bool | int | float | list[str]] = {
    # No COPY TO/FROM files, ATTACH of other files, read_csv/read_text/glob, http(s)
    # URLs or Python replacement scans: the store's own file is all a query sees.
    "enable_external_access": False,
    # No INSTALL behind the user's back (an extension is code from the network)...
    "autoinstall_known_extensions": False,
    # ...and no LOAD of one installed before.
    "autoload_known_extensions": False,
    # Last: no SET or PRAGMA can loosen the settings above.
    "lock_configuration": True,
}


def lock_timeout() -> float:
    """Seconds to wait for the database (``KERNELFLOW_LOCK_TIMEOUT``, default 10)."""
    return current().lock_timeout


@contextmanager
def connect(
    paths: StorePaths,
    *,
    read_only: bool = False,
    timeout: float | None = None,
    lock_held: bool = False,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the store's database, migrated to the current schema, for one short job.

    Parameters
    ----------
    paths
        The store to open.
    read_only
        Open for reading, sandboxed (:data:`SANDBOX`): several readers may share
        the file. A missing or outdated database is first created or migrated
        with a short write open.
    timeout
        Seconds to wait for other processes; default :func:`lock_timeout`.
    lock_held
        The caller already holds the store's write lock (:func:`write_lock`), so
        it is not taken again (it is not reentrant: taking it would wait forever).

    Yields
    ------
    duckdb.DuckDBPyConnection
        Closed, and the lock released, when the block exits.

    Raises
    ------
    StoreLockedError
        Another program kept the database for longer than ``timeout``.
    StoreCorruptError
        The file is not a readable DuckDB database.
    StoreNotWritableError
        The store directory or file cannot be written.
    StoreNotPrivateError
        Other users can write the store directory, or it is another user's.
    SchemaTooNewError
        The database was written by a newer kernelflow.

    Examples
    --------
    >>> with connect(StorePaths(tmp)) as con:  # doctest: +SKIP
    ...     con.execute("SELECT count(*) FROM flow_runs").fetchone()
    """
    deadline = time.monotonic() + (lock_timeout() if timeout is None else timeout)
    if not read_only:
        paths.ensure()
    else:
        paths.check_private()
    if read_only and not paths.database.exists():
        # Nothing to read yet: create an empty, migrated database first.
        with connect(paths, timeout=max(0.0, deadline - time.monotonic()), lock_held=lock_held):
            pass
    migrated = False
    con: duckdb.DuckDBPyConnection | None
    ident = threading.get_ident()
    while True:
        lock_fd, con = _open(paths, read_only, deadline, lock_held)
        _open_in[ident] += 1  # until closed, below
        try:
            if read_only:
                version = _call(paths, schema_version, con)
                check_not_too_new(version, paths.database)
                if version < SCHEMA_VERSION and not migrated:
                    # Migrating needs a write open; drop ours first (the lock is not reentrant).
                    con.close()
                    _release(lock_fd, read_only)
                    lock_fd = con = None
                    remaining = max(0.0, deadline - time.monotonic())
                    with connect(paths, timeout=remaining, lock_held=lock_held):
                        pass
                    migrated = True
                    continue
            else:
                _call(paths, migrate, con, paths.database)
            yield con
            return
        finally:
            try:
                if con is not None:
                    # Closing checkpoints the file, which can fail (disk full).
                    _call(paths, con.close)
            finally:
                _release(lock_fd, read_only)
                _open_in[ident] -= 1
                if not _open_in[ident]:
                    del _open_in[ident]


def _call(paths: StorePaths, fn: Callable[..., _T], *args: Any) -> _T:
    """Run ``fn(*args)``, turning DuckDB's errors into our one-line store errors."""
    try:
        return fn(*args)
    except duckdb.Error as exc:
        raise translate_error(exc, paths) from None


def _open(
    paths: StorePaths, read_only: bool, deadline: float, lock_held: bool = False
) -> tuple[int | None, duckdb.DuckDBPyConnection]:
    """Take our lock (unless held), then DuckDB's; retry both with backoff until ``deadline``."""

    def open_file() -> duckdb.DuckDBPyConnection:
        if read_only:
            return duckdb.connect(str(paths.database), read_only=True, config=SANDBOX)
        con = duckdb.connect(str(paths.database))
        _make_private(paths)
        return con

    return retry_while_busy(deadline, lambda: lock_then(paths, read_only, open_file, lock_held))


class StoreBusy(Exception):
    """One try found the store held: by another kernelflow process (our lock) or not.

    ``error`` is the one-line error to raise if the wait ends; ``foreign`` says
    DuckDB reported another program holding the file.
    """

    def __init__(self, error: StoreLockedError, *, foreign: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.foreign = foreign


def lock_then(
    paths: StorePaths, read_only: bool, open_file: Callable[[], _T], lock_held: bool = False
) -> tuple[int | None, _T]:
    """One try: our lock (unless held), then ``open_file()`` (DuckDB's part); both held.

    Raises :class:`StoreBusy` when either is held by someone else (our lock is
    released again then), and our one-line store error for any other DuckDB error.
    """
    lock_fd = None if lock_held else _lock(paths, read_only)
    if lock_fd == _BUSY:
        raise StoreBusy(_busy_error(paths), foreign=False)
    try:
        return lock_fd, open_file()
    except duckdb.Error as exc:
        _release(lock_fd, read_only)
        error = translate_error(exc, paths)
        if not isinstance(error, StoreLockedError):
            raise error from None
        raise StoreBusy(error, foreign=True) from None


def retry_while_busy(deadline: float, attempt: Callable[[], _T]) -> _T:
    """``attempt()``, retried with backoff while it raises :class:`StoreBusy`, to ``deadline``.

    When the wait ends, the error names the program DuckDB reported holding the
    file, if it did during this wait, even if our lock was busy at the last try:
    the kernelflow process seen holding our lock then was most likely waiting for
    that same program (every waiter takes our lock for each of its tries), and
    ending it would not help.
    """
    delay = 0.002
    foreign: StoreLockedError | None = None
    while True:
        try:
            return attempt()
        except StoreBusy as busy:
            error = busy.error
            if busy.foreign:
                foreign = error
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise (foreign or error) from None
        # Backoff: short waits first (a compaction takes tens of ms), capped so
        # a waiter notices a released lock quickly.
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.1)


def _make_private(paths: StorePaths) -> None:
    """Give the database file and its write-ahead log mode 0600, whatever the umask.

    DuckDB creates both with the umask's mode. The database is chmod-ed once
    open; the WAL is created here, empty and private, before anything is written,
    and DuckDB then appends to our file (an empty WAL is valid, even after a crash).
    """
    try:
        os.chmod(paths.database, PRIVATE_FILE)
        os.close(open_private(f"{paths.database}.wal", os.O_WRONLY))
    except OSError:
        pass  # not ours to change (e.g. made by root): the home itself is private


_BUSY = -1  # sentinel for "our lock is held by another process"


@contextmanager
def write_lock(paths: StorePaths, *, timeout: float | None = None) -> Iterator[None]:
    """Hold the store's write lock without opening the database.

    For work that replaces the database file itself
    (:func:`kernelflow.store.repair.repair`): every kernelflow process waits for
    it as for a compaction. Inside, open the database with
    ``connect(paths, lock_held=True)``.

    Raises
    ------
    StoreLockedError
        Another kernelflow process kept the lock for longer than ``timeout``
        (default :func:`lock_timeout`).
    """
    deadline = time.monotonic() + (lock_timeout() if timeout is None else timeout)
    paths.ensure()
    delay = 0.002
    while (lock_fd := _lock(paths, read_only=False)) == _BUSY:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _busy_error(paths)
        time.sleep(min(delay, remaining))  # backoff as in _open
        delay = min(delay * 2, 0.1)
    try:
        yield
    finally:
        _release(lock_fd, read_only=False)


def _lock(paths: StorePaths, read_only: bool) -> int | None:
    """Try our flock once: the locked fd, ``_BUSY``, or None when reading an unwritable store."""
    try:
        fd = open_private(paths.lock, os.O_RDWR)
    except OSError as exc:
        if read_only and exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            # A read-only store (e.g. a shared, read-only mount): DuckDB's own
            # shared lock is all the protection a reader needs.
            return None
        raise StoreNotWritableError(
            f"Cannot open the lock file {paths.lock} ({exc.strerror}); fix the permissions "
            "of that directory or set KERNELFLOW_HOME to a directory you can write."
        ) from None
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if read_only else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return _BUSY
    if not read_only:
        # Leave our pid in the file so a waiter's error can name the holder.
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same, only a waiter's message is vaguer
    return fd


def _release(fd: int | None, read_only: bool) -> None:
    if fd is None or fd == _BUSY:
        return
    if not read_only:
        os.ftruncate(fd, 0)  # no stale pid for the next waiter's message
    os.close(fd)  # closing the descriptor releases the flock


def _busy_error(paths: StorePaths) -> StoreLockedError:
    try:
        holder = paths.lock.read_text().strip()
    except OSError:
        holder = ""
    who = f"kernelflow process PID {holder}" if holder.isdigit() else "another kernelflow process"
    return StoreLockedError(
        f"{who} keeps the lock {paths.lock} busy; if that process hangs, end it, then try "
        f"again (events wait in {paths.journal}, nothing is lost)."
    )


def translate_error(exc: duckdb.Error, paths: StorePaths) -> StoreError:
    """The one-line kernelflow error for a DuckDB error on the store's file."""
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    db = paths.database
    holder = _HOLDER.search(text)
    if "Could not set lock" in text or holder:
        who = f"{holder['program']} (PID {holder['pid']})" if holder else "another program"
        return StoreLockedError(
            f"{who} holds the store database {db} open; close that connection (e.g. quit "
            f"the duckdb CLI) and try again (events wait in {paths.journal}, nothing is lost)."
        )
    if any(s in text for s in ("No space left", "Disk quota exceeded", "File too large")):
        return StoreFullError(
            f"Cannot write the store database {db} ({_reason(first)}); free disk space, or "
            "raise the disk quota or the file size limit (ulimit -f), then try again "
            f"(events wait in {paths.journal}, nothing is lost)."
        )
    if any(s in text for s in ("Permission denied", "Read-only file system")):
        return StoreNotWritableError(
            f"Cannot write the store database {db} ({_reason(first)}); free space or fix "
            "permissions, or set KERNELFLOW_HOME to a directory you can write."
        )
    if "version number" in text or "newer version" in text:
        return SchemaTooNewError(
            f"The store database {db} was written by a newer DuckDB ({_reason(first)}); "
            "upgrade duckdb and kernelflow (pip install -U duckdb kernelflow)."
        )
    # "Corrupt database file": a block whose checksum fails, met on open or by a query.
    damaged = ("not a valid DuckDB database", "Corrupt database file")
    if isinstance(exc, duckdb.IOException | duckdb.SerializationException) or any(
        s in text for s in damaged
    ):
        return StoreCorruptError(
            f"The store database {db} is not readable ({_reason(first)}); run 'kernelflow "
            f"store repair' to move it aside and rebuild it from the journals in "
            f"{paths.journal} and the cache index."
        )
    return StoreError(f"The store database {db} failed: {_reason(first)}")


def _reason(first_line: str) -> str:
    # "IO Error: The file ... exists, but ..." -> keep DuckDB's sentence, drop
    # its category prefix and any trailing documentation link.
    reason = first_line.split(": ", 1)[-1]
    return reason.split(" See also ", 1)[0].rstrip(". ")
