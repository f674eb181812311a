"""Running async code from sync code, and telling the two apart.

Foundations: imports nothing from kernelflow, so every layer may use it.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["is_async_callable", "run_coro_sync"]


def run_coro_sync(coro: Coroutine) -> Any:
    """Run a coroutine to completion from sync code, even under a running loop.

    In a notebook the main thread already runs an event loop, so the coroutine
    gets its own loop in a helper thread instead of touching the kernel's.
    """
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    outcome: dict[str, Any] = {}
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = ctx.run(asyncio.run, coro)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="kernelflow-async", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def is_async_callable(fn: Callable) -> bool:
    """True for ``async def`` functions (and objects with an async ``__call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )
