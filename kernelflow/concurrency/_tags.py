"""Task concurrency by tag: the engine's hook around each try of a tagged task.

``kernelflow concurrency-limit create TAG N`` makes at most N task runs
tagged ``TAG`` run at once, across every process of the store. Before each
try of a task run, the engine takes one slot of every active limit named by
one of the task's tags (all together, see :mod:`._acquire`), and gives them
back when the try ends, before any retry delay. The run stays in its previous
state while it waits. Tags without a limit cost one ``stat`` each; untagged
tasks never get here.
"""

from __future__ import annotations

from collections.abc import Iterable

from kernelflow.concurrency._acquire import Holding
from kernelflow.concurrency._limits import find_definition, limits_root

__all__ = ["acquire_tag_slots", "acquire_tag_slots_async"]


def _limited(tags: Iterable[str]) -> list[str]:
    root = limits_root()
    names = []
    for tag in tags:
        definition = find_definition(tag, root)
        if definition is not None and definition.active:
            names.append(tag)
    return names


def acquire_tag_slots(tags: Iterable[str]) -> Holding | None:
    """Wait for one slot of each tag's limit; None when no tag has an active limit."""
    names = _limited(tags)
    if not names:
        return None
    from kernelflow.concurrency.sync import acquire

    return acquire(names, 1)


async def acquire_tag_slots_async(tags: Iterable[str]) -> Holding | None:
    """:func:`acquire_tag_slots` for async tasks: waiting does not block the event loop."""
    names = _limited(tags)
    if not names:
        return None
    from kernelflow.concurrency.asyncio import acquire

    return await acquire(names, 1)
