"""Stable, fast hashes of Python values, for cache keys.

A value is hashed by streaming a canonical, type-tagged encoding of it into one
xxh3_128 hasher. The encoding follows the value's logical content, never
addresses or pickle bytes: one value hashes alike in every process of one
environment, with any ``PYTHONHASHSEED``, and after a pickle round trip (a value
restored from the cache in a fresh kernel).

- Every piece starts with a tag naming its type and every variable-length piece
  carries its length, so different values cannot encode alike: ``1``, ``True``
  and ``1.0`` differ, and so do ``("ab", "c")`` and ``("a", "bc")``.
- Sets are ordered by the digest of each element and dicts by the digest of each
  key, never by iteration order: the order of a set of strings changes with
  ``PYTHONHASHSEED``, so it would change the key from one process to the next.
  Two exceptions, both hashed in order: dict subclasses whose ``==`` is not
  ``dict``'s (``OrderedDict``, whose equality depends on order, and any that
  override ``__eq__``: for an unknown equality, telling too much apart only
  costs a cache miss), and dicts whose keys are all objects that compare by
  identity (no ``__eq__``/``__hash__`` of their own). Such a dict equals only a
  dict of the very same key objects, which no other process holds; its
  insertion order is deterministic and pickling keeps it, and sorting would
  hash every key twice (see below).
- Arrays and tables feed their raw buffers to the hasher without copying them;
  numpy, pandas, pyarrow and polars are only touched when the value comes from
  them, so hashing a dict never imports pandas.
- **Shared references and cycles.** Each mutable object met (list, dict, set,
  bytearray, ndarray, DataFrame, Series, closure cell, any other object) is
  numbered in the order of the walk; meeting it again feeds a back-reference to
  that number instead of its content. So cycles end (a figure and its axes
  point at each other), and ``[a, a]`` hashes apart from ``[a, copy(a)]``:
  restoring a cached value must restore that sharing. Immutable values (str,
  int, float, tuple, frozenset...) are not numbered: their identity is not part
  of their value. Set elements and dict keys are first hashed one by one with
  the numbering as it stands (so none sees what a sibling numbered, whatever
  the iteration order), sorted, then numbered in sorted order; one that shares
  an object with a sibling before it is hashed again (see :func:`_sort`).
- **Other objects** are encoded through their pickle protocol, as pickle reduces
  them (cloudpickle's and ``copyreg``'s reducers, else ``__reduce_ex__(5)``):
  the callable, its arguments, the state, list items and dict items, each fed
  through this same encoding. Pickle bytes would change after a round trip
  (string interning, memo layout) and carry a per-process id for every class
  defined in a notebook.
- **Classes and functions** that can be imported by ``module.qualname`` are
  encoded by that name alone (an installed library's code is keyed by name, as
  :mod:`kernelflow.kernel.dependencies` does). Those defined in ``__main__``
  (a notebook), inside a function, or in a module registered with
  ``cloudpickle.register_pickle_by_value`` are encoded by value, as cloudpickle
  pickles them: a function by its compiled code (bytecode, names, constants,
  signature and flags; not line numbers, file names or comments), defaults,
  closure, attributes and the globals its code reads; a class by its name,
  metaclass, bases and every member. Redefining a notebook class with other code
  therefore changes the hash of its instances, and running the same cell again
  does not. Each such definition is hashed once per call, on its own, so its
  digest does not depend on where it is first met.

Pickle bytes are still hashed where there is no structure to walk: an object
whose ``__reduce__`` names a global that cannot be found by that name, an
object that cloudpickle pickles but pickle's protocol cannot reduce, a module
not in ``sys.modules``, a numpy array of a structured dtype holding objects, and
a value nested deeper than the walk's recursion allows (about 250 levels of
objects or 900 of lists): that whole value is pickled then. Such hashes may
differ from one process to the next: a cache miss, never a wrong hit.

A value that cannot be hashed raises :class:`~kernelflow.errors.HashingError`
naming the argument and the part that failed: a generator, a lock, an open
binary file, a socket, a connection, a weak reference, anything that neither
pickle's protocol nor cloudpickle can take apart.

Known limits, each of which can only cause a cache miss, never a wrong hit:

- Library versions: an object's pickled state may change with the library that
  defines it (scikit-learn stores ``_sklearn_version``). Conversely a library
  class is known by name: its instances hash alike before and after an upgrade
  that changed its code but not their state.
- A pyarrow or polars value in several chunks is combined into one before it is
  hashed (a copy), so the same rows chunked differently hash alike.
- State that depends on the process: an object whose ``__getstate__`` returns
  ``id()`` values, addresses, timestamps (a ``GridSearchCV``'s fit times),
  random tokens or a counter that pickling advances hashes differently each time
  it is built, though alike once built (and after a round trip). The known ones
  that a round trip or a new process would change are left out: see
  ``_TRANSIENT_STATE`` (matplotlib's transform caches and callback counter,
  pyplot's figure number), where others can be added.
- State an object fills in lazily (a ``functools.cached_property``, a cache
  filled on first read) is hashed once it is there: the first read changes the
  hash. (A ``functools.partial``, whose reduction changes when its ``__dict__``
  is first read, is hashed field by field instead.)
- Set elements that compare by identity and are equal in content (two
  ``Node()`` with the same fields in one set) sort in iteration order, which
  follows memory addresses; so do the items of a ``WeakSet``, and of any object
  whose reduction lists them in hash or address order.
- A notebook function's hash covers the globals its code reads, not state it
  reaches through an imported module (``config.THRESHOLD``).
"""

from __future__ import annotations

import bisect
import copyreg
import datetime as _dt
import decimal
import enum
import functools
import inspect
import math
import pathlib
import struct
import sys
import types
import uuid
import weakref
from collections.abc import Callable
from typing import Any

import xxhash

from kernelflow.errors import HashingError

__all__ = ["hash_bytes", "hash_value", "source_hash"]

_new_hasher = xxhash.xxh3_128
_digest_of = xxhash.xxh3_128_digest
_pack_u64 = struct.Struct("<Q").pack
_pack_f64 = struct.Struct("<d").pack
_pack_timedelta = struct.Struct("<qqq").pack
_PROTOCOL = 5  # the protocol cloudpickle writes with; its __reduce_ex__ results are what we encode


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


