"""Checking and normalising the options shared by ``@task`` and ``@flow``.

Prefect accepts ``retries=-2`` silently; kernelflow refuses bad options when
the decorator runs, with a message naming the option and what it accepts.
"""

from __future__ import annotations

import copy
import datetime
import inspect
import numbers
from collections.abc import Callable, Iterable
from typing import Any

from kernelflow.errors import ConfigurationError

__all__ = [
    "CallShape",
    "check_delays",
    "check_hooks",
    "check_result_storage_key",
    "check_retries",
    "check_seconds",
    "exponential_backoff",
    "method_kind",
    "render_run_name",
]


def _where(owner: str) -> str:
    return f" on {owner}" if owner else ""


def check_flag(value: Any, option: str, owner: str) -> bool:
    """An on/off option: True or False, nothing else (``"false"`` is a string, and true)."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"{option}{_where(owner)} must be True or False, got {value!r}.")
    return value


def check_retries(value: Any, owner: str) -> int:
    """``retries`` as a whole number >= 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ConfigurationError(
            f"retries{_where(owner)} must be a whole number >= 0, got {value!r}."
        )
    return int(value)


def check_seconds(value: Any, option: str, owner: str, *, allow_zero: bool = False) -> float | None:
    """A positive number of seconds (``timedelta`` accepted), or None."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(
            f"{option}{_where(owner)} must be a number of seconds, got {value!r}."
        )
    # The shared check: also refuses NaN, infinities and absurdly long durations.
    from kernelflow._durations import check_seconds as check

    return check(value, f"{option}{_where(owner)}", allow_zero=allow_zero)


def check_delays(value: Any, retries: int, owner: str) -> Callable[[int], float]:
    """``retry_delay_seconds`` as a function: try number (1-based) -> seconds."""
    if value is None:
        return lambda _n: 0.0
    if callable(value):
        delays = value(retries)
        return check_delays(list(delays), retries, owner)
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        items = [_check_delay(v, owner) for v in value]
        if not items:
            return lambda _n: 0.0
        return lambda n: items[min(n, len(items)) - 1]
    seconds = _check_delay(value, owner)
    return lambda _n: seconds


def _check_delay(value: Any, owner: str) -> float:
    seconds = check_seconds(value, "retry_delay_seconds", owner, allow_zero=True)
    # None waits no time, as a missing retry_delay_seconds does (the engine reads a None
    # delay as "no try left", so it must not get one).
    return 0.0 if seconds is None else seconds


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Retry delays that double each time: ``backoff_factor * 2**n``.

    Example
    -------
    >>> @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=10))
    ... def flaky(): ...
    """
    check_seconds(backoff_factor, "backoff_factor", "exponential_backoff", allow_zero=True)

    def delays(retries: int) -> list[float]:
        return [backoff_factor * 2**n for n in range(retries)]

    return delays


def check_hooks(value: Any, option: str, owner: str) -> list[Callable]:
    """A hook or list of hooks as a list of callables."""
    if value is None:
        return []
    hooks = list(value) if isinstance(value, (list, tuple)) else [value]
    for hook in hooks:
        if not callable(hook):
            raise ConfigurationError(f"{option}{_where(owner)} must be callables, got {hook!r}.")
    return hooks


def method_kind(fn: Any) -> tuple[Any, str | None]:
    """``(function, kind)``: a ``classmethod`` / ``staticmethod`` object unwrapped, and which.

    ``@flow`` and ``@task`` above ``@classmethod`` or ``@staticmethod`` get the
    wrapper object; as in Prefect, they keep its function and bind like it
    (see ``Flow.__get__``).
    """
    if isinstance(fn, classmethod):
        return fn.__func__, "classmethod"
    if isinstance(fn, staticmethod):
        return fn.__func__, "staticmethod"
    return fn, None


