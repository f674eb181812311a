"""Giving a live object the state a run left in its copy: inputs changed in place.

A ``%%task`` cell that changed an input in place (``model.fit(X, y)``,
``df["e"] = 1``, ``lst.append(5)``) has the input's new state saved in its
bundle; on a cache hit it is *transplanted* into the live object, so every
other reference to it sees the change, as after running the cell. This
module decides which objects can be updated so (:func:`transplantable`) and
how: lists, dicts, sets, numpy arrays and generators, pandas and polars
frames, and plain instances (scikit-learn estimators included).
"""

from __future__ import annotations

import collections
import copy
import sys
from typing import Any

from kernelflow.kernel.bundle_parts import _DICT_KINDS, _NOT_DATA, _unfaithful

__all__ = ["transplantable"]


def transplantable(value: Any) -> bool:
    """Whether an input changed in place can be given its new state on a hit."""
    return _updater(value) is not None


def _checked_updater(live: Any, saved: Any) -> Any:
    """The function that gives ``live`` the state of ``saved``, once sure it can."""
    from kernelflow.errors import ResultMissingError

    updater = _updater(live)
    fits = updater is not None and type(live) is type(saved)
    if fits and hasattr(live, "shape") and type(live).__module__ == "numpy":
        fits = live.shape == saved.shape and live.dtype == saved.dtype
    if not fits:
        raise ResultMissingError(f"cannot update a {_type_name(live)} in place")
    return updater


def _updater(value: Any) -> Any:
    cls = type(value)
    if cls in _UPDATERS:
        return _UPDATERS[cls]
    top = cls.__module__.partition(".")[0]
    if top == "numpy":
        return _update_numpy(value)
    if top == "pandas" and cls.__name__ in ("DataFrame", "Series"):
        return _update_pandas
    if top == "polars" and cls.__name__ in ("DataFrame", "Series"):
        return _update_polars
    if isinstance(value, _NOT_DATA):
        return None
    if cls in _DICT_KINDS:
        return _update_dict_kind
    if isinstance(value, (list, dict, set, bytearray)):
        return None  # a subclass: its own state may live outside the container
    state = getattr(value, "__dict__", None)
    if type(state) is not dict or _unfaithful(value) is not None:
        return None
    if getattr(cls, "__slots__", None):
        return None
    custom = _custom_state(cls)
    if custom and not _is_sklearn(cls):
        return None
    return _update_object


def _custom_state(cls: type) -> bool:
    """Whether a class keeps state pickle does not see as its ``__dict__``."""
    for attr in ("__reduce__", "__reduce_ex__", "__getstate__", "__setstate__"):
        defined = getattr(cls, attr, None)
        if defined is not None and defined is not getattr(object, attr, None):
            return True
    return False


def _is_sklearn(cls: type) -> bool:
    return any(base.__module__ == "sklearn.base" for base in cls.__mro__)


def _update_list(live: list, saved: list) -> None:
    live[:] = saved


def _update_dict(live: dict, saved: dict) -> None:
    live.clear()
    live.update(saved)


def _update_set(live: set, saved: set) -> None:
    live.clear()
    live.update(saved)


def _update_bytearray(live: bytearray, saved: bytearray) -> None:
    live[:] = saved


def _update_dict_kind(live: Any, saved: Any) -> None:
    if isinstance(live, collections.defaultdict):
        live.default_factory = saved.default_factory
    live.clear()
    live.update(saved)


def _update_object(live: Any, saved: Any) -> None:
    state = vars(live)
    state.clear()
    state.update(vars(saved))


_UPDATERS: dict[type, Any] = {
    list: _update_list,
    dict: _update_dict,
    set: _update_set,
    bytearray: _update_bytearray,
}


def _update_numpy(value: Any) -> Any:
    np = sys.modules["numpy"]
    if type(value) is np.ndarray:
        return np.copyto
    if isinstance(value, np.random.Generator):
        return lambda live, saved: setattr(live.bit_generator, "state", saved.bit_generator.state)
    if isinstance(value, np.random.RandomState):
        return lambda live, saved: live.set_state(saved.get_state())
    return None


def _update_pandas(live: Any, saved: Any) -> None:
    # The frame's data, labels and attrs; the live object keeps its identity and flags.
    object.__setattr__(live, "_mgr", saved._mgr)
    object.__setattr__(live, "_attrs", dict(saved.attrs))
    if "_name" in vars(saved):
        object.__setattr__(live, "_name", saved._name)
    live.flags.allows_duplicate_labels = saved.flags.allows_duplicate_labels


def _update_polars(live: Any, saved: Any) -> None:
    attribute = "_df" if type(live).__name__ == "DataFrame" else "_s"
    setattr(live, attribute, getattr(saved, attribute))


def _state_copy(value: Any) -> Any:
    """A new object holding ``value``'s current state (shallow: parts are shared)."""
    cls = type(value)
    if cls in (list, dict, set):
        return cls(value)
    if cls is bytearray:
        return bytearray(value)
    top = cls.__module__.partition(".")[0]
    if top == "pandas":
        return value.copy(deep=False)  # copy-on-write: the live frame is not affected
    if top == "polars":
        return value.clone()
    return copy.copy(value)


def _type_name(value: Any) -> str:
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
