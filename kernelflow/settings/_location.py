"""Which store this process uses: ``KERNELFLOW_HOME``, or an override set by :func:`use_home`.

The home is looked up on every run's hot path (each recorded event finds its
journal, each concurrency slot its folder), so the lookups here are cached by
:func:`home_token`, a value that changes whenever the home may have changed and
costs one dictionary lookup to read.
"""

from __future__ import annotations

import os
from pathlib import Path

from kernelflow.settings._private import StorePaths
from kernelflow.settings._variables import current

__all__ = ["home", "home_token", "paths", "use_home"]

_override: Path | None = None

# The environment's own bytes mapping on POSIX: reading ``KERNELFLOW_HOME`` from it skips
# ``os.environ``'s encode and decode, which cost more than the rest of a lookup.
_environ_bytes: dict | None = getattr(os.environ, "_data", None)
if not isinstance(_environ_bytes, dict) or os.name != "posix":
    _environ_bytes = None


def home_token() -> object:
    """A value equal to the last one while the home stays the same (compared, never parsed).

    The override of :func:`use_home` when there is one, else ``KERNELFLOW_HOME``
    as the environment holds it (bytes on POSIX, None when unset). Reading it
    costs a dictionary lookup; two equal tokens mean the same home.
    """
    if _override is not None:
        return _override
    if _environ_bytes is not None:
        return _environ_bytes.get(b"KERNELFLOW_HOME")
    return os.environ.get("KERNELFLOW_HOME")


def home() -> Path:
    """The store's home directory (not created here)."""
    if _override is not None:
        return _override
    return current().home


def use_home(path: str | os.PathLike[str] | None) -> Path | None:
    """Point this process at another store home; ``None`` restores the default.

    Returns the previous override so callers can restore it.
    """
    global _override
    previous = _override
    _override = Path(path) if path is not None else None
    return previous


_paths_by_token: dict[object, StorePaths] = {}


def paths() -> StorePaths:
    """The paths of the active store (cached: this is on every run's hot path)."""
    token = home_token()
    found = _paths_by_token.get(token)
    if found is None:
        found = _paths_by_token[token] = StorePaths(home())
    return found
