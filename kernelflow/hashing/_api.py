"""The public functions: :func:`hash_value`, :func:`hash_bytes` and :func:`source_hash`."""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any

from kernelflow.errors import HashingError
from kernelflow.hashing._builtins import _ATOMS
from kernelflow.hashing._objects import _feed_pickle
from kernelflow.hashing._routes import _route
from kernelflow.hashing._walk import (
    _feed,
    _new_hasher,
    _put,
    _Unhashable,
    _unhashable_message,
    _Walk,
    set_router,
)


def hash_value(value: Any, *, name: str | None = None) -> str:
    """Hash ``value`` to a hex xxh3_128 digest that is stable across processes.

    Parameters
    ----------
    value
        Any value: builtins, containers, dates, numpy arrays, pandas, pyarrow and
        polars objects are hashed natively; other objects through their pickle
        protocol (``__reduce_ex__``), field by field.
    name
        The argument ``value`` was passed as, named in the error message.

    Returns
    -------
    str
        32 lowercase hex digits.

    Raises
    ------
    HashingError
        If ``value`` (or something inside it) can neither be hashed natively nor
        pickled, e.g. a generator, a lock, an open file or a connection.

    Examples
    --------
    >>> hash_value({"b": 2, "a": 1}) == hash_value({"a": 1, "b": 2})
    True
    >>> hash_value(1) == hash_value(1.0)
    False
    >>> shared = [1]
    >>> hash_value([shared, shared]) == hash_value([shared, [1]])
    False
    """
    hasher = _new_hasher()
    atom = _ATOMS.get(type(value))
    if atom is not None:  # nothing to number: skip setting up the walk
        atom(hasher, value)
        return hasher.hexdigest()
    try:
        try:
            _feed(_Walk(hasher.update), value)
        except RecursionError:
            # Nested hundreds deep (cycles end at a back-reference): pickling goes
            # deeper than our recursive walk (about 250 levels of objects).
            hasher = _new_hasher()
            _feed_pickle(_Walk(hasher.update), value)
    except _Unhashable as exc:
        raise HashingError(_unhashable_message(name, value, exc.culprit)) from exc.__cause__
    return hasher.hexdigest()


def hash_bytes(*parts: bytes | str) -> str:
    """Hash several byte or text parts to one hex xxh3_128 digest.

    Each part is length-prefixed, so ``hash_bytes("ab", "c")`` differs from
    ``hash_bytes("a", "bc")``.

    Examples
    --------
    >>> hash_bytes("task", b"\\x00") == hash_bytes("task", b"\\x00")
    True
    """
    hasher = _new_hasher()
    for part in parts:
        if isinstance(part, str):
            _put(hasher, b"S", part.encode("utf-8", "surrogatepass"))
        else:
            _put(hasher, b"Y", part)
    return hasher.hexdigest()


_source_memo: weakref.WeakKeyDictionary[Any, tuple[Any, str]] = weakref.WeakKeyDictionary()


def source_hash(fn: Callable[..., Any]) -> str:
    """Hash the source code of ``fn``, e.g. for a cache key that changes with the code.

    Uses ``inspect.getsource``; when the source is unavailable (a function built
    with ``exec``, a deleted file) it hashes the bytecode, names and constants
    instead. The result is memoized per function object and recomputed when the
    function's ``__code__`` is replaced (as IPython's autoreload does).

    Examples
    --------
    >>> def double(x):
    ...     return 2 * x
    >>> source_hash(double) == source_hash(double)
    True
    """
    fn = getattr(fn, "__func__", fn)  # a bound method: hash its function, not the binding
    code = getattr(fn, "__code__", None)
    try:
        memo = _source_memo.get(fn)
    except TypeError:  # not weak-referenceable: compute every time
        memo = None
    if memo is not None and memo[0] is code:
        return memo[1]
    try:
        digest = hash_bytes("source", inspect.getsource(fn))
    except (OSError, TypeError):
        if code is not None:
            digest = hash_value(code)
        else:  # a builtin: its identity is all there is
            where = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
            digest = hash_bytes("qualname", where)
    try:
        _source_memo[fn] = (code, digest)
    except TypeError:
        pass
    return digest


# The walk asks this for the encoder of a type it has no exact encoder for.
set_router(_route)
