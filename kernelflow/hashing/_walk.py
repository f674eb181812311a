"""The walk every hash goes through: the hasher, the numbering of shared objects, sorting.

See :mod:`kernelflow.hashing` for the encoding this implements. :func:`_feed`
routes a value to its encoder: ``_EXACT`` by exact type, else the router that
:mod:`._api` installs (:func:`set_router`).
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable
from typing import Any

import xxhash

_new_hasher = xxhash.xxh3_128
_digest_of = xxhash.xxh3_128_digest
_pack_u64 = struct.Struct("<Q").pack
_pack_f64 = struct.Struct("<d").pack
_pack_timedelta = struct.Struct("<qqq").pack
_PROTOCOL = 5  # the protocol cloudpickle writes with; its __reduce_ex__ results are what we encode


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


#: The encoder of each type encoded as exactly that type (not its subclasses).
#: The modules that define encoders add theirs when imported: :mod:`._builtins`,
#: :mod:`._definitions` and :mod:`._objects`.
_EXACT: dict[type, Callable[[Any, Any], None]] = {}


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
        self.cache: _Cache = _Cache() if parent is None else parent.cache


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


def _feed_other(w: _Walk, value: Any) -> None:
    cls = type(value)
    routes = w.cache.routes
    route = routes.get(id(cls))
    if route is None:
        route = routes[id(cls)] = (cls, _router(cls))
    route[1](w, value)


def _no_router(cls: type) -> Callable[[_Walk, Any], None]:
    raise RuntimeError("kernelflow.hashing._walk used before kernelflow.hashing was imported")


#: Picks the encoder of a type not in ``_EXACT``; :mod:`._api` sets it to
#: :func:`kernelflow.hashing._routes._route`, which knows every encoder (the walk
#: sits below the encoders, which call back into it).
_router: Callable[[type], Callable[[_Walk, Any], None]] = _no_router


def set_router(route: Callable[[type], Callable[[_Walk, Any], None]]) -> None:
    """Make ``route`` pick the encoder of each type the walk has no exact encoder for."""
    global _router
    _router = route
