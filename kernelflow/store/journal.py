"""The per-process event journal: the write side of the store.

Why a journal: a DuckDB file can be open read-write by one process at a time,
and opening it costs tens of milliseconds. Many processes record runs at once
(kernels, scripts, the scheduler), so none may hold the database while user
code runs. Each process instead appends its events to its own file under
``<home>/journal/``; :mod:`kernelflow.store.compact` later folds them into
DuckDB. An ``os.write`` lands in the OS page cache, so an event survives a
``kill -9`` of the process that wrote it.

File name: ``<host>--<pid>--<start_ticks>--<boot>.jsonl`` (``start_ticks`` is
the process start time from ``/proc/<pid>/stat`` and ``boot`` the start of this
boot's id, so a reused pid, even after a reboot, is told apart).

Rotation: a process open for weeks must not grow one file for ever. Once its
journal passes ``KERNELFLOW_JOURNAL_ROTATE_MB`` (default 64), the writer goes
on in a new part, ``<host>--<pid>--<start_ticks>--<boot>--<part>.jsonl``
(part 1, 2, ...), which starts with the same ``process`` line (with
``"part"``). The writer never appends to a part it has left, so a fold
deletes a left part once folded, while the process lives
(:mod:`kernelflow.store.journals`).

The first journal a process opens also starts background compaction (a
daemon thread that folds new events every few seconds, and once more at exit),
so runs reach the database file without anyone asking. The compactor sits
above this module: it asks to be called when a journal opens
(:func:`call_when_opened`, done by :mod:`kernelflow.store.compactor`, which
the ``kernelflow.store`` package imports), so the writer imports nothing of it.

Format: one JSON object per line, the first describing the process, every
other naming its kind in an ``ev`` field. The kinds, their fields and a typed
constructor for each are in :mod:`kernelflow.store.events`, the one home of
the schema.

A line is complete once it ends with ``\\n``; a reader must ignore a final
partial line (the writer may have been killed mid-write).

When the disk is full, a quota or the file size limit (``ulimit -f``) is
reached, a write may stop part-way through a line. The caller gets
:class:`~kernelflow.errors.StoreFullError` (one line, saying what to free),
not a bare ``OSError``, and the next write starts with a newline, so the torn
part becomes one unreadable line that compaction skips and no later event is
glued to it. The torn part is not cut off: a journal only ever grows (a
compaction may already have read the complete lines before it).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kernelflow import settings
from kernelflow.errors import (
    StoreError,
    StoreFullError,
    StoreNotWritableError,
)
from kernelflow.settings import home_token, open_private, paths
from kernelflow.store.events import process_started

__all__ = [
    "Journal",
    "ProcessIdentity",
    "call_when_opened",
    "current_journal",
    "encode_event",
    "forget",
    "process_identity",
    "record",
    "record_quietly",
    "rotate_bytes",
]

logger = logging.getLogger("kernelflow.store")

#: Called, in order, each time this process opens a journal file (its first write,
#: and each new part): :mod:`kernelflow.store.compactor` starts background
#: compaction this way.
_when_opened: list[Callable[[], object]] = []


def call_when_opened(callback: Callable[[], object]) -> None:
    """Call ``callback()`` each time this process opens a journal file (once per callback).

    The layer above the writer (background compaction) hooks in here, so the
    writer never imports it.
    """
    if callback not in _when_opened:
        _when_opened.append(callback)


class ProcessIdentity:
    """Who wrote a journal: enough to tell later whether that process is alive."""

    __slots__ = ("boot_id", "host", "pid", "start_ticks")

    def __init__(self, host: str, pid: int, start_ticks: int, boot_id: str) -> None:
        self.host = host
        self.pid = pid
        self.start_ticks = start_ticks
        self.boot_id = boot_id

    @property
    def file_name(self) -> str:
        """The journal file name of this process (its first part)."""
        return self.part_name(0)

    def part_name(self, part: int) -> str:
        """The file name of this process's journal part ``part`` (0: the first)."""
        safe_host = re.sub(r"[^A-Za-z0-9_.-]", "_", self.host)
        stem = f"{safe_host}--{self.pid}--{self.start_ticks}--{self.boot_id[:8]}"
        return f"{stem}.jsonl" if part == 0 else f"{stem}--{part}.jsonl"


