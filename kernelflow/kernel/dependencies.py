"""What a cell's inputs are, for its cache key: values, helpers, modules, libraries.

Each name a cell reads from the namespace is sorted into one of four kinds:

``data``
    An ordinary value: keyed on its value hash (:func:`kernelflow.hashing.hash_value`).
    A value whose class comes from a user module also keys on that module.
``helper``
    A function or class defined in the notebook (module ``__main__``) or in a
    *user module* (see below), a ``@task``/``@flow`` or other
    ``functools.wraps`` wrapper of one, a bound method of one (its instance
    is keyed too), or a ``functools.partial`` of one (its arguments are keyed
    too). Keyed on its compiled code, default values and closure contents
    (see :func:`helper_hash`), so comments and blank lines do not count.
    Helpers are followed transitively: the globals a helper's code loads are
    sorted the same way in the helper's own module, so editing a function that
    a helper calls invalidates the cell, and a global value a helper reads (a
    threshold, a lookup table) becomes a data input of the cell.
``module``
    A *user module*: one whose file lies outside the Python installation and
    its site-packages (a ``.py`` file next to the notebook, a package being
    developed). Keyed on its source file's content, so an edit followed by
    ``importlib.reload`` or ``%autoreload`` is a miss; the attributes the cell
    (or a helper) reads from it (``mymod.SCALE``) are inputs in their own
    right, named ``mymod.SCALE``.
``library``
    A module of the installation, or a function or class imported from one:
    keyed on its import name and version, never on its bytes.

Inspecting a value may run user code (properties, ``__getattr__``); any
exception there makes the value plain data, which is then hashed (or reported
by name when even that fails).
"""

from __future__ import annotations

import dis
import functools
import os
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Dependencies",
    "find_dependencies",
    "helper_hash",
    "lookup",
    "module_named",
    "user_module_file",
]

_MAIN = "__main__"
_GLOBAL_LOADS = {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"}
_ATTRIBUTE_LOADS = {"LOAD_ATTR", "LOAD_METHOD"}


@dataclass
class Dependencies:
    """The inputs of a cell, sorted by kind.

    Attributes
    ----------
    data
        Name -> value of plain values, in the order found (direct reads first).
        Names read from a module are qualified (``mymod.SCALE``).
    helpers
        Helper name -> hash of its code, defaults and closure.
    modules
        User module name -> hash of its source file.
    libraries
        Library name -> a hash of its import path and version.
    via
        For data names found inside helpers or modules only: who reads them.
    unhashable
        Helper name -> why part of it (a closure value, a partial's argument,
        a bound method's instance) cannot be hashed.
    """

    data: dict[str, Any] = field(default_factory=dict)
    helpers: dict[str, str] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)
    via: dict[str, str] = field(default_factory=dict)
    unhashable: dict[str, str] = field(default_factory=dict)


def find_dependencies(
    names: Iterable[str],
    namespace: dict[str, Any],
    attributes: dict[str, tuple[str, ...]] | None = None,
) -> Dependencies:
    """Sort ``names`` (present in ``namespace``) and follow helpers transitively.

    ``attributes`` maps a name to the attributes read from it (``mymod.SCALE``
    gives ``{"mymod": ("SCALE",)}``); they matter when the name is a user module.
    """
    deps = Dependencies()
    seen: set[str] = set()
    # (qualified name, who reads it, the dict it lives in, its key there, attributes read)
    pending: list[tuple[str, str | None, dict[str, Any], str, tuple[str, ...]]] = [
        (name, None, namespace, name, (attributes or {}).get(name, ())) for name in names
    ]
    while pending:
        qualified, reader, space, key, read_attributes = pending.pop(0)
        if qualified in seen or key not in space:
            continue
        seen.add(qualified)
        value = space[key]
        kind, target = _classify(value)
        if kind == "helper":
            try:
                deps.helpers[qualified] = _callable_hash(value, target)
            except Exception as exc:  # HashingError, or a value whose pickling raises
                deps.unhashable[qualified] = str(exc)
            home, prefix = _home_of(target, namespace)
            if home is not None:
                code_attributes = _code_attributes(target)
                pending.extend(
                    (prefix + used, qualified, home, used, code_attributes.get(used, ()))
                    for used in _globals_used(target)
                )
        elif kind == "module":
            deps.modules[qualified] = _module_hash(target)
            module_dict = vars(target)
            pending.extend(
                (f"{qualified}.{attribute}", qualified, module_dict, attribute, ())
                for attribute in read_attributes
            )
        elif kind == "library":
            deps.libraries[qualified] = _library_hash(value)
        else:
            deps.data[qualified] = value
            if reader is not None:
                deps.via[qualified] = reader
            owner = _user_module_of_type(value)
            if owner is not None:
                deps.modules.setdefault(owner.__name__, _module_hash(owner))
    return deps


