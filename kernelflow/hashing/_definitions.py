"""Classes and functions: by ``module.qualname`` when importable, else by value."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

from kernelflow.hashing._builtins import _HEAPTYPE, _enc_cell, _enc_str
from kernelflow.hashing._walk import _EXACT, _feed, _new_hasher, _pack_u64, _Walk

# Members of a class's __dict__ that are not part of what the class does: the
# descriptors for instance dicts, and ABCMeta's cache of subclass checks.
_CLASS_SKIP = frozenset({"__dict__", "__weakref__", "_abc_impl", "__module__", "__qualname__"})


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


_EXACT[type] = _enc_class
_EXACT[types.FunctionType] = _enc_function
