"""A ``%%task`` cell's outputs: serialized one by one, restored into the namespace.

The cached value of a cell run is a small *manifest*: the output names and the
inputs the run changed in place, each one's value hash (for lineage), the
*bundle* that holds them all (see :mod:`kernelflow.kernel.bundle`: one pickle,
so shared references stay shared, with tables written apart through
:mod:`kernelflow.results` so an 80 MB frame loads fast), the recorded printed
and displayed output, the final expression's formatted display, what the run
needs of and leaves in the global state (see :mod:`.hidden_state`), and when
the run started and how long it took (see ``docs/decisions/task-cell-caching.md``).
"""

from __future__ import annotations

import re
import time
import types
from typing import Any

from kernelflow.kernel.prepare import PreparedCell

__all__ = [
    "HIDDEN_NAMES",
    "MANIFEST_VERSION",
    "ReplayedResult",
    "identity_hash",
    "load_outputs",
    "make_manifest",
    "output_names",
    "render_cached_line",
    "save_outputs",
    "type_name",
]

#: IPython's own names in the user namespace, never inputs or outputs of a cell.
HIDDEN_NAMES = re.compile(r"^(_+|_i+|_i?\d+|_ih|_oh|_dh|In|Out|get_ipython|exit|quit)$")


def output_names(prepared: PreparedCell, shell: Any) -> list[str]:
    """The cell's outputs that exist after its run (conditional bindings may not)."""
    ns = shell.user_ns
    hidden = shell.user_ns_hidden
    return [
        name
        for name in prepared.analysis.outputs
        if name in ns
        and not HIDDEN_NAMES.match(name)
        and not (name in hidden and hidden[name] is ns[name])
    ]


def identity_hash(value: Any, name: str) -> str | None:
    """The hash a value is known by in lineage: by code for helpers, by value for data."""
    from kernelflow.kernel.dependencies import find_dependencies

    deps = find_dependencies([name], {name: value})
    if name in deps.helpers:
        return deps.helpers[name]
    if name in deps.libraries:
        return deps.libraries[name]
    from kernelflow.hashing import hash_value

    try:
        return hash_value(value, name=name)
    except Exception:  # an open file, a generator: lineage records it without a hash
        return None


MANIFEST_VERSION = 2


def make_manifest(
    prepared: PreparedCell, shell: Any, displays: list, value: Any, started: float, duration: float
) -> dict[str, Any]:
    """The manifest of a finished run, outputs not yet saved (see :func:`save_outputs`)."""
    ns = shell.user_ns
    names = output_names(prepared, shell)
    result = None
    if value is not None and not prepared.quiet:
        try:
            data, metadata = shell.display_formatter.format(value)
            result = (data, metadata)
        except Exception:  # a broken _repr_html_: IPython shows the error itself; not replayed
            result = None
    return {
        "version": MANIFEST_VERSION,
        "names": names,
        "changed": [],
        "hashes": {name: identity_hash(ns[name], name) for name in names},
        "bundle": None,
        "displays": list(displays),
        "after": [],
        "result": result,
        "started": started,
        "duration": duration,
        "globals": None,
    }


def save_outputs(
    manifest: dict[str, Any],
    changed: dict[str, Any],
    parts: Any,
    shell: Any,
    cell: str,
) -> dict[str, str]:
    """Serialize the outputs and changed inputs now, into ``manifest["bundle"]``.

    Returns what could not be saved faithfully (name -> why); empty when all was.
    See :mod:`kernelflow.kernel.bundle`.
    """
    from kernelflow.kernel.bundle import Unsaveable, save
    from kernelflow.kernel.dependencies import lookup

    ns = shell.user_ns
    # Names are the cell's own, or inputs it bound anew (``mymod.LEVEL = 5``).
    outputs = {name: lookup(ns, name) for name in manifest["names"]}
    try:
        manifest["bundle"] = save(outputs, changed, parts, cell)
    except Unsaveable as exc:
        return exc.problems
    manifest["changed"] = list(changed)
    return {}


def load_outputs(manifest: dict[str, Any], shell: Any) -> dict[str, Any]:
    """The outputs of a cached run, ready to put in the namespace.

    Inputs the run changed in place are updated in place here.

    Raises
    ------
    ResultMissingError
        A file is gone or corrupt, or the outputs cannot be restored as they were.
    """
    from kernelflow.kernel.bundle import load

    values = load(manifest["bundle"], shell.user_ns)
    return {name: _rebind(value, shell.user_ns) for name, value in values.items()}


def _rebind(value: Any, namespace: dict[str, Any]) -> Any:
    """Point a restored notebook function (or class's methods) at the live namespace.

    cloudpickle gives a function from ``__main__`` a snapshot of the globals it
    used; the notebook expects it to see the namespace as it is now.
    """
    if isinstance(value, types.FunctionType) and value.__module__ == "__main__":
        fresh = types.FunctionType(
            value.__code__, namespace, value.__name__, value.__defaults__, value.__closure__
        )
        fresh.__kwdefaults__ = value.__kwdefaults__
        fresh.__dict__.update(value.__dict__)
        fresh.__qualname__ = value.__qualname__
        fresh.__doc__ = value.__doc__
        fresh.__annotations__ = value.__annotations__
        return fresh
    if isinstance(value, type) and value.__module__ == "__main__":
        for attr, member in list(vars(value).items()):
            if isinstance(member, types.FunctionType):
                setattr(value, attr, _rebind(member, namespace))
        return value
    inner = getattr(value, "fn", None)
    if isinstance(inner, types.FunctionType) and inner.__module__ == "__main__":
        try:
            value.fn = _rebind(inner, namespace)
            value.__wrapped__ = value.fn
        except AttributeError:
            pass  # a read-only wrapper: it keeps its snapshot
    return value


class ReplayedResult:
    """Stands in for a cached cell's final expression: displays as it did."""

    def __init__(self, bundle: tuple[dict, dict]) -> None:
        self._data, self._metadata = bundle

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict, dict]:
        return self._data, self._metadata

    def __repr__(self) -> str:
        return str(self._data.get("text/plain", "<cached result>"))


def render_cached_line(manifest: dict[str, Any]) -> None:
    """Print the one line a cache hit shows (widgets may replace this function)."""
    from kernelflow._format import format_ago, format_duration

    took = format_duration(manifest.get("duration") or 0.0)
    ago = format_ago(manifest.get("started") or time.time())
    print(f"cached · took {took} · ran {ago}")


def type_name(value: Any) -> str:
    """``module.Class`` of a value, for messages (just ``Class`` for builtins)."""
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