def lookup(namespace: dict[str, Any], name: str) -> Any:
    """The value of an input by (possibly qualified) name; KeyError if gone."""
    if name in namespace:
        return namespace[name]
    head, _, attribute = name.rpartition(".")
    owner = module_named(namespace, head)
    if owner is not None and attribute in vars(owner):
        return vars(owner)[attribute]
    raise KeyError(name)


def module_named(namespace: dict[str, Any], name: str) -> types.ModuleType | None:
    """The module a qualified input's prefix names: a notebook variable, else by import name."""
    owner = namespace.get(name)
    if not isinstance(owner, types.ModuleType):
        owner = sys.modules.get(name)
    return owner if isinstance(owner, types.ModuleType) else None


def _classify(value: Any) -> tuple[str, Any]:
    try:
        if isinstance(value, functools.partial):
            return ("helper", value.func) if _is_helper(_unwrap(value.func)) else ("data", value)
        target = _unwrap(value)
        if isinstance(target, types.ModuleType):
            return ("module" if user_module_file(target) else "library"), target
        if isinstance(target, (types.FunctionType, type)):
            return ("helper" if _is_helper(target) else "library"), target
        if isinstance(target, (types.BuiltinFunctionType, types.MethodType)):
            owner = getattr(target, "__func__", None)
            if owner is not None and _is_helper(_unwrap(owner)):
                return "helper", _unwrap(owner)
            return "library", target
    except Exception:  # a hostile __getattr__ or property: treat as a value
        return "data", value
    return "data", value


def _is_helper(target: Any) -> bool:
    if not isinstance(target, (types.FunctionType, type)):
        return False
    module = getattr(target, "__module__", None)
    if module == _MAIN:
        return True
    owner = sys.modules.get(module) if isinstance(module, str) else None
    return owner is not None and user_module_file(owner) is not None


def _unwrap(value: Any) -> Any:
    """The function behind ``@task``, ``@flow`` and ``functools.wraps`` wrappers."""
    for _ in range(10):
        inner = getattr(value, "__wrapped__", None)
        if inner is None or inner is value:
            break
        value = inner
    return value


def _callable_hash(value: Any, target: Any) -> str:
    """A helper's hash, with what a partial or a bound method adds to it."""
    from kernelflow.hashing import hash_bytes, hash_value

    digest = helper_hash(target)
    if isinstance(value, functools.partial):
        return hash_bytes("partial", digest, hash_value((value.args, value.keywords)))
    instance = getattr(_unwrap(value), "__self__", None)
    if instance is not None and not isinstance(instance, types.ModuleType):
        return hash_bytes("method", digest, hash_value(instance))
    return digest


_helper_memo: dict[types.CodeType, tuple[Any, str]] = {}


def helper_hash(target: Any) -> str:
    """Hash a notebook (or user-module) function or class by its code.

    A function is hashed by its compiled code (bytecode, names, constants,
    nested functions), its default values and the contents of its closure:
    comments, blank lines and formatting do not count, and the hash is the
    same for a function restored from the cache in a new kernel, whose source
    text may be gone. ``make_adder(5)`` and ``make_adder(10)`` differ.

    Raises
    ------
    HashingError
        A closure value cannot be hashed.
    """

    if target in _in_progress:  # a method's super() holds its class: a cycle
        return f"self:{target.__qualname__}"
    _in_progress.append(target)
    try:
        return _helper_hash(target)
    finally:
        _in_progress.pop()


_in_progress: list[Any] = []


def _helper_hash(target: Any) -> str:
    from kernelflow.hashing import hash_bytes

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
    digest = _code_hash(target)
    closure = target.__closure__
    if not closure:
        return digest
    return hash_bytes("closure", digest, *(_cell_text(cell) for cell in closure))


def _code_hash(target: types.FunctionType) -> str:
    from kernelflow.hashing import hash_bytes, hash_value

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


def _cell_text(cell: types.CellType) -> str:
    from kernelflow.hashing import hash_value

    try:
        value = cell.cell_contents
    except ValueError:  # an empty cell: a name the function assigns later
        return "empty"
    target = _unwrap(value)
    if isinstance(target, (types.FunctionType, type)) and _is_helper(target):
        return helper_hash(target)
    if isinstance(target, types.ModuleType):
        return _library_hash(target)
    return hash_value(value)


def _value_text(value: Any) -> str:
    from kernelflow.errors import HashingError
    from kernelflow.hashing import hash_value

    try:
        return hash_value(value)
    except HashingError:
        return type(value).__qualname__


