"""Waking the active scheduler when deployments or queued runs change.

The active scheduler blocks in ``select`` on the FIFO
``<home>/deployments/wake.fifo`` (it creates it on taking over); any process
that changes a deployment or queues a run writes one byte to it.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from kernelflow import settings

__all__ = ["WAKE_FIFO", "deployments_dir", "signal_change"]

#: The FIFO under :func:`deployments_dir` the active scheduler reads.
WAKE_FIFO = "wake.fifo"


def deployments_dir() -> Path:
    """``<home>/deployments``: snapshots, and the files that wake a scheduler."""
    return settings.paths().home / "deployments"


def signal_change() -> None:
    """Tell a running scheduler that deployments or queued runs changed.

    The active scheduler blocks in ``select`` on the FIFO
    ``<home>/deployments/wake.fifo``; one byte written here wakes it at once.
    No scheduler (nobody reading) is fine: the next one reads the store at start.
    """
    fifo = deployments_dir() / WAKE_FIFO
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        # ENOENT/ENXIO: no scheduler has created it, or none reads it. Anything else:
        # the change is stored all the same, and a scheduler re-reads the store within
        # a minute; a wake-up must never fail a deploy.
        if exc.errno not in (errno.ENOENT, errno.ENXIO):
            logging.getLogger("kernelflow.deployments").warning(
                "kernelflow: cannot wake the scheduler through %s: %s", fifo, exc.strerror
            )
        return
    try:
        os.write(fd, b"!")
    except BlockingIOError:
        pass  # the pipe is full of wake-ups already: the scheduler will wake
    finally:
        os.close(fd)
