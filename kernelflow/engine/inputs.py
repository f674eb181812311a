"""A run's inputs: upstream futures and states replaced by their values, and their lineage.

Arguments may hold task run futures and states, anywhere in lists, tuples,
sets, dicts and dataclasses; :func:`resolve_inputs` waits for each and puts
its value in its place, as Prefect does. ``allow_failure(x)`` lets a failed
upstream through (as None), ``quote(x)`` passes ``x`` as it is, and
``opaque(x)`` resolves only its top level.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kernelflow.errors import UpstreamTaskError
from kernelflow.futures import TaskRunFuture
from kernelflow.states import State, StoredResult
from kernelflow.utilities.annotations import allow_failure, opaque, quote

__all__ = ["resolve_inputs", "upstream_ids"]


#: Types whose values never hold a future or a state (checked first: most arguments are).
_PLAIN = frozenset({int, float, str, bool, bytes, type(None)})


def _needs_resolving(value: Any) -> bool:
    if type(value) in _PLAIN:
        return False
    if isinstance(value, (TaskRunFuture, State, allow_failure, quote, opaque)):
        return True
    if isinstance(value, (list, tuple, set)):
        return any(_needs_resolving(v) for v in value)
    if isinstance(value, dict):
        return any(_needs_resolving(v) for v in value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_needs_resolving(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


def _completed_value(state: State) -> Any:
    """A completed state's value, read back from the store if it is kept only there."""
    data = state.data
    return data.load() if isinstance(data, StoredResult) else data


def _resolve(value: Any, upstream: list[str], allowed: bool = False) -> Any:
    if isinstance(value, allow_failure):
        return _resolve(value.value, upstream, True)
    if isinstance(value, quote):
        return value.value  # as given: nothing resolved, nothing walked
    if isinstance(value, opaque):
        inner = value.value  # the top level resolved, its contents never walked
        if isinstance(inner, (TaskRunFuture, State)):
            return _resolve(inner, upstream, allowed)
        return inner
    if isinstance(value, TaskRunFuture):
        upstream.append(value.task_run_id)
        state = value.final_state()
        if state.is_completed():
            return _completed_value(state)
        if allowed:
            return None
        raise UpstreamTaskError(
            f"Upstream task run '{value.task_run.name}' did not reach a 'COMPLETED' state."
        )
    if isinstance(value, State):
        if value.is_completed():
            return _completed_value(value)
        if allowed:
            return None
        raise UpstreamTaskError(f"An upstream state is {value.name}, not Completed.")
    if isinstance(value, (list, tuple, set)):
        return type(value)(_resolve(v, upstream, allowed) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, upstream, allowed) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Rebuilt with the resolved fields, as Prefect does (so __init__ runs again).
        changes = {
            f.name: _resolve(getattr(value, f.name), upstream, allowed)
            for f in dataclasses.fields(value)
            if f.init and _needs_resolving(getattr(value, f.name))
        }
        return dataclasses.replace(value, **changes) if changes else value
    return value


def resolve_inputs(parameters: dict[str, Any], wait_for: Any) -> tuple[dict[str, Any], list[str]]:
    """Wait for upstream futures and replace them by their values.

    Raises
    ------
    UpstreamTaskError
        When an upstream did not complete and is not wrapped in ``allow_failure``.
    """
    upstream: list[str] = []
    if wait_for:
        for item in wait_for if isinstance(wait_for, (list, tuple, set)) else [wait_for]:
            _resolve(item, upstream)
    for value in parameters.values():  # a loop, not any(): this runs for every task run
        if _needs_resolving(value):
            return {k: _resolve(v, upstream) for k, v in parameters.items()}, upstream
    return parameters, upstream


def upstream_ids(parameters: dict[str, Any]) -> dict[str, dict]:
    """Input records for lineage: which task run (if any) each argument came from."""
    inputs: dict[str, dict] = {}
    for name, value in parameters.items():
        if type(value) in _PLAIN:  # most arguments: no upstream, and no wrapper to look in
            inputs[name] = {"hash": None, "upstream": None}
            continue
        while isinstance(value, (allow_failure, opaque)):
            value = value.value
        inputs[name] = {
            "hash": None,
            "upstream": value.task_run_id if isinstance(value, TaskRunFuture) else None,
        }
    return inputs
