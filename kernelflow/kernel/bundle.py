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

This module pickles and unpickles; mapping the inputs' parts before the run
is :mod:`.bundle_parts`'s job, updating live objects in place
:mod:`.bundle_updates`'s.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from kernelflow.kernel.bundle_parts import (
    _ATOMS,
    PartMap,
    _immutable,
    _is_table,
    _unfaithful,
    _walk,
    map_parts,
)
from kernelflow.kernel.bundle_updates import (
    _checked_updater,
    _state_copy,
    _type_name,
    transplantable,
)

# PartMap, map_parts and transplantable are re-exported: the bundle's API in one place.
__all__ = [
    "ClosedFile",
    "PartMap",
    "Unsaveable",
    "load",
    "map_parts",
    "save",
    "transplantable",
]


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
        if root is None:
            return None
        ref = self.refs.get(id(root))
        if ref is None:
            return None
        start = root.__array_interface__["data"][0]
        offset = array.__array_interface__["data"][0] - start
        layout = (root.shape, root.strides, root.dtype.str)
        return ("view", *ref, offset, array.shape, array.strides, array.dtype.str, layout)


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
