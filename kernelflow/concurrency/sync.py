"""Concurrency and rate limits for sync code, as ``prefect.concurrency.sync`` has them.

Example
-------
Create the limits once (``kernelflow concurrency-limit create external-api 5``,
``kernelflow gcl create api-rps --limit 10 --slot-decay-per-second 10``), then::

    from kernelflow.concurrency.sync import concurrency, rate_limit

    with concurrency("external-api", occupy=1):   # at most 5 at once, machine-wide
        rate_limit("api-rps")                      # at most 10 a second
        call_the_api()

Limits are shared by every process using the same store (``KERNELFLOW_HOME``);
see :mod:`kernelflow.concurrency` for how.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from kernelflow.concurrency._acquire import Holding, plan, thread_owner
from kernelflow.errors import AcquireConcurrencySlotTimeoutError, ConcurrencySlotAcquisitionError

__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencySlotAcquisitionError",
    "concurrency",
    "rate_limit",
]


def acquire(
    names: str | Iterable[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    *,
    rate_limit: bool = False,
    strict: bool = False,
) -> Holding:
    """Wait for and take ``occupy`` slots of every limit in ``names``; see :func:`concurrency`."""
    request = plan(names, occupy, timeout_seconds, max_retries, rate_limit, thread_owner(), strict)
    while True:
        outcome = request.attempt()
        if isinstance(outcome, Holding):
            return outcome
        time.sleep(request.next_pause(outcome))


@contextmanager
def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    lease_duration: float = 300,
    strict: bool = False,
) -> Iterator[None]:
    """Hold ``occupy`` slots of each named limit for the duration of the ``with`` block.

    Blocks until the slots are free. Slots are released when the block exits,
    and by the operating system if the process dies first.

    Parameters
    ----------
    names:
        A limit name, or a list of names (all are acquired together).
    occupy:
        Slots to take from each limit.
    timeout_seconds:
        Give up waiting after this long with
        :class:`~kernelflow.errors.AcquireConcurrencySlotTimeoutError`
        (a ``TimeoutError``). ``None`` waits as long as it takes.
    max_retries:
        Give up after this many unsuccessful attempts.
    lease_duration:
        Accepted for Prefect compatibility: kernelflow needs no lease (a dead
        holder's slots are freed at once).
    strict:
        As in Prefect, a name with no limit is skipped, and when none of the
        names has one the block runs without a slot after a warning
        (``Concurrency limits ['database'] do not exist - skipping
        acquisition.``). ``strict=True`` raises
        :class:`~kernelflow.errors.LimitNotFoundError` for any missing name.

    Raises
    ------
    LimitNotFoundError
        With ``strict=True``: no limit has one of the names; the message says how
        to create it.
    ConfigurationError
        ``occupy`` exceeds a limit (it could never be satisfied), or an argument is invalid.

    Example
    -------
    >>> with concurrency("database", occupy=1):  # doctest: +SKIP
    ...     write_rows()
    """
    if not names:  # as in Prefect: nothing to acquire
        yield
        return
    holding = acquire(names, occupy, timeout_seconds, max_retries, strict=strict)
    try:
        yield
    finally:
        holding.release()


def rate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Wait until ``occupy`` slots of each named rate limit are free, and occupy them.

    The slots are not released by the caller: they decay at the limit's
    ``slot_decay_per_second``. A limit of 10 decaying 10 per second allows a
    burst of 10, then 10 a second.

    A name with no limit is skipped with a warning, as in :func:`concurrency`.

    Raises
    ------
    LimitNotFoundError
        With ``strict=True``: no limit has one of the names.
    ConfigurationError
        A limit has no slot decay (use :func:`concurrency` for it), or
        ``occupy`` exceeds the limit.
    AcquireConcurrencySlotTimeoutError
        ``timeout_seconds`` passed first.

    Example
    -------
    >>> for url in urls:  # doctest: +SKIP
    ...     rate_limit("api-rps")
    ...     fetch(url)
    """
    if not names:
        return
    acquire(names, occupy, timeout_seconds, rate_limit=True, strict=strict).keep()
