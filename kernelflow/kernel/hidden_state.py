"""Global state a ``%%task`` cell depends on or changes without naming it.

A cell's cache key covers the names it reads. Some of what decides its result
is not a name: the global random generators and the display options. The rule
for each, the same in every kernel:

Random generators (``random`` and ``numpy.random``'s global generator)
    If the cell's code (or a library call it makes) changed a generator's
    state, its cache entry keeps the state the run left it in and, unless the
    cell seeded that generator before drawing from it, the state the run
    started from. A later run uses the entry only when the generator is in
    that same starting state, and a hit leaves the generator where running
    would have. So a cell that seeds then draws is cached; a cell that draws
    unseeded is reused only when the generator is exactly where it was (never
    in a fresh kernel), and ``%kf why`` says so. Draws made while a module is
    imported (some libraries draw at import time) do not count: a hit repeats
    them only when the generator is in the state the cached run started from.
Display options (numpy print options, pandas options, matplotlib ``rcParams``)
    If a run displayed anything (matplotlib: an image), its entry keeps the
    options it displayed with, and is used only under the same options. If a
    run changed options, a hit applies the changed options too.

Snapshots are taken of the modules already imported; nothing here imports
numpy, pandas or matplotlib.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GlobalEffects", "RunWatch", "check", "restore", "snapshot"]

RANDOM = "random"
NUMPY_RANDOM = "numpy.random"
NUMPY_PRINT = "numpy print options"
PANDAS_OPTIONS = "pandas options"
MPL_RC = "matplotlib rcParams"
_GENERATORS = (RANDOM, NUMPY_RANDOM)


@dataclass(frozen=True)
class _Tracker:
    name: str
    module: str  # tracked only once this module is imported
    get: Callable[[], Any]
    put: Callable[[Any], None]
    same: Callable[[Any, Any], bool]
    # The state the module starts in when imported (None: not known).
    default: Callable[[], Any] | None = None


def _numpy_state() -> Any:
    return sys.modules["numpy"].random.get_state()


def _numpy_same(a: Any, b: Any) -> bool:
    np = sys.modules["numpy"]
    return a[0] == b[0] and a[2:] == b[2:] and np.array_equal(a[1], b[1])


def _pandas_config() -> Any:
    # pandas' option tables are private, so its type stubs leave them out.
    from pandas._config import config

    return config


def _pandas_options() -> dict[str, Any]:
    config = _pandas_config()
    flat: dict[str, Any] = {}
    stack = [("", config._global_config)]
    while stack:
        prefix, options = stack.pop()
        for key, value in options.items():
            if isinstance(value, dict):
                stack.append((f"{prefix}{key}.", value))
            else:
                flat[prefix + key] = value
    return flat


def _pandas_defaults() -> dict[str, Any]:
    config = _pandas_config()
    return {key: option.defval for key, option in config._registered_options.items()}


def _pandas_same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    # Compared on the options both know (a default table has no deprecated aliases).
    return all(_same(a[key], b[key]) for key in a.keys() & b.keys())


def _set_pandas_options(options: dict[str, Any]) -> None:
    import warnings

    import pandas as pd

    current = _pandas_options()
    with warnings.catch_warnings():  # setting a deprecated option back warns again
        warnings.simplefilter("ignore")
        for key, value in options.items():
            if current.get(key, object()) != value:
                pd.set_option(key, value)


def _rc_params() -> dict[str, Any]:
    return dict.copy(sys.modules["matplotlib"].rcParams)


def _set_rc_params(params: dict[str, Any]) -> None:
    # As matplotlib's own rc_context restores them: no validation, no deprecation warnings.
    dict.update(sys.modules["matplotlib"].rcParams, params)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # a value whose == raises (an array in an option): call it changed
        return False


_TRACKERS = (
    _Tracker(
        RANDOM,
        "random",
        lambda: sys.modules["random"].getstate(),
        lambda state: sys.modules["random"].setstate(state),
        _same,
    ),
    _Tracker(
        NUMPY_RANDOM,
        "numpy.random",
        _numpy_state,
        lambda state: sys.modules["numpy"].random.set_state(state),
        _numpy_same,
    ),
    _Tracker(
        NUMPY_PRINT,
        "numpy",
        lambda: sys.modules["numpy"].get_printoptions(),
        lambda options: sys.modules["numpy"].set_printoptions(**options),
        _same,
    ),
    _Tracker(
        PANDAS_OPTIONS,
        "pandas",
        _pandas_options,
        _set_pandas_options,
        _pandas_same,
        _pandas_defaults,
    ),
    _Tracker(
        MPL_RC,
        "matplotlib",
        _rc_params,
        _set_rc_params,
        _same,
        lambda: dict.copy(sys.modules["matplotlib"].rcParamsOrig),
    ),
)
_BY_NAME = {tracker.name: tracker for tracker in _TRACKERS}


def snapshot() -> dict[str, Any]:
    """The tracked state of every tracked module imported now."""
    modules = sys.modules
    return {t.name: t.get() for t in _TRACKERS if t.module in modules}


class RunWatch:
    """Watches the global generators while a cell runs: who changed them, and how.

    A change made while a module is being imported (a library drawing at import
    time) is incidental: the cell's result does not depend on it. A change made
    by the cell's own code (or the library calls it makes) counts, unless the
    cell seeded the generator first: ``random.seed`` and ``numpy.random.seed``
    are wrapped while the cell runs to see that. A generator imported during
    the run is first seen right after its import.
    """

    def __init__(self) -> None:
        self.start = snapshot()
        self.first_seen = {g: self.start[g] for g in _GENERATORS if g in self.start}
        self.checkpoint = dict(self.first_seen)
        self.outside: set[str] = set()
        self.seeded_first: set[str] = set()
        self.end: dict[str, Any] = {}
        self._depth = 0
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> RunWatch:
        import builtins

        original = builtins.__import__
        watch = self

        def watched_import(*args: Any, **kwargs: Any) -> Any:
            if watch._depth or _already_imported(*args, **kwargs):
                # Nothing will run: libraries import inside functions by the thousand.
                return original(*args, **kwargs)
            watch._depth += 1  # taking a snapshot may import too
            try:
                watch._note_changes()
                return original(*args, **kwargs)
            finally:
                watch._after_import()
                watch._depth -= 1

        builtins.__import__ = watched_import
        self._undo.append(lambda: setattr(builtins, "__import__", original))
        for name in self.first_seen:
            self._wrap_seed(name)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
        self.end = snapshot()  # taken once: effects() reads it too
        self._note_changes({g: self.end[g] for g in _GENERATORS if g in self.end})

    def _generators(self) -> dict[str, Any]:
        modules = sys.modules
        return {g: _BY_NAME[g].get() for g in _GENERATORS if _BY_NAME[g].module in modules}

    def _note_changes(self, now: dict[str, Any] | None = None) -> None:
        """Changes since the last checkpoint were made outside imports."""
        for name, state in (self._generators() if now is None else now).items():
            known = self.checkpoint.get(name)
            if known is not None and not _BY_NAME[name].same(state, known):
                self.outside.add(name)

    def _after_import(self) -> None:
        for name, state in self._generators().items():
            self.checkpoint[name] = state  # what the import did is incidental
            if name not in self.first_seen:
                self.first_seen[name] = state
                self._wrap_seed(name)

    def _wrap_seed(self, name: str) -> None:
        module = sys.modules.get(_BY_NAME[name].module)
        original = getattr(module, "seed", None) if module is not None else None
        if module is None or original is None:
            return
        watch = self

        def seed(*args: Any, **kwargs: Any) -> Any:
            if not watch._depth and name not in watch.outside:
                watch._depth += 1
                try:
                    watch._note_changes()
                finally:
                    watch._depth -= 1
                if name not in watch.outside:
                    watch.seeded_first.add(name)
            return original(*args, **kwargs)

        setattr(module, "seed", seed)  # noqa: B010 (a module attribute the stubs do not know)
        self._undo.append(lambda: setattr(module, "seed", original))

    def effects(self, *, displayed: bool, displayed_image: bool) -> GlobalEffects:
        """What the run needs of and leaves in the global state (after ``__exit__``)."""
        found = GlobalEffects()
        for name, state in self.end.items():
            tracker = _BY_NAME[name]
            if name in _GENERATORS:
                before = self.first_seen.get(name)
                if before is None or tracker.same(before, state):
                    continue
                if name not in self.outside:
                    found.incidental[name] = (before, state)
                    continue
                found.leaves[name] = state
                if name not in self.seeded_first:
                    found.requires[name] = before
                continue
            known = name in self.start
            if not known or not tracker.same(self.start[name], state):
                found.leaves[name] = state
            uses = displayed_image if name == MPL_RC else displayed
            if uses and known:
                found.requires[name] = self.start[name]
                if tracker.default is not None and tracker.same(
                    self.start[name], tracker.default()
                ):
                    found.at_default.append(name)
        return found


def _already_imported(
    name: str,
    globals: dict | None = None,
    locals: Any = None,
    fromlist: Any = (),
    level: int = 0,
) -> bool:
    """Whether ``__import__`` with these arguments only looks up loaded modules."""
    if level:
        package = (globals or {}).get("__package__")
        if not package:
            return False
        try:
            from importlib.util import resolve_name

            name = resolve_name("." * level + name, package)
        except (ImportError, ValueError):
            return False
    module = sys.modules.get(name)
    if module is None:
        return False
    loaded = vars(module)
    return all(
        item == "*" or item in loaded or f"{name}.{item}" in sys.modules for item in fromlist or ()
    )


@dataclass
class GlobalEffects:
    """What a run needs of the global state and what it leaves there.

    Attributes
    ----------
    requires
        Tracked name -> the state a later run must be in to use this run's entry.
    leaves
        Tracked name -> the state this run left, applied on a hit.
    incidental
        Generator -> (state before, state after) of a change made only by
        imports: applied on a hit only when the generator is in the state before.
    at_default
        Required options that were the module's defaults: met as well when the
        module is not imported (it would start with its defaults).
    """

    requires: dict[str, Any] = field(default_factory=dict)
    leaves: dict[str, Any] = field(default_factory=dict)
    incidental: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    at_default: list[str] = field(default_factory=list)

    def to_manifest(self) -> dict[str, Any] | None:
        """The manifest's ``globals`` field (None when the run touched nothing)."""
        if not (self.requires or self.leaves or self.incidental):
            return None
        return {
            "requires": self.requires,
            "leaves": self.leaves,
            "incidental": self.incidental,
            "at_default": self.at_default,
        }