def _home_of(target: Any, namespace: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The globals a helper's code reads from, and the prefix naming them."""
    module = getattr(target, "__module__", None)
    if module == _MAIN:
        # A notebook function reads the live notebook namespace (see outputs._rebind).
        return namespace, ""
    owner = sys.modules.get(module) if isinstance(module, str) else None
    if owner is None:
        return None, ""
    return vars(owner), f"{module}."


def _globals_used(target: Any) -> list[str]:
    """Global names the code of a function (or a class's methods) loads."""
    names: list[str] = []
    if isinstance(target, type):
        names.extend(b.__name__ for b in target.__bases__ if b.__module__ == target.__module__)
    for code in _codes_of(target):
        names.extend(_code_names(code)[0])
    return names


def _code_attributes(target: Any) -> dict[str, tuple[str, ...]]:
    """Global name -> attributes the code loads from it (``mymod.SCALE``)."""
    found: dict[str, tuple[str, ...]] = {}
    for code in _codes_of(target):
        for name, attributes in _code_names(code)[1].items():
            found[name] = tuple(dict.fromkeys(found.get(name, ()) + attributes))
    return found


def _codes_of(target: Any) -> list[types.CodeType]:
    if not isinstance(target, type):
        return [target.__code__]
    codes = []
    for member in vars(target).values():
        member = _unwrap(getattr(member, "__func__", member))
        if isinstance(member, types.FunctionType):
            codes.append(member.__code__)
    return codes


_names_memo: dict[types.CodeType, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]] = {}


def _code_names(code: types.CodeType) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(globals the code loads, global -> attributes loaded right after it)."""
    found = _names_memo.get(code)
    if found is not None:
        return found
    names: dict[str, None] = {}
    attributes: dict[str, dict[str, None]] = {}
    stack = [code]
    while stack:
        current = stack.pop()
        previous: str | None = None
        for instruction in dis.get_instructions(current):
            if instruction.opname in _GLOBAL_LOADS:
                previous = str(instruction.argval).removeprefix("NULL + ")
                names.setdefault(previous)
                continue
            if previous is not None and instruction.opname in _ATTRIBUTE_LOADS:
                attribute = str(instruction.argval).removeprefix("NULL|self + ")
                attributes.setdefault(previous, {}).setdefault(attribute)
            if instruction.opname not in ("CACHE", "EXTENDED_ARG", "PRECALL"):
                previous = None
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    found = (tuple(names), {k: tuple(v) for k, v in attributes.items()})
    if len(_names_memo) > 4096:
        _names_memo.clear()
    _names_memo[code] = found
    return found


# --- user modules --------------------------------------------------------------------------

_system_roots: tuple[str, ...] | None = None


def _installation_roots() -> tuple[str, ...]:
    """Folders whose modules are installed, not the user's: stdlib and site-packages."""
    global _system_roots
    if _system_roots is None:
        import site
        import sysconfig

        roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        roots.update(
            sysconfig.get_paths().get(key, "")
            for key in ("stdlib", "platstdlib", "purelib", "platlib")
        )
        try:
            roots.update(site.getsitepackages())
            roots.add(site.getusersitepackages())
        except AttributeError:  # a virtualenv's old site module
            pass
        _system_roots = tuple(os.path.join(os.path.realpath(root), "") for root in roots if root)
    return _system_roots


_module_files: dict[str, str | None] = {}


def user_module_file(module: types.ModuleType) -> str | None:
    """The source file of a user module (None for installed and built-in modules).

    kernelflow itself counts as installed, whatever way it was installed.
    """
    name = getattr(module, "__name__", None)
    if not isinstance(name, str) or name == _MAIN:
        return None
    if name in _module_files:
        return _module_files[name]
    found: str | None = None
    file = getattr(module, "__file__", None)
    if isinstance(file, str) and file.endswith(".py") and name.partition(".")[0] != "kernelflow":
        real = os.path.realpath(file)
        if not real.startswith(_installation_roots()):
            found = real
    _module_files[name] = found
    return found


def _module_hash(module: types.ModuleType) -> str:
    from kernelflow.hashing import hash_bytes
    from kernelflow.kernel.files import file_digest

    file = user_module_file(module) or ""
    return hash_bytes("user module", module.__name__, file_digest(file))


def _user_module_of_type(value: Any) -> types.ModuleType | None:
    module_name = getattr(type(value), "__module__", None)
    if not isinstance(module_name, str) or module_name in ("builtins", _MAIN):
        return None
    module = sys.modules.get(module_name)
    if module is None or user_module_file(module) is None:
        return None
    return module


def _library_hash(value: Any) -> str:
    from kernelflow.hashing import hash_bytes

    try:
        if isinstance(value, types.ModuleType):
            return hash_bytes("module", value.__name__, str(getattr(value, "__version__", "")))
        target = _unwrap(value)
        module = getattr(target, "__module__", None) or ""
        qualname = getattr(target, "__qualname__", None) or repr(target)
        top = module.partition(".")[0]
        version = str(getattr(sys.modules.get(top), "__version__", ""))
        return hash_bytes("library", module, qualname, version)
    except Exception:
        return hash_bytes("library", type(value).__qualname__)