class _Unhashable(Exception):
    """Internal: ``culprit`` could not be hashed; carried up to name the argument."""

    def __init__(self, culprit: Any) -> None:
        super().__init__()
        self.culprit = culprit


def _unhashable_message(name: str | None, value: Any, culprit: Any) -> str:
    what = f"a {_describe(type(value))}"
    if culprit is not value:
        what += f" holding a {_describe(type(culprit))}"
    if name is None:
        return (
            f"Cannot hash a value ({what}) for the cache key: exclude it from the cache "
            "policy, or pass a cache_key_fn."
        )
    return (
        f"Cannot hash argument {name!r} ({what}) for the cache key: exclude it with "
        f"cache_policy=INPUTS - {name!r}, or pass a cache_key_fn."
    )


def _describe(cls: type) -> str:
    return cls.__qualname__ if cls.__module__ == "builtins" else _type_name(cls)


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# --- the walk ------------------------------------------------------------------------------


class _Walk:
    """Where one ``hash_value`` call feeds its bytes, and what it has numbered so far.

    ``update`` is the hasher's ``update``. A sub-value hashed on its own (a dict
    key, a set element) gets a walk with another hasher that shares the
    numbering; a class or function hashed by value gets a fresh numbering.
    All of them share the call's ``cache``.

    Attributes
    ----------
    ids
        ``id()`` of each numbered object -> its number.
    seen
        The numbered objects, by number. Holding them keeps their ``id()`` from
        being reused by a temporary (a ``__getstate__`` result) later in the walk.
    bases
        The first number of each set element or dict key being hashed on its
        own, outermost first (see :func:`_backref`).
    cache
        What the call has worked out once for all its walks.
    """

    __slots__ = ("bases", "cache", "ids", "seen", "update")

    def __init__(
        self, update: Callable[[Any], None], parent: _Walk | None = None, fresh: bool = False
    ) -> None:
        self.update = update
        if parent is None or fresh:
            self.ids: dict[int, int] = {}
            self.seen: list[Any] = []
            self.bases: list[int] = []
        else:
            self.ids = parent.ids
            self.seen = parent.seen
            self.bases = parent.bases
        self.cache = _Cache() if parent is None else parent.cache


class _Cache:
    """Per call caches. Keyed by ``id()`` where the key is an object: entries hold it too.

    Attributes
    ----------
    tokens
        The token fed for each class and function met.
    routes
        The encoder of each class of object met through :func:`_feed_other`.
    plans
        For each class reduced: its reducer (None: ``__reduce_ex__``) and the
        names of its transient state.
    orders
        For a tuple of str (dict keys, set elements): what :func:`_sort` returns.
    building
        The definitions (classes, functions) being hashed by value, outermost first.
    low
        The outermost ``building`` depth referred to so far; a definition whose
        hash refers to one outside itself is not cached.
    """

    __slots__ = ("building", "low", "orders", "plans", "routes", "tokens")

    def __init__(self) -> None:
        self.tokens: dict[int, tuple[Any, bytes]] = {}
        self.routes: dict[int, tuple[type, Callable[[_Walk, Any], None]]] = {}
        self.plans: dict[int, tuple[type, Any, frozenset[str]]] = {}
        self.orders: dict[tuple[str, ...], _Sorted] = {}
        self.building: list[Any] = []
        self.low = 0


def _enter(w: _Walk, value: Any) -> bool:
    """Number ``value``; if it already has a number, feed a back-reference and say so."""
    ids = w.ids
    index = ids.get(id(value))
    if index is None:
        ids[id(value)] = len(ids)
        w.seen.append(value)
        return False
    w.update(_backref(w, index))
    return True


def _backref(w: _Walk, index: int) -> bytes:
    """The token for "the object numbered ``index``".

    Outside any set element or dict key hashed on its own, the number itself.
    Inside one, a number given since it began is counted from its first number
    (the innermost such base at or below it, and how many levels out that base
    is). So an element encodes alike whatever its siblings numbered before it,
    which lets :func:`_sort` reuse the digest it computed to sort it.
    """
    bases = w.bases
    if not bases or index < bases[0]:
        return b"@" + _pack_u64(index)
    level = bisect.bisect_right(bases, index) - 1
    return b"^" + _pack_u64(len(bases) - 1 - level) + _pack_u64(index - bases[level])


def _rollback(w: _Walk, mark: int) -> list[Any]:
    """Forget the numbers given since ``len(w.seen)`` was ``mark``; return what they numbered."""
    ids, seen = w.ids, w.seen
    numbered = seen[mark:]
    for obj in numbered:
        del ids[id(obj)]
    del seen[mark:]
    return numbered


# --- the encoding --------------------------------------------------------------------------


def _put(hasher: Any, tag: bytes, data: bytes | bytearray) -> None:
    hasher.update(tag + _pack_u64(len(data)))
    hasher.update(data)


def _put_buffer(hasher: Any, tag: bytes, buffer: Any, nbytes: int) -> None:
    # For numpy arrays and Arrow buffers: len() would count items, not bytes.
    hasher.update(tag + _pack_u64(nbytes))
    hasher.update(buffer)


def _digest(w: _Walk, value: Any) -> bytes:
    """The digest of ``value`` alone (a set element, a dict key), numbering in ``w``'s numbering."""
    hasher = _new_hasher()
    bases = w.bases
    bases.append(len(w.ids))
    try:
        _feed(_Walk(hasher.update, w), value)
    finally:
        bases.pop()
    return hasher.digest()


_Sorted = tuple[list[bytes], list[int], dict[int, list[Any]] | None]


