"""Running async code from sync code, and telling the two apart.

Foundations: imports nothing from kernelflow, so every layer may use it.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["is_async_callable", "run_coro_sync"]


def run_coro_sync(coro: Awaitable[Any]) -> Any:
    """Run a coroutine (or other awaitable) to completion from sync code, even under a loop.

    In a notebook the main thread already runs an event loop, so the coroutine
    gets its own loop in a helper thread instead of touching the kernel's.
    """
    import asyncio

    main = coro if inspect.iscoroutine(coro) else _awaiting(coro)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main)
    outcome: dict[str, Any] = {}
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = ctx.run(asyncio.run, main)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="kernelflow-async", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


async def _awaiting(awaitable: Awaitable[Any]) -> Any:
    """A coroutine awaiting ``awaitable`` (asyncio.run takes only coroutines)."""
    return await awaitable


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """True for ``async def`` functions (and objects with an async ``__call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )
