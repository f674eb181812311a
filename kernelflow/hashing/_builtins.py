"""Encoders of builtin values: atoms (numbers, text, dates...), containers, code and cells."""

from __future__ import annotations

import datetime as _dt
import decimal
import math
import pathlib
import types
import uuid
from collections.abc import Callable
from typing import Any

from kernelflow.hashing._walk import (
    _EXACT,
    _backref,
    _enter,
    _feed,
    _feed_other,
    _pack_f64,
    _pack_timedelta,
    _pack_u64,
    _put,
    _put_dict_items,
    _put_set_items,
    _Walk,
)

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: classes created at run time (class statements)


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


# Typed loosely: a class's own __hash__ / __eq__ are compared to these by identity.
_object_hash: Callable[..., object] = object.__hash__
_object_eq: Callable[..., object] = object.__eq__


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

_EXACT.update(
    {
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
        # type and functions: in ._definitions; modules and builtins: in ._objects.
    }
)
