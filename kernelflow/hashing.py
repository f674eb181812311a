"""Stable, fast hashes of Python values, for cache keys.

A value is hashed by streaming a canonical, type-tagged encoding of it into one
xxh3_128 hasher:

- Every piece starts with a tag naming its type and every variable-length piece
  carries its length, so different values cannot encode alike: ``1``, ``True``
  and ``1.0`` differ, and so do ``("ab", "c")`` and ``("a", "bc")``.
- Sets are ordered by the digest of each element and dicts by the digest of each
  key, never by iteration order: the order of a set of strings changes with
  ``PYTHONHASHSEED``, so it would change the key from one process to the next.
- Arrays and tables feed their raw buffers to the hasher without copying them;
  numpy, pandas, pyarrow and polars are only touched when the value comes from
  them, so hashing a dict never imports pandas.
- Anything else is pickled with cloudpickle and the pickle is hashed. A value
  that cannot be pickled raises :class:`~kernelflow.errors.HashingError` naming
  the argument.

A hash is the same in every process and run of one environment. Two caveats,
each of which can only cause a cache miss, never a wrong hit: a pickled value's
bytes may change with library versions, and a pyarrow or polars value hashes
chunk by chunk, so the same rows chunked differently hash differently.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
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
_pack_u64 = struct.Struct("<Q").pack
_pack_f64 = struct.Struct("<d").pack
_pack_timedelta = struct.Struct("<qqq").pack


def hash_value(value: Any, *, name: str | None = None) -> str:
    """Hash ``value`` to a hex xxh3_128 digest that is stable across processes.

    Parameters
    ----------
    value
        Any value: builtins, containers, dates, numpy arrays, pandas, pyarrow and
        polars objects are hashed natively; anything else through cloudpickle.
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
    """
    hasher = _new_hasher()
    try:
        try:
            _feed(hasher, value)
        except RecursionError:
            # A container holding itself (or nested thousands deep): pickle tracks
            # objects it has seen, our walk does not.
            hasher = _new_hasher()
            _feed_pickle(hasher, value)
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
    """Internal: ``culprit`` could not be pickled; carried up to name the argument."""

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


# --- the encoding --------------------------------------------------------------------------


def _put(hasher: Any, tag: bytes, data: bytes | bytearray) -> None:
    hasher.update(tag + _pack_u64(len(data)))
    hasher.update(data)


def _put_buffer(hasher: Any, tag: bytes, buffer: Any, nbytes: int) -> None:
    # For numpy arrays and Arrow buffers: len() would count items, not bytes.
    hasher.update(tag + _pack_u64(nbytes))
    hasher.update(buffer)


def _digest(value: Any) -> bytes:
    hasher = _new_hasher()
    _feed(hasher, value)
    return hasher.digest()


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
    _put(hasher, b"I", value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True))


def _enc_float(hasher: Any, value: float) -> None:
    # All NaNs are one value to Python; their bit patterns are not.
    hasher.update(b"D" + _pack_f64(math.nan if value != value else value))


def _enc_complex(hasher: Any, value: complex) -> None:
    hasher.update(b"C")
    _enc_float(hasher, value.real)
    _enc_float(hasher, value.imag)


def _enc_str(hasher: Any, value: str) -> None:
    _put(hasher, b"S", value.encode("utf-8", "surrogatepass"))


def _enc_bytes(hasher: Any, value: bytes) -> None:
    _put(hasher, b"Y", value)


def _enc_bytearray(hasher: Any, value: bytearray) -> None:
    _put(hasher, b"y", value)


def _enc_sequence(tag: bytes) -> Callable[[Any, Any], None]:
    def encode(hasher: Any, value: Any) -> None:
        hasher.update(tag + _pack_u64(len(value)))
        for item in value:
            _feed(hasher, item)

    return encode


def _enc_dict(hasher: Any, value: dict) -> None:
    hasher.update(b"{" + _pack_u64(len(value)))
    # Sort by key digest: stable, and works for keys that do not compare (1 and "a").
    for key_digest, item in sorted(
        ((_digest(k), v) for k, v in value.items()), key=lambda pair: pair[0]
    ):
        hasher.update(key_digest)
        _feed(hasher, item)


def _enc_set(tag: bytes) -> Callable[[Any, Any], None]:
    def encode(hasher: Any, value: Any) -> None:
        hasher.update(tag + _pack_u64(len(value)))
        for item_digest in sorted(_digest(item) for item in value):
            hasher.update(item_digest)

    return encode


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


def _enc_code(hasher: Any, value: types.CodeType) -> None:
    # The fallback of source_hash: bytecode plus the names and constants it uses
    # (``f(x)`` and ``g(x)`` differ only in co_names). Nested code objects are
    # constants and recurse here; repr() of them would contain an address.
    _put(hasher, b"Q", value.co_code)
    _feed(hasher, (value.co_argcount, value.co_names, value.co_varnames, value.co_consts))


_EXACT: dict[type, Callable[[Any, Any], None]] = {
    type(None): _enc_none,
    bool: _enc_bool,
    int: _enc_int,
    float: _enc_float,
    complex: _enc_complex,
    str: _enc_str,
    bytes: _enc_bytes,
    bytearray: _enc_bytearray,
    tuple: _enc_sequence(b"("),
    list: _enc_sequence(b"["),
    dict: _enc_dict,
    set: _enc_set(b"<"),
    frozenset: _enc_set(b">"),
    _dt.datetime: _enc_datetime,
    _dt.date: _enc_date,
    _dt.time: _enc_datetime,
    _dt.timedelta: _enc_timedelta,
    decimal.Decimal: _enc_decimal,
    uuid.UUID: _enc_uuid,
    types.CodeType: _enc_code,
}


def _feed_other(hasher: Any, value: Any) -> None:
    cls = type(value)
    if isinstance(value, enum.Enum):
        _put(hasher, b"E", _type_name(cls).encode())
        _feed(hasher, value.value)
        return
    library = _LIBRARIES.get(cls.__module__.partition(".")[0])
    if library is not None and library(hasher, value):
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _put(hasher, b"A", _type_name(cls).encode())
        for field in dataclasses.fields(value):
            _enc_str(hasher, field.name)
            _feed(hasher, getattr(value, field.name))
        return
    if isinstance(value, pathlib.PurePath):
        _enc_path(hasher, value)
        return
    # A subclass of a builtin (a namedtuple, an OrderedDict, a str subclass):
    # encode as its base, tagged with the subclass so the two never collide.
    for base in cls.__mro__[1:]:
        encode = _EXACT.get(base)
        if encode is not None:
            _put(hasher, b"K", _type_name(cls).encode())
            encode(hasher, value)
            return
    _feed_pickle(hasher, value)


def _feed_pickle(hasher: Any, value: Any) -> None:
    import cloudpickle

    try:
        data = cloudpickle.dumps(value, protocol=5)
    except Exception as exc:  # pickling runs arbitrary __reduce__ code; any failure counts
        raise _Unhashable(value) from exc
    _put(hasher, b"P", data)


# --- numpy ---------------------------------------------------------------------------------


def _feed_numpy(hasher: Any, value: Any) -> bool:
    import numpy as np

    if isinstance(value, np.generic):
        if value.dtype.hasobject:
            return False
        _put(hasher, b"g", _dtype_token(value.dtype))
        hasher.update(value.tobytes())
        return True
    # Subclasses such as masked arrays carry more than the buffer: they are pickled.
    if type(value) is np.ndarray or type(value) is np.memmap:
        _feed_ndarray(hasher, value)
        return True
    return False


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
    """An Arrow Array or ChunkedArray, chunk by chunk."""
    import pyarrow as pa

    chunks = value.chunks if isinstance(value, pa.ChunkedArray) else [value]
    _put(hasher, b"k", str(value.type).encode())
    hasher.update(_pack_u64(len(value)) + _pack_u64(len(chunks)))
    for chunk in chunks:
        _feed_arrow_array(hasher, chunk)


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
