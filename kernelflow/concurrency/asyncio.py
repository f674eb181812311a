"""Concurrency and rate limits for async code, as ``prefect.concurrency.asyncio`` has them.

Example
-------
::

    from kernelflow.concurrency.asyncio import concurrency, rate_limit

    async with concurrency("external-api", occupy=1):
        await rate_limit("api-rps")
        await call_the_api()

Waiting never blocks the event loop: between attempts the caller awaits
``asyncio.sleep``. The semantics are those of :mod:`kernelflow.concurrency.sync`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from kernelflow.concurrency._acquire import Holding, plan
from kernelflow.errors import AcquireConcurrencySlotTimeoutError, ConcurrencySlotAcquisitionError

__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencySlotAcquisitionError",
    "concurrency",
    "rate_limit",
]


def _owner() -> object:
    return ("task", id(asyncio.current_task()))


async def acquire(
    names: str | Iterable[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    *,
    rate_limit: bool = False,
    strict: bool = False,
) -> Holding:
    """Wait for and take ``occupy`` slots of every limit in ``names``; see :func:`concurrency`."""
    request = plan(names, occupy, timeout_seconds, max_retries, rate_limit, _owner(), strict)
    while True:
        outcome = request.attempt()
        if isinstance(outcome, Holding):
            return outcome
        await asyncio.sleep(request.next_pause(outcome))


@asynccontextmanager
async def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    lease_duration: float = 300,
    strict: bool = False,
) -> AsyncIterator[None]:
    """Hold ``occupy`` slots of each named limit for the ``async with`` block.

    See :func:`kernelflow.concurrency.sync.concurrency` for the parameters and errors.

    Example
    -------
    >>> async with concurrency("database"):  # doctest: +SKIP
    ...     await write_rows()
    """
    if not names:  # as in Prefect: nothing to acquire
        yield
        return
    holding = await acquire(names, occupy, timeout_seconds, max_retries, strict=strict)
    try:
        yield
    finally:
        holding.release()


async def rate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Wait until ``occupy`` slots of each named rate limit are free, and occupy them.

    See :func:`kernelflow.concurrency.sync.rate_limit`.

    Example
    -------
    >>> await rate_limit("api-rps")  # doctest: +SKIP
    """
    if not names:
        return
    (await acquire(names, occupy, timeout_seconds, rate_limit=True, strict=strict)).keep()
