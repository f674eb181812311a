"""Slots of a rate limit: a shared counter that decays, as Prefect defines it.

A limit with ``slot_decay_per_second = r`` keeps one number, the occupied
slots, in ``<limit dir>/rate`` next to the time it was last written. Occupied
slots drain continuously at ``r`` per second, computed on read, so no one has
to release them: ``rate_limit(name)`` occupies and walks away. An acquisition
of ``k`` slots succeeds when ``occupied + k <= limit``; otherwise the caller
knows exactly how long to wait, ``(occupied + k - limit) / r`` seconds.

Every read-modify-write happens under an exclusive ``flock`` on the file,
held for microseconds; a process killed while holding it loses the lock with
its life, and its slots drain like anyone's.
"""

from __future__ import annotations

import fcntl
import os
import struct
import time
from collections.abc import Callable

from kernelflow.settings import open_private

__all__ = ["give_back", "occupied", "try_take"]

_FORMAT = struct.Struct("<dd")  # occupied slots, time of that value


def _update(
    path: str, limit: int, decay: float, change: Callable[[float], tuple[float, float]]
) -> float:
    fd = open_private(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.pread(fd, _FORMAT.size, 0)
        now = time.time()
        if len(raw) == _FORMAT.size:
            value, then = _FORMAT.unpack(raw)
            # A clock stepped backwards must not make slots grow.
            value = max(0.0, value - decay * max(0.0, now - then))
        else:
            value = 0.0
        new_value, answer = change(value)
        if new_value != value or len(raw) != _FORMAT.size:
            os.pwrite(fd, _FORMAT.pack(new_value, now), 0)
        return answer
    finally:
        os.close(fd)


def try_take(directory: str, limit: int, decay: float, occupy: int) -> float:
    """Occupy ``occupy`` slots if they are free now.

    Returns
    -------
    float
        0.0 when the slots were taken, else the seconds until they will be free.
    """

    def change(value: float) -> tuple[float, float]:
        # A tiny tolerance, so float drift never turns "exactly free" into a wait.
        if value + occupy <= limit + 1e-9:
            return value + occupy, 0.0
        return value, max((value + occupy - limit) / decay, 1e-4)

    return _update(f"{directory}/rate", limit, decay, change)


def give_back(directory: str, limit: int, decay: float, occupy: int, held_for: float) -> None:
    """Release slots taken ``held_for`` seconds ago, less what has decayed since."""
    remaining = max(0.0, occupy - decay * held_for)
    if remaining <= 0:
        return
    _update(f"{directory}/rate", limit, decay, lambda value: (max(0.0, value - remaining), 0.0))


def occupied(directory: str, limit: int, decay: float) -> float:
    """The slots occupied now (fractional while they decay)."""
    path = f"{directory}/rate"
    if not os.path.exists(path):
        return 0.0
    return _update(path, limit, decay, lambda value: (value, value))