def check(globals_needed: dict[str, Any] | None) -> str | None:
    """Why an entry cannot be used in the global state as it is now (None: it can)."""
    if not globals_needed:
        return None
    modules = sys.modules
    for name, wanted in (globals_needed.get("requires") or {}).items():
        tracker = _BY_NAME.get(name)
        if tracker is not None and tracker.module not in modules:
            if name in (globals_needed.get("at_default") or ()):
                continue  # not imported: it would start with the defaults the run had
            return f"the {name} were not the defaults in the cached run"
        if tracker is None:
            return f"'{name}' is not set up as it was for the cached run"
        if not tracker.same(tracker.get(), wanted):
            if name in _GENERATORS:
                return (
                    f"the global random generator '{name}' is not in the state the cached run "
                    "started from (the cell draws from it without seeding it first)"
                )
            return f"the {name} differ from those of the cached run"
    return None


def restore(globals_needed: dict[str, Any] | None) -> None:
    """Leave the global state as running the cell would have (after a hit)."""
    if not globals_needed:
        return
    modules = sys.modules
    for name, state in (globals_needed.get("leaves") or {}).items():
        tracker = _BY_NAME.get(name)
        if tracker is not None and tracker.module in modules:
            tracker.put(state)
    for name, (before, after) in (globals_needed.get("incidental") or {}).items():
        tracker = _BY_NAME.get(name)
        if (
            tracker is not None
            and tracker.module in modules
            and tracker.same(tracker.get(), before)
        ):
            tracker.put(after)
