"""A cell's outputs and the inputs it changed in place, saved together so identity survives.

Everything a run leaves behind is pickled into one *bundle* (cloudpickle,
protocol 5), so two outputs that were one object come back as one object, and
``fig.axes[0] is ax`` still holds. Three kinds of objects are not pickled
with it but referenced (pickle's persistent ids):

``("ns", name, path)``
    An object that belongs to an input the run did not change: the input
    itself (``model2 = model``) or a part of it reached by attributes, items
    and keys (``scaler = pipe.steps[0][1]``). On a hit the input hashes as it
    did, so following the same path in the live namespace finds the object
    running the cell would have returned. Inputs the run changed are
    referenced by name too, and their new state is put back into the live
    object (see below), so every reference to them stays valid.
``("view", name, path, offset, shape, strides, dtype)``
    A numpy array that is a view of such an array: restored as a view of the
    live array, sharing its memory, when the live array has the same layout.
``("table", path, checksum)``
    A pandas or polars DataFrame or Arrow table: written through
    :mod:`kernelflow.results` (memory-mapped on load), so an 80 MB frame loads
    as fast as ``joblib.Memory``.

Inputs changed in place (``model.fit(X, y)``, ``df["e"] = 1``,
``lst.append(5)``) are saved as copies of their new state and, on a hit,
*transplanted* into the live object: every other reference to it sees the
change, as after running the cell. Objects kernelflow cannot restore
faithfully (open files, sockets, locks, threads, generators; an input of a
type it cannot update in place) make :func:`save` raise :class:`Unsaveable`
naming them: the cell then runs uncached, with one warning. A *closed* file
(``with open(...) as f:``) comes back as a :class:`ClosedFile` with its name
and mode.
"""

from __future__ import annotations

import collections
import copy
import io
import pickle
import sys
import types
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ClosedFile",
    "PartMap",
    "Unsaveable",
    "load",
    "map_parts",
    "save",
    "transplantable",
]

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


class Unsaveable(Exception):
    """Objects that cannot be saved and restored faithfully: name -> why."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(problems)
        self.problems = problems


class _Refused(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class ClosedFile:
    """What a closed file (``with open(...) as f:``) comes back as from the cache.

    A closed file has nothing left but its name and mode; this stand-in keeps
    them, and refuses I/O the way the closed file does.
    """

    closed = True

    def __init__(self, name: Any, mode: str, kind: str) -> None:
        self.name = name
        self.mode = mode
        self.kind = kind

    def _closed(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("I/O operation on closed file.")

    read = readline = readlines = write = writelines = _closed
    seek = tell = flush = fileno = truncate = __iter__ = __enter__ = _closed

    def close(self) -> None:
        """Closing a closed file does nothing, as for a real one."""

    def __repr__(self) -> str:
        return f"<closed {self.kind} name={self.name!r} mode={self.mode!r}>"


def _closed_file(obj: Any) -> tuple | None:
    """The persistent id of a closed file (None for anything else)."""
    if not isinstance(obj, io.IOBase) or isinstance(obj, (io.StringIO, io.BytesIO)):
        return None
    try:
        if not obj.closed:
            return None
        name = getattr(obj, "name", None)
        mode = getattr(obj, "mode", "")
    except Exception:  # a file-like object with odd properties: treated as open
        return None
    return ("closed", name if isinstance(name, (str, int)) else None, str(mode), type(obj).__name__)


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


class _Pickler:
    """Builds the bundle's pickle; see the module docstring for the persistent ids."""

    def __init__(self, parts: PartMap, task_name: str, by_value: set[int]) -> None:
        import cloudpickle

        self.refs = {k: v for k, v in parts.paths.items() if k not in by_value}
        self.alive = parts.alive
        self.owners: dict[int, Any] | None = None
        self.task_name = task_name
        self.tables: list[dict[str, str]] = []
        self.top: Any = None
        outer = self

        class Pickler(cloudpickle.Pickler):
            def persistent_id(self, obj: Any) -> Any:
                return outer.persistent_id(obj)

        self._cls = Pickler

    def dumps(self, value: Any) -> bytes:
        buffer = io.BytesIO()
        self._cls(buffer, protocol=5).dump(value)
        return buffer.getvalue()

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, _ATOMS):
            return None
        ref = self.refs.get(id(obj))
        if ref is not None and obj is not self.top:
            return ("ns", *ref)
        why = _unfaithful(obj)
        if why is not None:
            closed = _closed_file(obj)
            if closed is not None:
                return closed
            raise _Refused(why)
        cls = type(obj)
        if _is_table(cls):
            from kernelflow.results import write_result

            record = write_result(obj, task_name=self.task_name)
            self.tables.append({"path": record.path, "checksum": record.checksum})
            return ("table", record.path, record.checksum)
        if cls.__name__ == "ndarray" and cls.__module__ == "numpy" and obj.base is not None:
            return self._view(obj)
        return None

    def _view(self, array: Any) -> Any:
        # numpy points every view at the object owning the memory (x[:, 1] and x both
        # at the arange x was reshaped from): find an input array with that owner.
        if self.owners is None:
            self.owners = {}
            for obj in self.alive:
                if type(obj) is type(array) and (obj.flags.c_contiguous or obj.flags.f_contiguous):
                    owner = obj if obj.base is None else obj.base
                    self.owners.setdefault(id(owner), obj)
        root = self.owners.get(id(array.base))
        ref = self.refs.get(id(root)) if root is not None else None
        if ref is None:
            return None
        start = root.__array_interface__["data"][0]
        offset = array.__array_interface__["data"][0] - start
        layout = (root.shape, root.strides, root.dtype.str)
        return ("view", *ref, offset, array.shape, array.strides, array.dtype.str, layout)


