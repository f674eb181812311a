"""What a cell's inputs are, for its cache key: values, helpers, libraries.

Each name a cell reads from the namespace is sorted into one of three kinds:

``data``
    An ordinary value: keyed on its value hash (:func:`kernelflow.hashing.hash_value`).
``helper``
    A function or class defined in the notebook (module ``__main__``), or a
    ``@task``/``@flow`` or other ``functools.wraps`` wrapper of one: keyed on
    its compiled code and default values (see :func:`helper_hash`), so
    comments and blank lines do not count. Helpers are followed
    transitively: the globals a helper's code loads are sorted the same way,
    so editing a function that a helper calls invalidates the cell, and a
    global value a helper reads (a threshold, a lookup table) becomes a data
    input of the cell.
``library``
    A module, or a function or class imported from one: keyed on its import
    name (and a module's ``__version__``), never on its bytes.

Inspecting a value may run user code (properties, ``__getattr__``); any
exception there makes the value plain data, which is then hashed (or reported
by name when even that fails).
"""

from __future__ import annotations

import dis
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Dependencies", "find_dependencies", "helper_hash"]

_MAIN = "__main__"
_GLOBAL_LOADS = {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"}


@dataclass
class Dependencies:
    """The inputs of a cell, sorted by kind.

    Attributes
    ----------
    data
        Names of plain values, in the order found (direct reads first).
    helpers
        Helper name -> hash of its normalised source.
    libraries
        Library name -> a hash of its import path and version.
    via
        For data names found inside helpers only: the helper that reads them.
    """

    data: list[str] = field(default_factory=list)
    helpers: dict[str, str] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)
    via: dict[str, str] = field(default_factory=dict)


def find_dependencies(names: Iterable[str], namespace: dict[str, Any]) -> Dependencies:
    """Sort ``names`` (present in ``namespace``) and follow helpers transitively."""
    deps = Dependencies()
    seen: set[str] = set()
    pending: list[tuple[str, str | None]] = [(name, None) for name in names]
    while pending:
        name, reader = pending.pop(0)
        if name in seen or name not in namespace:
            continue
        seen.add(name)
        value = namespace[name]
        kind, target = _classify(value)
        if kind == "helper":
            deps.helpers[name] = helper_hash(target)
            pending.extend((used, name) for used in _globals_used(target))
        elif kind == "library":
            deps.libraries[name] = _library_hash(value)
        else:
            deps.data.append(name)
            if reader is not None:
                deps.via[name] = reader
    return deps


def _classify(value: Any) -> tuple[str, Any]:
    try:
        target = _unwrap(value)
        if isinstance(target, types.ModuleType):
            return "library", target
        if isinstance(target, (types.FunctionType, type)):
            if getattr(target, "__module__", None) == _MAIN:
                return "helper", target
            return "library", target
        if isinstance(target, (types.BuiltinFunctionType, types.MethodType)):
            owner = getattr(target, "__func__", None)
            if owner is not None and getattr(owner, "__module__", None) == _MAIN:
                return "helper", owner
            return "library", target
    except Exception:  # a hostile __getattr__ or property: treat as a value
        return "data", value
    return "data", value


def _unwrap(value: Any) -> Any:
    """The function behind ``@task``, ``@flow`` and ``functools.wraps`` wrappers."""
    for _ in range(10):
        inner = getattr(value, "__wrapped__", None)
        if inner is None or inner is value:
            break
        value = inner
    return value


_helper_memo: dict[types.CodeType, tuple[Any, str]] = {}


def helper_hash(target: Any) -> str:
    """Hash a notebook function or class by its code.

    A function is hashed by its compiled code (bytecode, names, constants,
    nested functions) and its default values: comments, blank lines and
    formatting do not count, and the hash is the same for a function restored
    from the cache in a new kernel, whose source text may be gone. Memoized
    per code object, which is replaced whenever the defining cell runs again.
    """
    from kernelflow.hashing import hash_bytes, hash_value

    if isinstance(target, type):
        parts = [f"class {target.__qualname__}"]
        parts.extend(f"{b.__module__}.{b.__qualname__}" for b in target.__bases__)
        for attr, member in sorted(vars(target).items()):
            member = _unwrap(getattr(member, "__func__", member))
            if isinstance(member, types.FunctionType):
                parts.append(f"{attr}={helper_hash(member)}")
            elif not attr.startswith("__"):
                parts.append(f"{attr}={_value_text(member)}")
        return hash_bytes(*parts)
    code = target.__code__
    defaults = (target.__defaults__, target.__kwdefaults__)
    memo = _helper_memo.get(code)
    if memo is not None and memo[0] == defaults:
        return memo[1]
    digest = hash_bytes("def", hash_value(code), _value_text(defaults))
    if len(_helper_memo) > 4096:
        _helper_memo.clear()
    try:
        _helper_memo[code] = (defaults, digest)
    except Exception:  # defaults whose == raises: just do not memoize
        pass
    return digest


def _value_text(value: Any) -> str:
    from kernelflow.errors import HashingError
    from kernelflow.hashing import hash_value

    try:
        return hash_value(value)
    except HashingError:
        return type(value).__qualname__


def _globals_used(target: Any) -> list[str]:
    """Global names the code of a function (or a class's methods) loads."""
    codes: list[types.CodeType] = []
    names: list[str] = []
    if isinstance(target, type):
        names.extend(b.__name__ for b in target.__bases__ if b.__module__ == _MAIN)
        for member in vars(target).values():
            member = _unwrap(getattr(member, "__func__", member))
            if isinstance(member, types.FunctionType):
                codes.append(member.__code__)
    else:
        codes.append(target.__code__)
    for code in codes:
        names.extend(_code_globals(code))
    return names


_globals_memo: dict[types.CodeType, tuple[str, ...]] = {}


def _code_globals(code: types.CodeType) -> tuple[str, ...]:
    found = _globals_memo.get(code)
    if found is not None:
        return found
    names: dict[str, None] = {}
    stack = [code]
    while stack:
        current = stack.pop()
        for instruction in dis.get_instructions(current):
            if instruction.opname in _GLOBAL_LOADS:
                names.setdefault(str(instruction.argval).removeprefix("NULL + "))
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    found = tuple(names)
    if len(_globals_memo) > 4096:
        _globals_memo.clear()
    _globals_memo[code] = found
    return found


def _library_hash(value: Any) -> str:
    from kernelflow.hashing import hash_bytes

    try:
        if isinstance(value, types.ModuleType):
            return hash_bytes("module", value.__name__, str(getattr(value, "__version__", "")))
        target = _unwrap(value)
        module = getattr(target, "__module__", None) or ""
        qualname = getattr(target, "__qualname__", None) or repr(target)
        top = module.partition(".")[0]
        import sys

        version = str(getattr(sys.modules.get(top), "__version__", ""))
        return hash_bytes("library", module, qualname, version)
    except Exception:
        return hash_bytes("library", type(value).__qualname__)