def _sort(w: _Walk, items: list[Any]) -> _Sorted:
    """Digest the items of a set (the keys of a dict) and sort them by digest.

    Returns each item's digest, the positions in sorted order, and for the items
    that numbered objects, the objects they numbered (else None).

    Each item is hashed with the numbering as it stands, and what it numbers is
    forgotten before the next item: so no digest depends on which sibling the
    (hash-seeded, address-dependent) iteration order put first. When the items
    are then fed in sorted order (:func:`_put_item`), an item that numbered
    objects numbers them for good; one that would meet an object a sibling fed
    before it numbered is hashed again, so that siblings sharing an object are
    told apart from siblings holding equal copies.
    """
    str_items = None
    if len(items) <= 64:
        for item in items:
            if type(item) is not str:
                break
        else:
            # Objects of one class mostly have the same attribute names, and records
            # the same keys: sort each set of str keys once per call.
            str_items = tuple(items)
            known = w.cache.orders.get(str_items)
            if known is not None:
                return known
    digests: list[bytes] = []
    append = digests.append
    numbered: dict[int, list[Any]] | None = None
    hasher = None
    walk = w
    ids = w.ids
    bases = w.bases
    for position, item in enumerate(items):
        if type(item) is str:  # the common dict key, in one call
            data = item.encode("utf-8", "surrogatepass")
            append(_digest_of(b"S" + _pack_u64(len(data)) + data))
            continue
        if hasher is None:
            hasher = _new_hasher()
            walk = _Walk(hasher.update, w)
        else:
            hasher.reset()
        mark = len(ids)
        bases.append(mark)
        try:
            _feed(walk, item)
        finally:
            bases.pop()
        if len(ids) != mark:
            if numbered is None:
                numbered = {}
            numbered[position] = _rollback(w, mark)
        append(hasher.digest())
    # Positions, not (digest, item) pairs: fewer tuples for the garbage collector
    # to track. The sort is stable: equal digests keep iteration order.
    order = sorted(range(len(digests)), key=digests.__getitem__)
    result = (digests, order, numbered)
    if str_items is not None:
        w.cache.orders[str_items] = result
    return result


def _put_item(w: _Walk, item: Any, digest: bytes, numbered: list[Any] | None) -> None:
    """Feed a sorted item's digest, numbering what it holds (see :func:`_sort`)."""
    if numbered is not None:
        ids = w.ids
        for obj in numbered:
            if id(obj) in ids:  # numbered by a sibling or a value fed before it
                w.update(_digest(w, item))
                return
        seen = w.seen
        for obj in numbered:  # in the order that hashing it again would number them
            ids[id(obj)] = len(ids)
            seen.append(obj)
    w.update(digest)


def _put_set_items(w: _Walk, items: list[Any]) -> None:
    digests, order, numbered = _sort(w, items)
    if numbered is None:
        w.update(b"".join([digests[position] for position in order]))
        return
    for position in order:
        _put_item(w, items[position], digests[position], numbered.get(position))


def _put_dict_items(w: _Walk, keys: list[Any], values: list[Any]) -> None:
    """A dict's items, sorted by key digest: each key's digest, then its value."""
    digests, order, numbered = _sort(w, keys)
    update = w.update
    for position in order:
        if numbered is None:
            update(digests[position])
        else:
            _put_item(w, keys[position], digests[position], numbered.get(position))
        item = values[position]
        encode = _EXACT.get(type(item))
        if encode is not None:
            encode(w, item)
        else:
            _feed_other(w, item)


def _feed(hasher: Any, value: Any) -> None:
    encode = _EXACT.get(type(value))
    if encode is not None:
        encode(hasher, value)
    else:
        _feed_other(hasher, value)


def _enc_none(hasher: Any, value: None) -> None:
    hasher.update(b"N")


def _enc_bool(hasher: Any, value: bool) -> None:
    hasher.update(b"B1" if value else b"B0")


def _enc_int(hasher: Any, value: int) -> None:
    if -256 <= value < 1024:
        hasher.update(_SMALL_INTS[value])
        return
    size = (value.bit_length() + 8) >> 3
    hasher.update(b"I" + _pack_u64(size) + value.to_bytes(size, "little", signed=True))


def _int_bytes(value: int) -> bytes:
    size = (value.bit_length() + 8) >> 3
    return b"I" + _pack_u64(size) + value.to_bytes(size, "little", signed=True)


# Small ints are most ints: their encodings, precomputed (negative indexes wrap around).
_SMALL_INTS = [_int_bytes(value) for value in range(1024)] + [
    _int_bytes(value) for value in range(-256, 0)
]


def _enc_float(hasher: Any, value: float) -> None:
    # All NaNs are one value to Python; their bit patterns are not.
    hasher.update(b"D" + _pack_f64(math.nan if value != value else value))


def _enc_complex(hasher: Any, value: complex) -> None:
    hasher.update(b"C")
    _enc_float(hasher, value.real)
    _enc_float(hasher, value.imag)


def _enc_str(hasher: Any, value: str) -> None:
    data = value.encode("utf-8", "surrogatepass")
    if len(data) < 4096:  # one call beats a copy for short text
        hasher.update(b"S" + _pack_u64(len(data)) + data)
    else:
        _put(hasher, b"S", data)


def _enc_bytes(hasher: Any, value: bytes) -> None:
    _put(hasher, b"Y", value)


def _enc_bytearray(w: _Walk, value: bytearray) -> None:
    if not _enter(w, value):
        _put(w, b"y", value)


def _enc_tuple(w: _Walk, value: tuple) -> None:
    size = len(value)
    w.update(_TUPLE_HEADS[size] if size < 16 else b"(" + _pack_u64(size))
    for item in value:
        encode = _EXACT.get(type(item))
        if encode is not None:
            encode(w, item)
        else:
            _feed_other(w, item)


# Headers of short tuples and lists, precomputed: containers are mostly short.
_TUPLE_HEADS = [b"(" + _pack_u64(size) for size in range(16)]
_LIST_HEADS = [b"[" + _pack_u64(size) for size in range(16)]


def _enc_list(w: _Walk, value: list) -> None:
    ids = w.ids  # _enter, inlined: lists are the most common container
    key = id(value)
    index = ids.get(key)
    if index is not None:
        w.update(_backref(w, index))
        return
    ids[key] = len(ids)
    w.seen.append(value)
    size = len(value)
    w.update(_LIST_HEADS[size] if size < 16 else b"[" + _pack_u64(size))
    for item in value:
        encode = _EXACT.get(type(item))
        if encode is not None:
            encode(w, item)
        else:
            _feed_other(w, item)


def _enc_dict(w: _Walk, value: dict) -> None:
    ids = w.ids  # _enter, inlined
    key = id(value)
    index = ids.get(key)
    if index is not None:
        w.update(_backref(w, index))
        return
    ids[key] = len(ids)
    w.seen.append(value)
    _feed_dict_items(w, list(value), list(value.values()))


