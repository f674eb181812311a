"""The encoder of each type not encoded by exact type: libraries, enums, pickled objects."""

from __future__ import annotations

import enum
import functools
import pathlib
from collections.abc import Callable
from typing import Any

from kernelflow.hashing._arrays import _feed_numpy, _feed_pandas
from kernelflow.hashing._arrow import _feed_polars, _feed_pyarrow
from kernelflow.hashing._builtins import _enc_path
from kernelflow.hashing._definitions import _enc_class
from kernelflow.hashing._objects import (
    _enc_enum,
    _enc_partial,
    _enc_pickle_buffer,
    _enc_serialized_model,
    _enc_set_subclass,
    _enc_typevar,
    _feed_object,
    _has_model_serializer,
)
from kernelflow.hashing._walk import _Walk


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


_LIBRARIES: dict[str, Callable[[Any, Any], bool]] = {
    "numpy": _feed_numpy,
    "pandas": _feed_pandas,
    "pyarrow": _feed_pyarrow,
    "polars": _feed_polars,
}
