"""Shared by the runtime modules: environment overrides, the current runs, deployment info."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kernelflow import context
from kernelflow.errors import ConfigurationError
from kernelflow.settings import DEPLOYMENT_RUN_INFO, internal

if TYPE_CHECKING:
    from kernelflow.runs import FlowRun


def _utc(raw: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(raw.strip())
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


_CASTS: dict[type, Callable[[str], Any]] = {
    bool: lambda raw: raw.strip().lower() == "true",
    int: int,
    float: float,
    str: str,
    type(None): str,  # an attribute that is None here is a string when set
}


def attribute(module: str, name: str, fields: dict[str, Callable[[], Any]]) -> Any:
    """The value of ``kernelflow.runtime.<module>.<name>``, or its environment override."""
    if name.startswith("_"):
        raise AttributeError(f"module 'kernelflow.runtime.{module}' has no attribute {name!r}")
    key = f"KERNELFLOW__RUNTIME__{module.upper()}__{name.upper()}"
    getter = fields.get(name)
    raw = internal(key)
    if getter is None:
        if raw is not None:
            return raw
        raise AttributeError(f"module 'kernelflow.runtime.{module}' has no attribute {name!r}")
    value = getter()
    if raw is None:
        return value
    cast = _utc if isinstance(value, dt.datetime) else _CASTS.get(type(value))
    if cast is None:
        raise ConfigurationError(
            f"{key} cannot set runtime.{module}.{name} (a {type(value).__name__}); "
            "set it with pytest's monkeypatch instead."
        )
    try:
        return cast(raw)
    except ValueError:
        raise ConfigurationError(
            f"{key}={raw!r} is not a {type(value).__name__}, the type of runtime.{module}.{name}."
        ) from None


def flow_context() -> context.FlowRunContext | None:
    """The current flow run context (a notebook's session run included)."""
    return context.current_flow_context()


def started_flow_run(ctx: context.FlowRunContext | None) -> FlowRun | None:
    """The context's flow run, without starting a notebook session's run just to look."""
    if ctx is None:
        return None
    started = getattr(ctx, "started_run", None)  # a notebook session's context has it
    run: FlowRun | None = started() if started is not None else ctx.flow_run
    return run


def deployment_info() -> dict[str, Any]:
    """What the deployment worker told this kernel about its run ({} outside one).

    JSON in ``KERNELFLOW_DEPLOYMENT_RUN_INFO``, written by
    :func:`kernelflow.deployments.runner.runtime_info`.
    """
    return _parse_info(internal(DEPLOYMENT_RUN_INFO) or "")


@functools.lru_cache(maxsize=4)
def _parse_info(raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        info = json.loads(raw)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def utc(timestamp: float | None) -> dt.datetime:
    """An epoch timestamp as an aware UTC datetime; now when there is none."""
    if timestamp is None:
        return dt.datetime.now(dt.timezone.utc)
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
