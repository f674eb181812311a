"""The parsed flags of a ``%%task`` cell (parsing is in :mod:`kernelflow.kernel.magics`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CellOptions"]


@dataclass(frozen=True)
class CellOptions:
    """How to run one ``%%task`` cell.

    Attributes
    ----------
    name
        The task name (None: derived from the cell).
    retries, retry_delay
        Extra tries after a failure, and the seconds between them.
    timeout
        Seconds a try may take before it ends TimedOut (None: no limit).
    cache, expire, refresh
        Use the cache; forget a cached result after ``expire`` seconds; run
        anyway and replace the cached result.
    tags
        Tags of the task run.
    exclude
        Inputs left out of the cache key.
    reads
        Files the cell reads, keyed on their content (besides those found in its code).
    concurrency
        A global concurrency limit to hold a slot of while running.
    verbose
        Print inputs and outputs, and the engine's log lines.
    """

    name: str | None = None
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    cache: bool = True
    expire: float | None = None
    refresh: bool = False
    tags: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    concurrency: str | None = None
    verbose: bool = False