class BindsAsMethod:
    """What ``Flow`` and ``Task`` share so that, defined on a class, they bind as Prefect's do.

    ``obj.method`` is a copy with ``obj`` as its first argument; a
    ``@classmethod`` one gets the class; a ``@staticmethod`` one and an instance
    method looked up on the class are returned as they are (see :func:`method_kind`).
    """

    #: "flow" or "task", for messages about the call's arguments.
    _what: str = ""
    name: str
    _bound: Any
    _method_kind: str | None
    _shape: CallShape

    def _bind(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's parameters, with the bound instance or class first for a method."""
        shape = self._shape
        if self._bound is not None:
            args = (self._bound, *args)
        elif not kwargs and shape.simple and len(args) == len(shape.names):
            # The commonest call, every argument by position: no defaults, no checks. The
            # lengths are equal (just checked); a zip keyword argument costs 40% more.
            return dict(zip(shape.names, args))  # noqa: B905
        return shape.bind(args, kwargs, f"{self._what} '{self.name}'")

    def __get__(self, instance: Any, owner: Any) -> Any:
        if self._method_kind == "staticmethod":
            return self
        if self._method_kind == "classmethod":
            target = owner if owner is not None else type(instance)
        elif instance is not None:
            target = instance
        else:
            return self
        bound = copy.copy(self)
        bound._bound = target
        return bound


def check_result_storage_key(value: Any, owner: str) -> str | None:
    """``result_storage_key`` as a template whose fixed parts stay inside ``results/``.

    The formatted key is checked again at run time, when the parameters are known
    (:func:`kernelflow.results.check_result_name`).
    """
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"result_storage_key{_where(owner)} must be a non-empty string such as "
            f"'my-result-{{parameters[x]}}', got {value!r}."
        )
    from kernelflow.results import check_result_name

    # The literal text (each field replaced by a placeholder) must already be a safe name.
    literal = "".join(
        text + ("x" if field is not None else "")
        for text, field, _spec, _conv in _formatter_parse(value, owner)
    )
    try:
        check_result_name(literal)
    except ConfigurationError:
        raise ConfigurationError(
            f"result_storage_key{_where(owner)} {value!r} is not a name inside the store's "
            "results/ folder; use a relative name without '..' or a leading '/' or '.', "
            "e.g. 'my-result-{parameters[x]}'."
        ) from None
    return value


def _formatter_parse(template: str, owner: str) -> list[tuple]:
    import string

    try:
        return list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigurationError(
            f"result_storage_key{_where(owner)} {template!r} is not a valid format string "
            f"({exc}); double literal braces as {{{{ }}}}."
        ) from None


def render_run_name(template: Any, parameters: dict[str, Any], default: str) -> str:
    """A run name from ``task_run_name`` / ``flow_run_name`` (a format string or callable)."""
    if template is None:
        return default
    if callable(template):
        return str(template())
    try:
        return str(template).format(**parameters)
    except (KeyError, IndexError) as exc:
        raise ConfigurationError(
            f"Run name {template!r} names {exc} which is not a parameter; use one of "
            f"{sorted(parameters)}."
        ) from None


class CallShape:
    """A function's signature, cached: binds calls to a parameter dict and back."""

    __slots__ = ("names", "signature", "simple")

    def __init__(self, fn: Callable) -> None:
        self.signature = inspect.signature(fn)
        params = self.signature.parameters.values()
        self.names = [p.name for p in params]
        # Plain positional-or-keyword parameters let us skip inspect on the hot path.
        self.simple = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)

    def bind(self, args: tuple, kwargs: dict[str, Any], owner: str) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied."""
        if self.simple and len(args) <= len(self.names):
            bound = dict(zip(self.names, args, strict=False))
            if kwargs:
                for key in kwargs:
                    if key in bound or key not in self.signature.parameters:
                        return self._bind_slow(args, kwargs, owner)
                bound.update(kwargs)
            if len(bound) < len(self.names):
                for name in self.names:
                    if name not in bound:
                        default = self.signature.parameters[name].default
                        if default is inspect.Parameter.empty:
                            return self._bind_slow(args, kwargs, owner)
                        bound[name] = default
            return bound
        return self._bind_slow(args, kwargs, owner)

    def _bind_slow(self, args: tuple, kwargs: dict[str, Any], owner: str) -> dict[str, Any]:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{owner}: {exc}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def to_call(self, parameters: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        """``(args, kwargs)`` to call the function with a bound parameter dict."""
        if self.simple:
            return (), parameters
        bound = inspect.BoundArguments(self.signature, parameters)
        return bound.args, bound.kwargs