def _feed_dict_items(w: _Walk, keys: list[Any], values: list[Any]) -> None:
    if keys and type(keys[0]) is not str and _identity_keys(keys):
        # Equal only to a dict of the very same key objects, so sorting buys no hit
        # across processes, and would hash each key twice (see _sort). Insertion
        # order is deterministic and pickling keeps it.
        w.update(b"}" + _pack_u64(len(keys)))
        for key, item in zip(keys, values, strict=True):
            _feed(w, key)
            _feed(w, item)
        return
    # Sorted by key digest: stable, and works for keys that do not compare (1 and "a").
    w.update(b"{" + _pack_u64(len(keys)))
    _put_dict_items(w, keys, values)


def _identity_keys(keys: list[Any]) -> bool:
    """Whether every key is an object of a class defined in Python that compares by identity."""
    for key in keys:
        cls = type(key)
        if (
            cls.__hash__ is not _object_hash
            or cls.__eq__ is not _object_eq
            or not cls.__flags__ & _HEAPTYPE  # classes, functions, None...: sorted, as usual
        ):
            return False
    return True


_object_hash = object.__hash__
_object_eq = object.__eq__


def _enc_set(w: _Walk, value: set) -> None:
    if not _enter(w, value):
        _feed_set_items(w, b"<", value)


def _enc_frozenset(w: _Walk, value: frozenset) -> None:
    _feed_set_items(w, b">", value)


def _feed_set_items(w: _Walk, tag: bytes, value: set | frozenset) -> None:
    items = list(value)
    w.update(tag + _pack_u64(len(items)))
    _put_set_items(w, items)


def _enc_datetime(hasher: Any, value: _dt.datetime | _dt.time) -> None:
    # isoformat keeps only the UTC offset: add the zone itself and fold.
    text = f"{value.isoformat()}|{value.tzinfo}|{value.fold}"
    _put(hasher, b"t", text.encode())


def _enc_date(hasher: Any, value: _dt.date) -> None:
    _put(hasher, b"d", value.isoformat().encode())


def _enc_timedelta(hasher: Any, value: _dt.timedelta) -> None:
    hasher.update(b"e" + _pack_timedelta(value.days, value.seconds, value.microseconds))


def _enc_decimal(hasher: Any, value: decimal.Decimal) -> None:
    _put(hasher, b"c", str(value).encode())


def _enc_uuid(hasher: Any, value: uuid.UUID) -> None:
    hasher.update(b"u" + value.bytes)


def _enc_path(hasher: Any, value: pathlib.PurePath) -> None:
    _put(hasher, b"p", f"{type(value).__name__}:{value}".encode("utf-8", "surrogatepass"))


def _enc_singleton(hasher: Any, value: Any) -> None:
    hasher.update(b"." if value is Ellipsis else b"!")  # ... and NotImplemented


def _enc_code(hasher: Any, value: types.CodeType) -> None:
    # The fallback of source_hash, and how notebook functions are hashed:
    # bytecode plus the names, constants and signature it uses (``f(x)`` and
    # ``g(x)`` differ only in co_names, ``*a`` and ``**a`` only in co_flags).
    # Nested code objects are constants and recurse here; repr() of them would
    # contain an address. Line numbers and file names are left out on purpose.
    _put(hasher, b"Q", value.co_code)
    _feed(
        hasher,
        (
            value.co_argcount,
            value.co_names,
            value.co_varnames,
            value.co_consts,
            value.co_posonlyargcount,
            value.co_kwonlyargcount,
            value.co_flags,
            value.co_freevars,
            value.co_cellvars,
            getattr(value, "co_exceptiontable", b""),
        ),
    )


def _enc_cell(w: _Walk, cell: types.CellType) -> None:
    # Cells are shared between closures: numbered, like any mutable object.
    if _enter(w, cell):
        return
    try:
        contents = cell.cell_contents
    except ValueError:  # empty: a name assigned after the closure was made
        w.update(b"l0")
        return
    w.update(b"l1")
    _feed(w, contents)


def _enc_module(w: _Walk, module: types.ModuleType) -> None:
    name = getattr(module, "__name__", None)
    if isinstance(name, str) and sys.modules.get(name) is module:
        _put(w, b"M", name.encode())
    else:  # built on the fly: cloudpickle pickles its namespace
        _feed_pickle(w, module)


# Values that are never numbered, encoded by one function that only calls update().
_ATOMS: dict[type, Callable[[Any, Any], None]] = {
    type(None): _enc_none,
    bool: _enc_bool,
    int: _enc_int,
    float: _enc_float,
    complex: _enc_complex,
    str: _enc_str,
    bytes: _enc_bytes,
    _dt.datetime: _enc_datetime,
    _dt.date: _enc_date,
    _dt.time: _enc_datetime,
    _dt.timedelta: _enc_timedelta,
    decimal.Decimal: _enc_decimal,
    uuid.UUID: _enc_uuid,
}

_EXACT: dict[type, Callable[[Any, Any], None]] = {
    **_ATOMS,
    bytearray: _enc_bytearray,
    tuple: _enc_tuple,
    list: _enc_list,
    dict: _enc_dict,
    set: _enc_set,
    frozenset: _enc_frozenset,
    types.CodeType: _enc_code,
    type(Ellipsis): _enc_singleton,
    type(NotImplemented): _enc_singleton,
    types.CellType: _enc_cell,
    types.ModuleType: _enc_module,
    # Added below, once defined: type, types.FunctionType, types.BuiltinFunctionType.
}


def _feed_other(w: _Walk, value: Any) -> None:
    cls = type(value)
    routes = w.cache.routes
    route = routes.get(id(cls))
    if route is None:
        route = routes[id(cls)] = (cls, _route(cls))
    route[1](w, value)


def _route(cls: type) -> Callable[[_Walk, Any], None]:
    """The encoder for instances of ``cls``, a type not in ``_EXACT``."""
    if issubclass(cls, type):  # a class whose metaclass is not type (ABCMeta, EnumType...)
        return _enc_class
    if issubclass(cls, enum.Enum):
        return _enc_enum
    library = _LIBRARIES.get(str(cls.__module__).partition(".")[0])
    if library is not None:

        def library_or_object(w: _Walk, value: Any, library: Any = library) -> None:
            if not library(w, value):
                _feed_object(w, value)

        return library_or_object
    if issubclass(cls, pathlib.PurePath):
        return _enc_path
    if issubclass(cls, (set, frozenset)):
        return _enc_set_subclass
    where = (cls.__module__, cls.__qualname__)
    if where == ("pickle", "PickleBuffer"):  # what __reduce_ex__(5) gives for a buffer
        return _enc_pickle_buffer
    if where == ("typing", "TypeVar"):  # cloudpickle would add a per-process id
        return _enc_typevar
    if cls is functools.partial:
        return _enc_partial
    if _has_model_serializer(cls):
        return _enc_serialized_model
    return _feed_object


