"""numpy arrays and pandas objects: their buffers fed without copying."""

from __future__ import annotations

import sys
from typing import Any

from kernelflow.hashing._arrow import _feed_arrow_array, _feed_arrow_value
from kernelflow.hashing._objects import _feed_pickle
from kernelflow.hashing._walk import _enter, _feed, _pack_u64, _put, _put_buffer, _type_name

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
