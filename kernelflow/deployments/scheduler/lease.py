"""The scheduler's lease: which scheduler of a store is the active one, and who holds it.

The active scheduler holds an ``fcntl.flock`` on ``<home>/scheduler.lock``
and writes one JSON line beside it, ``<home>/scheduler.holder``
(:func:`lease_holder` reads both). While it holds the lease it also reads the
wake FIFO ``<home>/deployments/wake.fifo``, which it opens on taking over and
closes with the lease.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from kernelflow import settings

__all__ = ["HOLDER_FILE", "LEAD_S", "RESCAN_S", "lease_holder"]

logger = logging.getLogger("kernelflow.deployments.scheduler")

# The scheduler's timing lives here, in the lowest of its modules, so every one may use it.
#: Seconds between safety re-reads of the store while nothing wakes the scheduler.
RESCAN_S = 60.0
#: Seconds before its scheduled time a fire is claimed and prepared, so that its
#: notebook process starts on time (the run waits for the instant itself). The claim
#: may wait for the store's lock while another process compacts: this absorbs it.
LEAD_S = 2.0
#: The file beside the lease saying who holds it (see :func:`lease_holder`).
HOLDER_FILE = "scheduler.holder"


class _Lease:
    """The lease part of :class:`~kernelflow.deployments.scheduler.Scheduler`."""

    home: settings.StorePaths
    label: str
    active: threading.Event
    _lease_fd: int | None
    _fifo_fd: int | None

    @property
    def lease_path(self) -> Any:
        """``<home>/scheduler.lock``: the file whose flock makes a scheduler the active one."""
        return self.home.home / "scheduler.lock"

    def _take_lease(self) -> bool:
        self.home.ensure()
        fd = settings.open_private(self.lease_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lease_fd = fd
        holder = {
            "pid": os.getpid(),
            "host": os.uname().nodename,
            "process": self.label,
            "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            settings.write_private(self.home.home / HOLDER_FILE, json.dumps(holder).encode())
        except OSError as exc:  # only ``GET scheduler`` misses it; scheduling goes on
            logger.warning("kernelflow: cannot record the scheduler's holder: %s", exc)
        return True

    def _release(self) -> None:
        from kernelflow.store.compact import compact

        with contextlib.suppress(Exception):
            compact()  # our events in the store before another scheduler reads it
        if self._fifo_fd is not None:
            os.close(self._fifo_fd)
            self._fifo_fd = None
        if self._lease_fd is not None:
            (self.home.home / HOLDER_FILE).unlink(missing_ok=True)
            os.ftruncate(self._lease_fd, 0)
            os.close(self._lease_fd)  # releases the flock
            self._lease_fd = None
        self.active.clear()

    def _open_fifo(self) -> None:
        from kernelflow.deployments.wake import WAKE_FIFO, deployments_dir

        if self._fifo_fd is not None:
            return  # taking over again after a store error

        folder = deployments_dir()
        self.home.ensure(folder)
        path = folder / WAKE_FIFO
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            pass
        except OSError as exc:  # a file system without FIFOs: the periodic re-read remains
            logger.warning(
                "kernelflow: cannot create %s (%s); changes are seen within %d s",
                path,
                exc.strerror,
                RESCAN_S,
            )
            return
        # Read-write: the FIFO then always has a writer (us), so select never sees EOF.
        self._fifo_fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)


def _default_label() -> str:
    """``kernelflow scheduler``, ``jupyter-lab``...: the program and its first argument."""
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:2]]
    return " ".join(a for a in argv if not a.startswith("-"))[:80] or "python"


def lease_holder(home: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """Who holds the scheduler lease of the store at ``home`` (default: the active one).

    Returns
    -------
    dict or None
        ``pid``, ``host``, ``process`` (a label such as ``jupyter server``) and
        ``since`` (ISO 8601), or None when no scheduler holds the lease (none
        runs, so deployments do not fire).
    """
    base = settings.home() if home is None else Path(home)
    try:
        fd = os.open(base / "scheduler.lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # no scheduler ever ran on this store
    try:
        try:
            # A shared lock we can take means nobody holds the exclusive one.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            first = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
    finally:
        os.close(fd)
    pid = int(first) if first.isdigit() else None
    holder: dict[str, Any] = {"pid": pid, "host": None, "process": None, "since": None}
    try:
        found = json.loads((base / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        found = None  # an older kernelflow, or the holder is writing it right now
    # Only the current holder's line: a previous holder's may not be removed yet.
    if isinstance(found, dict) and (pid is None or found.get("pid") == pid):
        holder.update({k: found[k] for k in holder if k in found})
    return holder