def _has_model_serializer(cls: type) -> bool:
    """A pydantic model class whose author wrote a ``@model_serializer``.

    Its output is what the author says the model is, and Prefect's keys hash
    it: fields it leaves out (a connection, a lock) do not make the model
    unhashable. Models without one are hashed whole, by their reduction.
    """
    pydantic = sys.modules.get("pydantic")  # never imported just to ask
    if pydantic is None or not issubclass(cls, pydantic.BaseModel):
        return False
    decorators = getattr(cls, "__pydantic_decorators__", None)
    return bool(getattr(decorators, "model_serializers", None))


def _enc_serialized_model(w: _Walk, value: Any) -> None:
    try:
        dumped = value.model_dump()
    except Exception:  # the serializer's own bug: hash the model as any other object
        _feed_object(w, value)
        return
    if _enter(w, value):
        return
    w.update(b"P")
    _feed(w, type(value))
    _feed(w, dumped)


def _enc_partial(w: _Walk, value: functools.partial) -> None:
    # Its reduction gives its __dict__ as None until something reads the attribute,
    # then as {}: one partial, two hashes. Read it here, so it is always a dict.
    if _enter(w, value):
        return
    w.update(b"~")
    _feed(w, (value.func, value.args, value.keywords, value.__dict__))


def _enc_pickle_buffer(w: _Walk, value: Any) -> None:
    # Unpickled in band it is plain bytes: hash it like them.
    with value.raw() as view:
        _put_buffer(w, b"Y", view, view.nbytes)


def _enc_typevar(w: _Walk, value: Any) -> None:
    w.update(b"v")
    _feed(
        w,
        (
            value.__name__,
            value.__bound__,
            value.__constraints__,
            value.__covariant__,
            value.__contravariant__,
        ),
    )


def _enc_enum(w: _Walk, value: enum.Enum) -> None:
    cls = type(value)
    if _reference(cls) is not None:  # as before: keeps the keys of existing cache entries
        _put(w, b"E", _type_name(cls).encode())
    else:  # a notebook enum: by its code too
        w.update(b"U")
        _enc_class(w, cls)
    _feed(w, value.value)


# --- generic objects, through their pickle protocol -----------------------------------------

# Members of a class's __dict__ that are not part of what the class does: the
# descriptors for instance dicts, and ABCMeta's cache of subclass checks.
_CLASS_SKIP = frozenset({"__dict__", "__weakref__", "_abc_impl", "__module__", "__qualname__"})

# State that pickling keeps but that is not part of an object's value, by the
# "module:qualname" of a class that has it (subclasses included). Without these
# entries, equal objects would hash differently from one process to the next or
# after a round trip. Leaving out a name is safe only if what it caches or
# identifies is derived from state that is hashed.
_TRANSIENT_STATE: dict[str, frozenset[str]] = {
    # _parents: {id(parent): weakly held parent}, to invalidate caches: keyed by
    # addresses, and which parents are still alive is up to the GC. _invalid:
    # whether the cached matrix is stale; unpickling a figure sets its dpi, which
    # invalidates every transform that depends on it.
    "matplotlib.transforms:TransformNode": frozenset({"_parents", "_invalid"}),
    # The next callback id: __getstate__ advances it, so pickling changes it.
    "matplotlib.cbook:CallbackRegistry": frozenset({"_cid_gen"}),
    # pyplot's figure number: unpickling registers the figure under a new one.
    "matplotlib.figure:Figure": frozenset({"_number", "number"}),
    # Warnings a Bunch still has to give for deprecated keys: its __setstate__
    # ignores the state, so a restored Bunch (load_digits(), a CV result) has none.
    "sklearn.utils._bunch:Bunch": frozenset({"_deprecated_key_to_warnings"}),
    # A colormap's lookup table, built from its other state the first time it draws:
    # plt.cm.coolwarm hashed differently before and after its first plot.
    "matplotlib.colors:Colormap": frozenset({"_lut", "_isinit"}),
}

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: classes created at run time (class statements)

# The start of "o", copyreg.__newobj__ by name, a 1-tuple (the class follows).
_NEWOBJ_OF = b"oG" + _pack_u64(len(b"copyreg:__newobj__")) + b"copyreg:__newobj__" + _TUPLE_HEADS[1]


def _feed_object(w: _Walk, value: Any) -> None:
    """Any other object, by its reduction: what pickle would store, encoded by us."""
    if _enter(w, value):
        return
    cls = type(value)
    plan = w.cache.plans.get(id(cls))
    if plan is None:
        plan = w.cache.plans[id(cls)] = (cls, _reducer(cls), _transient_state(cls))
    _, reducer, transient = plan
    try:
        reduced = reducer(value) if reducer is not None else value.__reduce_ex__(_PROTOCOL)
    except RecursionError:
        raise
    except Exception:  # reducing runs arbitrary code: whatever fails, cloudpickle decides
        _feed_pickle(w, value)
        return
    if isinstance(reduced, str):  # a global, e.g. a builtin function or a ufunc
        _feed_global(w, value, reduced)
        return
    if not isinstance(reduced, tuple) or not 2 <= len(reduced) <= 6:
        _feed_pickle(w, value)  # pickle refuses these too: cloudpickle raises
        return
    func, args, state, listitems, dictitems, setter = reduced + (None,) * (6 - len(reduced))
    if not isinstance(args, tuple):
        _feed_pickle(w, value)
        return
    newobj = func is copyreg.__newobj__ and len(args) == 1 and args[0] is cls
    known = w.cache.tokens.get(id(cls)) if newobj else None
    if known is not None:  # most objects: what _feed(func) and _feed(args) give, at once
        w.update(_NEWOBJ_OF + known[1])
    else:
        w.update(b"o")
        _feed(w, func)
        _feed(w, args)
    if transient:
        state = _without(state, transient)
    encode = _EXACT.get(type(state))  # _feed, inlined: one frame less per level of nesting
    if encode is not None:
        encode(w, state)
    else:
        _feed_other(w, state)
    if listitems is None and dictitems is None and setter is None:
        w.update(b"--N")  # most objects: what the three below feed then
        return
    if listitems is None:
        w.update(b"-")
    else:
        _enc_list(w, list(listitems))
    if dictitems is None:
        w.update(b"-")
    else:
        pairs = list(dictitems)
        if getattr(cls, "__eq__", None) is dict.__eq__:  # dict's equality ignores order
            _enter(w, pairs)  # numbered, so the pairs stay alive: their ids stay unique
            _feed_dict_items(w, [key for key, _ in pairs], [item for _, item in pairs])
        else:  # OrderedDict, or an __eq__ we do not know: in order
            _enc_list(w, pairs)
    _feed(w, setter)


