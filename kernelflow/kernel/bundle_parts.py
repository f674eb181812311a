"""Where each object of a cell's inputs sits, and what kind of object it is (for the bundle).

Before a ``%%task`` cell runs, :func:`map_parts` maps its inputs and the
objects inside them (breadth-first through lists, tuples, dicts and instance
``__dict__``s, bounded per input), so that :mod:`kernelflow.kernel.bundle`
can reference an output that is one of them instead of pickling a copy.
The predicates here say which objects are plain values, tables, or things a
pickle would not bring back as themselves.
"""

from __future__ import annotations

import collections
import io
import types
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PartMap", "map_parts"]

_ATOMS = (int, float, complex, str, bytes, bool, type(None))
_NOT_DATA = (
    type,
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.ModuleType,
)
_DICT_KINDS = (collections.defaultdict, collections.OrderedDict, collections.Counter)
_WALK_LIMIT = 10_000  # objects visited per input when mapping its parts


def _unfaithful(obj: Any) -> str | None:
    """Why ``obj`` would not come back as itself from a pickle (None: it would)."""
    if isinstance(obj, io.IOBase) and not isinstance(obj, (io.StringIO, io.BytesIO)):
        return "an open file"
    if isinstance(obj, (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)):
        return "a generator"
    module = type(obj).__module__
    if module in ("socket", "ssl", "select", "selectors"):
        return "a socket"
    if module in ("_thread", "threading", "multiprocessing.synchronize", "subprocess", "queue"):
        return f"a {type(obj).__qualname__}"
    return None


def _is_table(cls: type) -> bool:
    return (cls.__module__.partition(".")[0], cls.__name__) in {
        ("pandas", "DataFrame"),
        ("polars", "DataFrame"),
        ("pyarrow", "Table"),
    }


@dataclass
class PartMap:
    """Where each object of the inputs sits, before the run: id -> (input name, path).

    ``alive`` holds every mapped object for as long as the map is used, so no
    object made during the run can take the id of one that was dropped.
    """

    paths: dict[int, tuple[str, tuple]] = field(default_factory=dict)
    alive: list[Any] = field(default_factory=list)


def map_parts(roots: dict[str, Any]) -> PartMap:
    """Map the inputs and the objects inside them (taken before the cell runs).

    Breadth-first through lists, tuples, dicts (simple keys) and instance
    ``__dict__``s, at most :data:`_WALK_LIMIT` objects per input: a part not
    reached is saved as a copy rather than referenced.
    """
    found = PartMap()
    for name, root in roots.items():
        if isinstance(root, _ATOMS) or id(root) in found.paths:
            continue
        found.paths[id(root)] = (name, ())
        found.alive.append(root)
        queue: deque[tuple[Any, tuple]] = deque([(root, ())])
        visited = 0
        while queue and visited < _WALK_LIMIT:
            obj, path = queue.popleft()
            visited += 1
            for step, child in _children(obj):
                visited += 1
                if isinstance(child, _ATOMS) or id(child) in found.paths:
                    continue
                child_path = (*path, step)
                found.paths[id(child)] = (name, child_path)
                found.alive.append(child)
                queue.append((child, child_path))
    return found


def _immutable(obj: Any) -> bool:
    """Whether ``obj`` has no state of its own to change (its parts may have)."""
    import enum

    return type(obj) in (tuple, frozenset, range) or isinstance(obj, (*_NOT_DATA, enum.Enum))


def _walk(root: Any) -> list[Any]:
    """``root`` and the objects inside it, as :func:`map_parts` sees them (bounded)."""
    seen = {id(root)}
    order = [root]
    queue: deque[Any] = deque([root])
    while queue and len(seen) < _WALK_LIMIT:
        for _, child in _children(queue.popleft()):
            if not isinstance(child, _ATOMS) and id(child) not in seen:
                seen.add(id(child))
                order.append(child)
                queue.append(child)
    return order


def _children(obj: Any) -> list[tuple[tuple[str, Any], Any]]:
    try:
        return _parts_of(obj)
    except Exception:  # a proxy whose attribute access runs code: not walked into
        return []


def _parts_of(obj: Any) -> list[tuple[tuple[str, Any], Any]]:
    cls = type(obj)
    if cls in (list, tuple):
        if len(obj) > _WALK_LIMIT:
            return []
        return [(("i", index), item) for index, item in enumerate(obj)]
    if cls is dict:
        if len(obj) > _WALK_LIMIT:
            return []
        return [(("k", key), value) for key, value in obj.items() if isinstance(key, _ATOMS)]
    if _is_table(cls) or cls.__module__.partition(".")[0] in ("numpy", "pandas", "polars"):
        return []  # their parts are not worth referencing, and views are handled apart
    attributes = getattr(obj, "__dict__", None)
    if type(attributes) is dict and cls.__module__ != "builtins":
        return [(("a", key), value) for key, value in attributes.items()]
    return []