def rotate_bytes() -> int:
    """Size after which a journal goes on in a new part (``KERNELFLOW_JOURNAL_ROTATE_MB``).

    Raises
    ------
    ConfigurationError
        One line naming the variable and what to write.
    """
    megabytes = settings.current().journal_rotate_mb
    return max(1, int(megabytes * (1 << 20)))


def read_start_ticks(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; fields
    # after the last ')' are plain: state is field 3, starttime field 22.
    rest = stat[stat.rindex(b")") + 2 :].split()
    if rest[0] in (b"Z", b"X"):
        return None  # a zombie has exited; only its parent has not reaped it yet
    return int(rest[19])


def read_boot_id() -> str:
    """This boot's id, so a journal from before a reboot is known to be dead."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_identity() -> ProcessIdentity:
    """The identity of the calling process."""
    pid = os.getpid()
    return ProcessIdentity(socket.gethostname(), pid, read_start_ticks(pid) or 0, read_boot_id())


def process_is_alive(host: str, pid: int, start_ticks: int, boot_id: str) -> bool | None:
    """True/False for a process on this host; None when it runs elsewhere (unknowable here)."""
    if host != socket.gethostname():
        return None
    if boot_id and boot_id != read_boot_id():
        return False
    ticks = read_start_ticks(pid)
    return ticks is not None and (not start_ticks or ticks == start_ticks)


class Journal:
    """An append-only event file owned by one process."""

    def __init__(self, directory: Path) -> None:
        self.identity = process_identity()
        #: The part written now (0, then 1, 2... after each rotation).
        self.part = 0
        self.path = directory / self.identity.file_name
        self._rotate_at = rotate_bytes()
        self._size = 0
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._directory = directory
        # True after a write stopped part-way through a line: the next write ends that line.
        self._torn = False
        # A failure of record_quietly that nobody has been told of yet.
        self._unsaid: StoreError | None = None
        self.events_written = 0

    def _open(self) -> int:
        paths().ensure(self._directory)
        # 0600: a journal holds parameters, logs and argv, which are nobody else's.
        fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)
        ident = self.identity
        header = process_started(
            host=ident.host,
            pid=ident.pid,
            start_ticks=ident.start_ticks,
            boot_id=ident.boot_id,
            argv=sys.argv[:8],
            t=time.time(),
            part=self.part,
        )
        try:
            self._size = os.fstat(fd).st_size
            if self._size == 0:
                line = _encode(header)
                self._append(fd, line)
                self._size = len(line)
        except OSError:
            os.close(fd)  # the next write opens it again (and writes the header then)
            raise
        self._fd = fd
        for callback in _when_opened:
            callback()
        return fd

    def write(self, event: Mapping[str, Any]) -> None:
        """Append one event; it is in the OS page cache when this returns.

        Raises
        ------
        StoreFullError
            The disk, a quota or the file size limit is full; the event is not
            recorded, and the journal holds every earlier event.
        StoreNotWritableError
            The journal cannot be created or written.
        """
        self.write_encoded(_encode(event), 1)

    def write_many(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Append several events with one system call (raises as :meth:`write`).

        After an error, the complete lines written before it may be imported,
        the others are not; the caller is told the batch failed.
        """
        if events:
            self.write_encoded(b"".join(_encode(e) for e in events), len(events))

    def write_encoded(self, data: bytes, count: int) -> None:
        """Append ``count`` events already encoded as complete lines (raises as :meth:`write`).

        For the engine's state events, which it encodes itself on its hot path.
        """
        with self._lock:
            try:
                fd = self._fd if self._fd is not None else self._open()
                if self._torn:
                    data = b"\n" + data
                self._append(fd, data)
            except StoreError:
                self._unsaid = None  # said now, by this error
                raise
            except OSError as exc:
                self._unsaid = None
                raise self._error(exc) from None
            self._torn = False
            self.events_written += count
            self._size += len(data)
            if self._size >= self._rotate_at:
                self._rotate()
            unsaid, self._unsaid = self._unsaid, None
        if unsaid is not None:
            logger.error("kernelflow: %s", unsaid)

    def _append(self, fd: int, data: bytes) -> None:
        """Append all of ``data``; after a failure part-way, mark the last line torn.

        ``os.write`` may write only part (it stops at the file size limit, and
        the next call fails with EFBIG; a full disk likewise). That part stays,
        rather than being cut off with ``ftruncate``: a compaction in another
        process may have read the complete lines in it already and stored the
        offset after them, and a file shorter than its stored offset reads as a
        new file (imported again from the start).
        """
        written = 0
        try:
            while written < len(data):
                n = os.write(fd, data[written:] if written else data)
                if n <= 0:  # never for a regular file; do not loop forever if it happens
                    raise OSError(errno.EIO, os.strerror(errno.EIO))
                written += n
        except OSError:
            if written:
                self._torn = not data[:written].endswith(b"\n")
            raise

    def _error(self, exc: OSError) -> StoreError:
        """The one-line error for a failed append (``errno`` kept for code that checks it)."""
        reason = exc.strerror or str(exc)
        if exc.errno in StoreFullError.ERRNOS:
            error: StoreError = StoreFullError(
                f"Cannot append to the journal {self.path} ({reason}), so the latest events "
                "are not recorded (those before are kept): free disk space, or raise the disk "
                "quota or the file size limit (ulimit -f), then run again."
            )
        else:
            error = StoreNotWritableError(
                f"Cannot append to the journal {self.path} ({reason}); fix the permissions of "
                f"{self._directory} or set KERNELFLOW_HOME to a directory you can write "
                "(events recorded before are kept)."
            )
        error.errno = exc.errno
        return error

    def _rotate(self) -> None:
        """Leave this part (complete: it ends with a newline); the next write opens the next."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.part += 1
        self.path = self._directory / self.identity.part_name(self.part)
        self._size = 0

    def close(self) -> None:
        """Close the file; a later write reopens it."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


#: "No room": a full disk, a full quota, the file size limit. Freeing space is the fix.


_encoder = json.JSONEncoder(separators=(",", ":"), default=repr, ensure_ascii=False)


def _encode(event: Mapping[str, Any]) -> bytes:
    return (_encoder.encode(event) + "\n").encode("utf-8", "surrogatepass")


#: An event as the journal line :meth:`Journal.write` appends (for :meth:`Journal.write_encoded`).
encode_event = _encode


_journals: dict[Path, Journal] = {}
_journals_lock = threading.Lock()

#: (home token, journal) of the last lookup: every run's every state looks its journal
#: up, and the store it points at rarely changes (:func:`kernelflow.settings.home_token`).
_last: tuple[object, Journal] | None = None


def current_journal() -> Journal:
    """The journal of this process for the active store home."""
    last = _last
    if last is not None:
        token = home_token()
        if token is last[0] or token == last[0]:
            return last[1]
    return _look_up()


def _look_up() -> Journal:
    """:func:`current_journal` the long way, remembering the answer."""
    global _last
    token = home_token()
    directory = paths().journal_dir
    journal = _journals.get(directory)
    if journal is None or journal.identity.pid != os.getpid():
        with _journals_lock:
            journal = _journals.get(directory)
            if journal is None or journal.identity.pid != os.getpid():
                journal = _journals[directory] = Journal(directory)
    _last = (token, journal)
    return journal


def _forget_last() -> None:
    """Drop the remembered lookup (a forked child has its own journal; a store went away)."""
    global _last
    _last = None


os.register_at_fork(after_in_child=_forget_last)


def record(event: Mapping[str, Any]) -> None:
    """Append ``event`` to this process's journal for the active store."""
    current_journal().write(event)


def record_quietly(event: Mapping[str, Any]) -> None:
    """Append ``event`` like :func:`record`, but never raise a store error: for log lines.

    A log line must neither break a run nor be lost in silence. Its failure
    is said once, with this process's next append: that append fails too
    (usually the run's next state, which raises the same one-line error), or
    it works, and the failure is logged as one error line.
    """
    journal = current_journal()
    try:
        journal.write(event)
    except StoreError as exc:
        with journal._lock:
            journal._unsaid = exc


def forget(directory: Path) -> None:
    """Close and drop this process's journal for ``directory`` (its store is going away)."""
    with _journals_lock:
        journal = _journals.pop(directory, None)
        _forget_last()
    if journal is not None:
        journal.close()