def _is_table(cls: type) -> bool:
    return (cls.__module__.partition(".")[0], cls.__name__) in {
        ("pandas", "DataFrame"),
        ("polars", "DataFrame"),
        ("pyarrow", "Table"),
    }


def save(
    outputs: dict[str, Any],
    changed: dict[str, Any],
    parts: PartMap,
    task_name: str,
) -> dict[str, Any]:
    """Pickle a run's outputs and changed inputs into one bundle.

    Parameters
    ----------
    outputs
        Name -> value of each output.
    changed
        Name -> value of each input the run changed in place.
    parts
        The inputs' parts as they were before the run (:func:`map_parts`).
    task_name
        The cell's name, for the result files of tables.

    Raises
    ------
    Unsaveable
        Naming each output or changed input that cannot be saved faithfully.
    """
    problems: dict[str, str] = {}
    updated: dict[tuple[str, tuple], Any] = {}
    by_value: set[int] = set()
    for name, value in changed.items():
        # The input and every part of it that existed before the run get their new
        # state put back into them on a hit: whoever else holds them sees it.
        for obj in _walk(value):
            where = parts.paths.get(id(obj))
            if where is None:
                continue
            if transplantable(obj):
                updated[where] = obj
            elif obj is value:
                problems[name] = f"changed in place, and a {_type_name(value)} cannot be updated"
            elif not _immutable(obj):
                # It may have changed too, and cannot be updated: a copy of its new
                # state is saved instead (whoever else holds it keeps the old one).
                by_value.add(id(obj))
    if problems:
        raise Unsaveable(problems)
    pickler = _Pickler(parts, task_name, by_value)
    items = [(("o", name, ()), value) for name, value in outputs.items()]
    items += [(("c", *where), _state_copy(obj)) for where, obj in updated.items()]
    # One pickle for all of them keeps shared references shared; done per item
    # only when that fails, to name the culprit.
    try:
        data = pickler.dumps(dict(items))
    except Exception:
        for (_, name, _), value in items:
            pickler.top = value
            try:
                pickler.dumps(value)
            except _Refused as exc:
                problems[name] = exc.why
            except Exception as exc:  # pickling runs the value's own __reduce__
                problems[name] = f"cannot be pickled ({type(exc).__name__})"
        raise Unsaveable(problems or {"?": "cannot be pickled"}) from None
    return {"data": data, "tables": pickler.tables}


def load(bundle: dict[str, Any], namespace: dict[str, Any]) -> dict[str, Any]:
    """Restore a bundle: returns the outputs; changed inputs are updated in place.

    Raises
    ------
    ResultMissingError
        A file is gone or corrupt, or a referenced object or view cannot be
        found as it was (the caller runs the cell instead).
    """
    from kernelflow.errors import ResultMissingError

    try:
        loaded = _Unpickler(io.BytesIO(bundle["data"]), namespace).load()
    except ResultMissingError:
        raise
    except Exception as exc:  # a class renamed or removed since, a path gone
        raise ResultMissingError(f"Cannot load the cached outputs: {exc}") from exc
    outputs: dict[str, Any] = {}
    updates = []
    for (kind, name, path), value in loaded.items():
        if kind == "o":
            outputs[name] = value
            continue
        live = _follow(namespace, name, path)
        updates.append((_checked_updater(live, value), live, value))
    # Checked all first: an input updated and then a failure would leave it half-restored.
    for update, live, value in updates:
        update(live, value)
    return outputs


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, namespace: dict[str, Any]) -> None:
        super().__init__(file)
        self.namespace = namespace

    def persistent_load(self, pid: Any) -> Any:
        from kernelflow.errors import ResultMissingError

        kind = pid[0]
        if kind == "table":
            from kernelflow.results import read_result

            return read_result(pid[1], pid[2])
        if kind == "ns":
            return _follow(self.namespace, pid[1], pid[2])
        if kind == "closed":
            return ClosedFile(*pid[1:])
        if kind == "view":
            _, name, path, offset, shape, strides, dtype, layout = pid
            root = _follow(self.namespace, name, path)
            if (root.shape, root.strides, root.dtype.str) != layout:
                raise ResultMissingError(f"input {name!r} no longer has the layout it had")
            import numpy as np

            return np.ndarray(shape, dtype, buffer=root, offset=offset, strides=strides)
        raise ResultMissingError(f"unknown reference {kind!r} in cached outputs")


def _follow(namespace: dict[str, Any], name: str, path: tuple) -> Any:
    from kernelflow.errors import ResultMissingError
    from kernelflow.kernel.dependencies import lookup

    try:
        value = lookup(namespace, name)
        for step, key in path:
            value = vars(value)[key] if step == "a" else value[key]
        return value
    except (KeyError, IndexError, TypeError) as exc:
        raise ResultMissingError(f"input {name!r} no longer holds what it held") from exc


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


# --- in-place updates ----------------------------------------------------------------------


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
