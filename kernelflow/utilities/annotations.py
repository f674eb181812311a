"""Wrappers that change how a task argument is treated (Prefect's ``utilities.annotations``).

Before a task runs, the engine replaces the futures and states among its
arguments by their results, looking inside lists, tuples, sets and dicts.
A wrapper changes that for one argument; the task always receives the
unwrapped value:

=====================  =========================================================
no wrapper             resolve futures, also inside collections (the default)
:class:`quote`         resolve nothing, look inside nothing: the value as given
:class:`opaque`        resolve a future or state given directly, look inside nothing
:class:`allow_failure` resolve, and run even if that upstream failed (gets ``None``)
:class:`unmapped`      in ``.map()``, pass the value whole to every call
=====================  =========================================================

``quote`` and ``opaque`` save the walk through a large argument (a dict of a
million items) on every call; ``quote`` also passes futures through untouched,
so the task can wait on them itself. Neither changes caching: cache policies
hash the value the task receives.

Example
-------
>>> from kernelflow import flow, task
>>> from kernelflow.utilities.annotations import opaque, quote
>>> @task
... def load(): return {"a": 1}
>>> @task
... def size(data): return len(data)
>>> @flow
... def pipeline():
...     big = load.submit()
...     return size(opaque(big)), size(quote({"x": 1, "y": 2}))
>>> pipeline()
(1, 2)
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

__all__ = ["BaseAnnotation", "allow_failure", "opaque", "quote", "unmapped"]

T = TypeVar("T")


class BaseAnnotation(Generic[T]):
    """A wrapper around one argument value; the task receives :meth:`unwrap`'s result.

    Parameters
    ----------
    value
        The wrapped value.
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        """The wrapped value."""
        return self.value

    def rewrap(self, value: T) -> BaseAnnotation[T]:
        """The same kind of wrapper around another value."""
        return type(self)(value)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.value == other.value

    def __hash__(self) -> int:
        return hash((type(self), self.value))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class quote(BaseAnnotation[T]):  # lower case: Prefect's name
    """Pass an argument exactly as given: no future inside it is resolved, nothing is walked.

    Use it for a large collection the engine would otherwise search for
    futures on every call, or to hand a task futures it waits on itself.
    The run records no upstream dependency for a quoted argument.

    Example
    -------
    >>> @flow
    ... def pipeline(df):
    ...     return summarize(quote(df))   # summarize receives df itself
    """

    __slots__ = ()

    def unquote(self) -> T:
        """The quoted value."""
        return self.value


class opaque(BaseAnnotation[T]):  # lower case: Prefect's name
    """Resolve a future or state given directly, but never look inside the value.

    ``opaque(future)`` waits for the future and passes its result, without
    walking that result (a big dict or DataFrame) for nested futures; a
    plain value passes unchanged. The upstream dependency is recorded.

    Example
    -------
    >>> @flow
    ... def pipeline():
    ...     cities = load_cities.submit()
    ...     return process(opaque(cities))   # process receives the result
    """

    __slots__ = ()


class allow_failure:  # lower case: Prefect's name
    """Wrap an upstream future so a downstream task runs even if it failed.

    The failed upstream arrives as ``None`` (Prefect passes the exception
    object, which is truthy; kernelflow passes ``None`` so ``x if x else y``
    falls back as users expect).
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class unmapped:  # lower case: Prefect's name
    """Wrap an argument of ``.map()`` so it is passed whole to every call."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value
