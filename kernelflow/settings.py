"""Settings read from ``KERNELFLOW_*`` environment variables, with defaults.

Nothing needs configuring to start: the store lives in ``~/.kernelflow``.
Settings are read when first needed, not at import, so a test (or
``kernelflow.testing.temporary_store``) can point a process at another
store by changing ``KERNELFLOW_HOME`` or calling :func:`use_home`.

=============================  ===========================  ===========================
variable                       default                      meaning
=============================  ===========================  ===========================
``KERNELFLOW_HOME``            ``~/.kernelflow``            where the store lives
``KERNELFLOW_LOGGING_LEVEL``   ``INFO``                     console log level
``KERNELFLOW_COMPACT_SECONDS`` ``5``                        background compaction period
``KERNELFLOW_WIDGETS``         ``on``                       live widgets in notebooks
=============================  ===========================  ===========================
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from kernelflow.errors import StoreNotWritableError

__all__ = ["StorePaths", "env", "home", "paths", "use_home"]

_home_override: Path | None = None


def env(name: str, default: str) -> str:
    """Return ``KERNELFLOW_<name>`` from the environment, or ``default``."""
    return os.environ.get(f"KERNELFLOW_{name}", default)


def home() -> Path:
    """The store's home directory (not created here)."""
    if _home_override is not None:
        return _home_override
    configured = os.environ.get("KERNELFLOW_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".kernelflow"


def use_home(path: str | os.PathLike[str] | None) -> Path | None:
    """Point this process at another store home; ``None`` restores the default.

    Returns the previous override so callers can restore it.
    """
    global _home_override
    previous = _home_override
    _home_override = Path(path) if path is not None else None
    return previous


@dataclass(frozen=True)
class StorePaths:
    """Where each part of one store lives on disk."""

    home: Path

    @property
    def database(self) -> Path:
        """The DuckDB file users query."""
        return self.home / "kernelflow.duckdb"

    @property
    def lock(self) -> Path:
        """The file lock held while any process has the database open."""
        return self.home / "kernelflow.duckdb.lock"

    @property
    def journal(self) -> Path:
        """One append-only event file per process, folded into the database."""
        return self.journal_dir

    @functools.cached_property
    def journal_dir(self) -> Path:
        """The journal directory, computed once (looked up on every recorded event)."""
        return self.home / "journal"

    @property
    def results(self) -> Path:
        """Content-addressed result files."""
        return self.home / "results"

    @property
    def cache(self) -> Path:
        """One small index file per cache key, pointing at a result."""
        return self.home / "cache"

    @property
    def limits(self) -> Path:
        """Slot files of concurrency limits."""
        return self.home / "limits"

    @property
    def outputs(self) -> Path:
        """Executed notebooks of deployment runs."""
        return self.home / "outputs"

    def ensure(self, *parts: Path) -> None:
        """Create the given directories (default: home), with a clear error if we cannot."""
        for path in parts or (self.home,):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreNotWritableError(
                    f"Cannot create {path} ({exc.strerror}); set KERNELFLOW_HOME to a "
                    "directory you can write."
                ) from None
            if not os.access(path, os.W_OK | os.X_OK):
                raise StoreNotWritableError(
                    f"The store directory {path} is not writable; fix its permissions or "
                    "set KERNELFLOW_HOME to a directory you can write."
                )


_paths_by_source: dict[tuple[Path | None, str | None], StorePaths] = {}


def paths() -> StorePaths:
    """The paths of the active store (cached: this is on every run's hot path)."""
    source = (_home_override, os.environ.get("KERNELFLOW_HOME"))
    found = _paths_by_source.get(source)
    if found is None:
        found = _paths_by_source[source] = StorePaths(home())
    return found
