"""Other objects, through their pickle protocol; modules and builtins that reduce like them."""

from __future__ import annotations

import copyreg
import enum
import functools
import sys
import types
from collections.abc import Callable
from typing import Any

from kernelflow.hashing._builtins import _TUPLE_HEADS, _enc_list, _feed_dict_items, _feed_set_items
from kernelflow.hashing._definitions import _enc_class, _lookup, _reference
from kernelflow.hashing._walk import (
    _EXACT,
    _PROTOCOL,
    _enter,
    _feed,
    _feed_other,
    _pack_u64,
    _put,
    _put_buffer,
    _type_name,
    _Unhashable,
    _Walk,
)


def _enc_module(w: _Walk, module: types.ModuleType) -> None:
    name = getattr(module, "__name__", None)
    if isinstance(name, str) and sys.modules.get(name) is module:
        _put(w, b"M", name.encode())
    else:  # built on the fly: cloudpickle pickles its namespace
        _feed_pickle(w, module)


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


#: copyreg.__newobj__, which the type stubs leave out.
_COPYREG_NEWOBJ = vars(copyreg)["__newobj__"]
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
    newobj = func is _COPYREG_NEWOBJ and len(args) == 1 and args[0] is cls
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


_EXACT[types.ModuleType] = _enc_module
_EXACT[types.BuiltinFunctionType] = _enc_builtin