def _reducer(cls: type) -> Callable[[Any], Any] | None:
    # Pickle's precedence: cloudpickle's reducers, then copyreg's, then __reduce_ex__.
    cloud = _cloudpickle_reducers()
    return cloud.get(cls) or copyreg.dispatch_table.get(cls)


_cloud_reducers: dict[type, Callable[[Any], Any]] | None = None


def _cloudpickle_reducers() -> dict[type, Callable[[Any], Any]]:
    """cloudpickle's reducers for what pickle cannot reduce: properties, mappingproxy..."""
    global _cloud_reducers
    if _cloud_reducers is None:
        import cloudpickle

        table = getattr(cloudpickle.Pickler, "dispatch_table", None)
        maps = getattr(table, "maps", None)  # ChainMap(cloudpickle's, copyreg's)
        _cloud_reducers = dict(maps[0]) if maps else {}
    return _cloud_reducers


def _transient_state(cls: type) -> frozenset[str]:
    names: set[str] = set()
    for base in cls.__mro__:
        names.update(_TRANSIENT_STATE.get(f"{base.__module__}:{base.__qualname__}", ()))
    return frozenset(names)


def _without(state: Any, names: frozenset[str]) -> Any:
    """``state`` (a dict, or pickle's ``(dict, slots)`` pair) without ``names``."""
    if type(state) is dict:
        # Nothing left is what object.__getstate__ gives for an empty __dict__: None.
        return {key: item for key, item in state.items() if key not in names} or None
    if type(state) is tuple and len(state) == 2:
        return tuple(_without(part, names) if type(part) is dict else part for part in state)
    return state


def _feed_global(w: _Walk, value: Any, name: str) -> None:
    module = getattr(value, "__module__", None)
    if isinstance(module, str) and _lookup(module, name) is value:
        _put(w, b"G", f"{module}:{name}".encode())
    else:
        _feed_pickle(w, value)  # pickle searches every module for it


def _enc_set_subclass(w: _Walk, value: set | frozenset) -> None:
    # Reducing a set gives its items as a list in iteration order, which the hash
    # seed shuffles: encode the items as a set, and the rest of the reduction.
    if _enter(w, value):
        return
    try:
        reduced = value.__reduce_ex__(_PROTOCOL)
    except Exception:
        _feed_pickle(w, value)
        return
    w.update(b"K")
    _enc_class(w, type(value))
    _feed_set_items(w, b"<" if isinstance(value, set) else b">", value)
    args = reduced[1] if isinstance(reduced, tuple) and len(reduced) > 1 else None
    if isinstance(args, tuple) and len(args) == 1 and type(args[0]) is list:
        args = None  # just the items again
    _feed(w, args)
    _feed(w, reduced[2:] if isinstance(reduced, tuple) else reduced)


def _feed_pickle(hasher: Any, value: Any) -> None:
    import cloudpickle

    try:
        data = cloudpickle.dumps(value, protocol=_PROTOCOL)
    except Exception as exc:  # pickling runs arbitrary __reduce__ code; any failure counts
        raise _Unhashable(value) from exc
    _put(hasher, b"P", data)


# --- classes and functions -----------------------------------------------------------------


def _lookup(module_name: str, qualname: str) -> Any:
    """The object at ``module.qualname`` among imported modules, or None."""
    target = sys.modules.get(module_name)
    if target is None:
        return None
    try:
        for part in qualname.split("."):
            target = getattr(target, part)
    except Exception:  # "<locals>", or a module whose __getattr__ misbehaves
        return None
    return target


