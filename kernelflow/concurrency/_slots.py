"""Slots of a concurrency limit as lock files: ``flock`` does the counting.

A limit of ``N`` has ``N`` slot files, ``<limit dir>/slot-0`` … ``slot-<N-1>``.
Holding a slot is holding an exclusive ``flock`` on its file, taken without
blocking (``LOCK_EX | LOCK_NB``). Why flock:

- it is shared by every process on the machine, with no server and no database;
- the kernel drops it the moment the holder's descriptor is closed, including
  when the process dies (even by SIGKILL): a dead holder frees its slot with no
  one's help and no lease to expire;
- taking and dropping one costs a few microseconds.

A flock belongs to an open file description, so every acquisition opens the
file anew (two threads of one process are two holders) and descriptors are
opened ``O_CLOEXEC``; workers are spawned, not forked, so no child inherits a
held slot.

While holding a slot the holder writes who it is into the file (pid, host,
since, thread, task run) so ``kernelflow concurrency-limit inspect`` can show
it; a file's text only counts while its lock is held.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import socket
import threading
import time
from dataclasses import dataclass

from kernelflow import context
from kernelflow.settings import open_private

__all__ = ["SlotHolder", "held_slots", "release_slots", "try_acquire_slots"]

_HOST = socket.gethostname()


def _holder_info() -> bytes:
    info: dict[str, object] = {
        "pid": os.getpid(),
        "host": _HOST,
        "since": time.time(),
        "thread": threading.current_thread().name,
    }
    task = context.task_context.get()
    if task is not None:
        info["task_run"] = task.task_run.name
        info["task_run_id"] = task.task_run.id
    return json.dumps(info).encode()


def try_acquire_slots(directory: str, limit: int, occupy: int) -> list[int] | None:
    """Take ``occupy`` free slots of ``limit`` at once, or none; never waits.

    Returns
    -------
    list[int] | None
        The descriptors holding the slots (give them to :func:`release_slots`),
        or None when fewer than ``occupy`` slots are free now.

    Raises
    ------
    FileNotFoundError
        The limit's directory is gone (the limit was deleted meanwhile).
    """
    held: list[int] = []
    info: bytes | None = None
    # Start at a random slot so concurrent acquirers rarely collide on one file.
    start = random.randrange(limit) if limit > 1 else 0
    for step in range(limit):
        path = f"{directory}/slot-{(start + step) % limit}"
        fd = open_private(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                continue
            release_slots(held)
            raise
        if info is None:
            info = _holder_info()
        os.pwrite(fd, info, 0)
        os.ftruncate(fd, len(info))  # drop the tail of a longer, stale text
        held.append(fd)
        if len(held) == occupy:
            return held
    release_slots(held)
    return None


def release_slots(fds: list[int]) -> None:
    """Free the slots held by ``fds``.

    The holder text stays in the file: it only counts while the lock is held,
    and leaving it saves a system call on the hot path.
    """
    for fd in fds:
        os.close(fd)  # closing the last descriptor drops the flock
    fds.clear()


@dataclass(frozen=True)
class SlotHolder:
    """Who holds one slot now.

    Attributes
    ----------
    slot:
        The slot's index.
    pid, host, since, thread, task_run:
        As written by the holder (``task_run`` is the task run's name, if any).
    """

    slot: int
    pid: int | None
    host: str | None
    since: float | None
    thread: str | None
    task_run: str | None


def held_slots(directory: str) -> list[SlotHolder]:
    """The slots of a limit that are held now, with their holders.

    A slot counts as held when its flock cannot be taken; testing takes a
    shared lock for a few microseconds, which at worst makes one acquirer
    retry. Every slot file is looked at, so holders of slots above a limit
    that was lowered meanwhile are shown too.
    """
    try:
        indexes = sorted(
            int(entry.name[5:])
            for entry in os.scandir(directory)
            if entry.name.startswith("slot-") and entry.name[5:].isdigit()
        )
    except FileNotFoundError:
        return []
    holders = []
    for index in indexes:
        path = f"{directory}/slot-{index}"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 4096, 0)
            else:
                continue  # free (our shared lock goes with the descriptor)
        finally:
            os.close(fd)
        try:
            info = json.loads(text) if text else {}
        except ValueError:
            info = {}
        holders.append(
            SlotHolder(
                index,
                info.get("pid"),
                info.get("host"),
                info.get("since"),
                info.get("thread"),
                info.get("task_run"),
            )
        )
    return holders
