"""Run a callback when a module is imported, without importing it now.

``%load_ext kernelflow`` must stay cheap, and the engine (where listeners
are registered) is not imported until the notebook first uses a flow or a
task. :func:`when_imported` calls back at once if the module is already
imported, else right after its first import, through a one-shot finder on
``sys.meta_path`` that wraps the module's loader.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["when_imported"]

_lock = threading.Lock()


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: Any, callbacks: list[Callable[[ModuleType], None]]) -> None:
        self.inner = inner
        self.callbacks = callbacks

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        for callback in self.callbacks:
            callback(module)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, name: str) -> None:
        self.name = name
        self.callbacks: list[Callable[[ModuleType], None]] = []

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        with _lock:
            if self in sys.meta_path:
                sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader, self.callbacks)
        return spec


def when_imported(name: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(module)`` once module ``name`` is imported (now, if it is).

    Parameters
    ----------
    name:
        The module's full name, e.g. ``"kernelflow.engine"``.
    callback:
        Called with the module, on the importing thread.
    """
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            finder = next(
                (f for f in sys.meta_path if isinstance(f, _Finder) and f.name == name), None
            )
            if finder is None:
                finder = _Finder(name)
                sys.meta_path.insert(0, finder)
            finder.callbacks.append(callback)
            return
    callback(module)