def _reference(obj: Any) -> str | None:
    """``module:qualname`` if ``obj`` is found there (and pickled by name), else None.

    What cloudpickle pickles by reference: not ``__main__`` (a notebook), not a
    function's locals, not a module registered with ``register_pickle_by_value``.
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or module == "__main__":
        return None
    if _lookup(module, qualname) is not obj:
        if isinstance(obj, type) and not obj.__flags__ & _HEAPTYPE:
            return f"{module}:{qualname}"  # a C type such as NoneType: fixed at build time
        return None
    cloudpickle = sys.modules.get("cloudpickle.cloudpickle")
    by_value = getattr(cloudpickle, "_is_registered_pickle_by_value", None)
    if by_value is not None and by_value(sys.modules[module]):
        return None
    return f"{module}:{qualname}"


def _enc_class(w: _Walk, cls: type) -> None:
    _feed_definition(w, cls, b"J", _class_body)


def _enc_function(w: _Walk, fn: types.FunctionType) -> None:
    _feed_definition(w, fn, b"f", _function_body)


def _feed_definition(w: _Walk, obj: Any, tag: bytes, body: Callable[[_Walk, Any], None]) -> None:
    """A class or function: by name if importable, else by value, hashed once per call.

    By value, it is hashed in a walk of its own, so its digest is the same
    wherever it is met and can be cached for the rest of the call. A definition
    met again while it is being hashed (a method's ``super()`` cell holds its
    class, a recursive function reads itself) is fed as its distance from the
    innermost definition being hashed: that keeps the digest of the outermost
    one independent of context. A digest that refers to an enclosing definition
    is not cached: it would mean something else elsewhere.
    """
    cache = w.cache
    entry = cache.tokens.get(id(obj))
    if entry is not None:
        w.update(entry[1])
        return
    name = _reference(obj)
    if name is not None:
        data = name.encode()
        token = b"G" + _pack_u64(len(data)) + data
        cache.tokens[id(obj)] = (obj, token)
        w.update(token)
        return
    building = cache.building
    for depth, other in enumerate(building):
        if other is obj:
            w.update(b"z" + _pack_u64(len(building) - 1 - depth))
            cache.low = min(cache.low, depth)
            return
    hasher = _new_hasher()
    depth = len(building)
    outer_low = cache.low
    cache.low = depth
    building.append(obj)
    try:
        body(_Walk(hasher.update, w, fresh=True), obj)
    finally:
        building.pop()
    token = tag + hasher.digest()
    if cache.low >= depth:
        cache.tokens[id(obj)] = (obj, token)
    cache.low = min(outer_low, cache.low)
    w.update(token)


def _class_body(w: _Walk, cls: type) -> None:
    _feed(w, (getattr(cls, "__module__", None), cls.__qualname__, type(cls), cls.__bases__))
    members = vars(cls)
    names = sorted(
        name
        for name, member in members.items()
        if isinstance(name, str)
        and name not in _CLASS_SKIP
        # The slots' descriptors: __slots__ itself is a member.
        and not isinstance(member, (types.MemberDescriptorType, types.GetSetDescriptorType))
    )
    w.update(b"{" + _pack_u64(len(names)))
    for name in names:
        _enc_str(w, name)
        _feed(w, members[name])


def _function_body(w: _Walk, fn: types.FunctionType) -> None:
    code = fn.__code__
    _feed(w, (fn.__module__, fn.__qualname__, fn.__name__, code, fn.__defaults__))
    _feed(w, fn.__kwdefaults__)
    closure = fn.__closure__ or ()
    w.update(b"(" + _pack_u64(len(closure)))
    for cell in closure:
        _enc_cell(w, cell)
    namespace = fn.__globals__
    # The globals its code reads, as cloudpickle pickles them with it.
    _feed(w, {name: namespace[name] for name in _code_globals(code) if name in namespace})
    _feed(w, fn.__dict__)
    _feed(w, getattr(fn, "__annotations__", None))


_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL"})
_globals_memo: dict[types.CodeType, tuple[str, ...]] = {}


def _code_globals(code: types.CodeType) -> tuple[str, ...]:
    """Global names ``code`` (and the code nested in it) reads or writes, in order."""
    found = _globals_memo.get(code)
    if found is not None:
        return found
    import dis

    names: dict[str, None] = {}
    stack = [code]
    while stack:
        current = stack.pop()
        for instruction in dis.get_instructions(current):
            if instruction.opname in _GLOBAL_OPS:
                names.setdefault(str(instruction.argval).removeprefix("NULL + "))
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    found = tuple(names)
    if len(_globals_memo) > 4096:
        _globals_memo.clear()
    _globals_memo[code] = found
    return found


def _enc_builtin(w: _Walk, fn: Any) -> None:
    """A builtin function (``len``, ``getattr``): by name; a bound one (``[].append``) reduced."""
    entry = w.cache.tokens.get(id(fn))
    if entry is not None:
        w.update(entry[1])
        return
    name = _reference(fn)
    if name is None:
        _feed_object(w, fn)
        return
    data = name.encode()
    token = b"G" + _pack_u64(len(data)) + data
    w.cache.tokens[id(fn)] = (fn, token)
    w.update(token)


_EXACT[type] = _enc_class
_EXACT[types.FunctionType] = _enc_function
_EXACT[types.BuiltinFunctionType] = _enc_builtin


# --- numpy ---------------------------------------------------------------------------------


def _feed_numpy(hasher: Any, value: Any) -> bool:
    import numpy as np

    if isinstance(value, np.generic):
        if value.dtype.hasobject:
            return False
        _put(hasher, b"g", _dtype_token(value.dtype))
        hasher.update(value.tobytes())
        return True
    # Subclasses carry more than the buffer: they are reduced, but for masked arrays.
    if type(value) is np.ndarray or type(value) is np.memmap:
        if not _enter(hasher, value):  # mutable: two references to one array are not two arrays
            _feed_ndarray(hasher, value)
        return True
    ma = sys.modules.get("numpy.ma")
    if ma is not None and type(value) is ma.MaskedArray:
        if not _enter(hasher, value):
            _feed_masked(hasher, value)
        return True
    return False


def _feed_masked(hasher: Any, value: Any) -> None:
    # Not through its reduction: that has the fill value as None until it is first
    # read, and as the default it then computes after a round trip.
    import numpy as np

    fill = value._fill_value  # not .fill_value, which would store the default in it
    if fill is None:
        fill = np.ma.default_fill_value(value.dtype)
    # In the array's dtype: unpickling an object array stores its "?" as a "<U1" array.
    fill = np.asarray(fill).astype(value.dtype)[()]
    hasher.update(b"m")
    _feed(hasher, (value._baseclass, bool(value.hardmask), fill))
    _feed_ndarray(hasher, value.view(np.ndarray))
    _feed_ndarray(hasher, np.ma.getmaskarray(value))


def _dtype_token(dtype: Any) -> bytes:
    # dtype.str keeps byte order and datetime units; for a structured dtype it
    # is only "|V16", so the field layout is spelled out.
    return (str(dtype.descr) if dtype.names else dtype.str).encode()


def _feed_ndarray(hasher: Any, array: Any) -> None:
    import numpy as np

    _put(hasher, b"a", _dtype_token(array.dtype))
    _feed(hasher, array.shape)
    if array.dtype == object:
        _feed_objects(hasher, array.ravel())
    elif array.dtype.hasobject:
        _feed_pickle(hasher, array)
    else:
        # A uint8 view, since numpy does not export datetime64 through the buffer protocol.
        flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        _put_buffer(hasher, b"b", flat, flat.size)


def _feed_objects(hasher: Any, values: Any) -> None:
    """An object array: fast through Arrow when every item is text (or every one bytes)."""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        try:
            # from_pandas=False keeps None and NaN apart (NaN makes it fail).
            arrow = pa.array(values, from_pandas=False)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            arrow = None
        if arrow is not None and (
            pa.types.is_string(arrow.type)
            or pa.types.is_large_string(arrow.type)
            or pa.types.is_binary(arrow.type)
            or pa.types.is_large_binary(arrow.type)
        ):
            hasher.update(b"s")
            _feed_arrow_array(hasher, arrow)
            return
    # Anything else item by item: exact, and slow only for big mixed columns.
    hasher.update(b"O" + _pack_u64(len(values)))
    for item in values.tolist():
        _feed(hasher, item)


# --- pandas --------------------------------------------------------------------------------


def _feed_pandas(hasher: Any, value: Any) -> bool:
    import pandas as pd

    if isinstance(value, (pd.DataFrame, pd.Series)) and _enter(hasher, value):
        return True  # mutable, like an array
    if isinstance(value, pd.DataFrame):
        _put(hasher, b"F", _type_name(type(value)).encode())
        _feed_pd_index(hasher, value.columns)
        _feed_pd_index(hasher, value.index)
        for _, column in value.items():  # by position, so duplicate labels are fine
            _feed_pd_array(hasher, column.array)
        return True
    if isinstance(value, pd.Series):
        _put(hasher, b"R", _type_name(type(value)).encode())
        _feed(hasher, value.name)
        _feed_pd_index(hasher, value.index)
        _feed_pd_array(hasher, value.array)
        return True
    if isinstance(value, pd.Index):
        _feed_pd_index(hasher, value)
        return True
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):
        # Their datetime/timedelta base classes stop at microseconds.
        _put(hasher, b"Z", _type_name(type(value)).encode())
        ticks = int(value.asm8.view("i8"))  # in value.unit; UTC for an aware Timestamp
        _feed(hasher, (ticks, value.unit, str(getattr(value, "tz", None))))
        return True
    return False


def _feed_pd_index(hasher: Any, index: Any) -> None:
    import numpy as np
    import pandas as pd

    _put(hasher, b"x", _type_name(type(index)).encode())
    _feed(hasher, list(index.names))
    if isinstance(index, pd.RangeIndex):  # without materializing it
        _feed(hasher, (index.start, index.stop, index.step))
    elif isinstance(index, pd.MultiIndex):
        for level, codes in zip(index.levels, index.codes, strict=True):
            _feed_pd_index(hasher, level)
            _feed_ndarray(hasher, np.asarray(codes))
    else:
        _feed_pd_array(hasher, index.array)


def _feed_pd_array(hasher: Any, array: Any) -> None:
    import numpy as np
    import pandas as pd

    dtype = array.dtype
    _put(hasher, b"T", str(dtype).encode())
    if isinstance(array, pd.Categorical):
        _feed(hasher, bool(dtype.ordered))
        _feed_pd_index(hasher, dtype.categories)
        _feed_ndarray(hasher, array.codes)
    elif isinstance(array, pd.arrays.NumpyExtensionArray) or isinstance(dtype, np.dtype):
        _feed_ndarray(hasher, np.asarray(array))  # numpy-backed, naive datetimes: no copy
    elif hasattr(array, "__arrow_array__"):  # str, ArrowDtype, nullable ints...
        _feed_arrow_value(hasher, array.__arrow_array__())
    else:  # tz-aware datetimes, periods, intervals, sparse: pandas' own stable hash
        _feed_ndarray(hasher, pd.util.hash_array(array))


# --- pyarrow -------------------------------------------------------------------------------


def _feed_pyarrow(hasher: Any, value: Any) -> bool:
    import pyarrow as pa

    if isinstance(value, (pa.Table, pa.RecordBatch)):
        _put(hasher, b"W", _type_name(type(value)).encode())
        schema = value.schema.serialize()
        _put_buffer(hasher, b"h", schema, schema.size)
        _feed(hasher, value.num_rows)
        for column in value.columns:
            _feed_arrow_value(hasher, column)
        return True
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        _put(hasher, b"V", _type_name(type(value)).encode())
        _feed_arrow_value(hasher, value)
        return True
    return False


def _feed_arrow_value(hasher: Any, value: Any) -> None:
    """An Arrow Array or ChunkedArray, as one chunk.

    The same rows chunked differently are one value: ``pd.concat`` leaves a
    column in two chunks that a pickle round trip makes one, and the restored
    frame must hash as the original did. Several chunks are combined first (a
    copy, paid only then); one chunk hashes exactly as an Array.
    """
    import pyarrow as pa

    if isinstance(value, pa.ChunkedArray):
        value = value.chunk(0) if value.num_chunks == 1 else value.combine_chunks()
    _put(hasher, b"k", str(value.type).encode())
    hasher.update(_pack_u64(len(value)) + _pack_u64(1))
    _feed_arrow_array(hasher, value)


def _feed_arrow_array(hasher: Any, array: Any) -> None:
    import pyarrow as pa

    kind = array.type
    hasher.update(b"r" + _pack_u64(len(array)) + _pack_u64(array.null_count))
    if pa.types.is_dictionary(kind):
        _feed_arrow_array(hasher, array.indices)
        _feed_arrow_array(hasher, array.dictionary)
        return
    if kind.num_fields or isinstance(kind, pa.ExtensionType):
        # Nested arrays have child offsets that buffers() does not show; the IPC
        # encoder writes them out exactly, so hash that.
        message = pa.record_batch([array], names=[""]).serialize()
        _put_buffer(hasher, b"i", message, message.size)
        return
    if array.offset:
        # A slice shares its parent's buffers: copy out just its rows, so a small
        # slice of a big array hashes fast and equal slices hash alike.
        array = pa.concat_arrays([array])
    for position, buffer in enumerate(array.buffers()):
        if buffer is None or (position == 0 and array.null_count == 0):
            hasher.update(b"-")  # no validity bitmap, or one that says nothing
        else:
            _put_buffer(hasher, b"b", buffer, buffer.size)


# --- polars --------------------------------------------------------------------------------


def _feed_polars(hasher: Any, value: Any) -> bool:
    import polars as pl

    if not isinstance(value, (pl.DataFrame, pl.Series)):
        return False
    try:
        # The newest level keeps polars' string views: zero-copy (the default copies).
        arrow = value.to_arrow(compat_level=pl.CompatLevel.newest())
    except (pl.exceptions.PolarsError, TypeError, ValueError):  # e.g. Object columns
        return False
    _put(hasher, b"L", _type_name(type(value)).encode())
    if isinstance(value, pl.Series):
        _feed(hasher, value.name)
    _feed_pyarrow(hasher, arrow)
    return True


_LIBRARIES: dict[str, Callable[[Any, Any], bool]] = {
    "numpy": _feed_numpy,
    "pandas": _feed_pandas,
    "pyarrow": _feed_pyarrow,
    "polars": _feed_polars,
}
