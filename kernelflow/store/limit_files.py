"""Limit definitions: one small JSON file per limit, read on every acquisition.

They are part of the store (beside the database, like journals and results):
:mod:`kernelflow.concurrency` acquires slots on them, and
:mod:`kernelflow.store.repair` mirrors them into ``concurrency_limits``.

Layout under ``paths().limits``::

    <name>/limit.json   {"name", "limit", "slot_decay_per_second", "active", "created", "updated"}
    <name>/slot-<i>     lock files of a limit without decay
    <name>/rate         the decaying counter of a limit with decay

(the slots and the counter are :mod:`kernelflow.concurrency`'s ``_slots`` and ``_rate``).

The definition is written atomically (temporary file + ``os.replace``), so a
reader sees the old or the new one, never half of one. Readers cache the
parsed definition keyed by the file's ``stat``: one ``os.stat`` per
acquisition, no parsing, no database.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from kernelflow import settings
from kernelflow.errors import ConfigurationError, LimitNotFoundError
from kernelflow.settings import paths, write_private

__all__ = [
    "LimitDefinition",
    "check_name",
    "delete_definition",
    "limit_dir",
    "limits_root",
    "list_definitions",
    "read_definition",
    "write_definition",
]

_FILE = "limit.json"
#: Characters Prefect refuses in limit names, plus those a file name cannot hold.
_BANNED = set("/\\%&<>\0")


@dataclass(frozen=True)
class LimitDefinition:
    """One concurrency or rate limit.

    Attributes
    ----------
    name:
        The limit's name (a tag name for task concurrency by tag).
    limit:
        How many slots may be occupied at once.
    slot_decay_per_second:
        0 for a concurrency limit (slots are freed when released); above 0 for a
        rate limit (occupied slots free themselves at this rate).
    active:
        An inactive limit is not enforced: acquisitions succeed at once.
    created, updated:
        Unix times.
    """

    name: str
    limit: int
    slot_decay_per_second: float = 0.0
    active: bool = True
    created: float = 0.0
    updated: float = 0.0

    @property
    def decays(self) -> bool:
        """True for a rate limit (slots decay rather than being released)."""
        return self.slot_decay_per_second > 0


_FIELDS = frozenset(LimitDefinition.__dataclass_fields__)


def check_name(name: object) -> str:
    """Return ``name`` if it can name a limit, else raise :class:`ConfigurationError`."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(
            f"A concurrency limit name must be a non-empty string, got {name!r}."
        )
    bad = sorted(_BANNED.intersection(name))
    if bad or name.startswith(".") or len(name) > 200 or not name.isprintable():
        raise ConfigurationError(
            f"{name!r} cannot name a concurrency limit: use up to 200 printable characters, "
            "not starting with '.', without any of / \\ % & < >."
        )
    return name


def check_limit(limit: object) -> int:
    """Return ``limit`` if it is a whole number >= 1, else raise :class:`ConfigurationError`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(
            f"A concurrency limit must be a whole number >= 1, got {limit!r}; to stop enforcing "
            "a limit, delete or deactivate it."
        )
    return limit


def check_decay(decay: object) -> float:
    """Return ``decay`` as a float if it is a number >= 0, else raise ConfigurationError."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not decay >= 0:
        raise ConfigurationError(
            f"slot_decay_per_second must be a number >= 0 (0: slots are released, not decayed), "
            f"got {decay!r}."
        )
    if decay == float("inf"):
        raise ConfigurationError("slot_decay_per_second must be finite.")
    return float(decay)


_roots: dict[object, str] = {}


def limits_root() -> str:
    """``paths().limits`` as a string, cached: acquisitions need it in microseconds.

    Keyed by :func:`kernelflow.settings.home_token` (the home's override, else
    ``KERNELFLOW_HOME``), so pointing the process at another store is seen at once.
    """
    key = settings.home_token()
    root = _roots.get(key)
    if root is None:
        root = _roots[key] = str(paths().limits)
    return root


def limit_dir(name: str, root: str | Path | None = None) -> str:
    """The directory holding limit ``name``'s files."""
    return f"{root or limits_root()}/{name}"


_cache: dict[str, tuple[tuple[int, int, int], LimitDefinition]] = {}
_cache_lock = threading.Lock()


def read_definition(name: str, root: str | Path | None = None) -> LimitDefinition:
    """The current definition of limit ``name``.

    Raises
    ------
    LimitNotFoundError
        No limit has that name (the message says how to create one).
    """
    path = f"{root or limits_root()}/{name}/{_FILE}"
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(name) from None
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    hit = _cache.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
    except FileNotFoundError:
        raise _not_found(name) from None
    # Fields a newer kernelflow may add are ignored, not an error.
    definition = LimitDefinition(**{k: v for k, v in data.items() if k in _FIELDS})
    with _cache_lock:
        _cache[path] = (key, definition)
    return definition


def find_definition(name: str, root: str | Path | None = None) -> LimitDefinition | None:
    """The definition of limit ``name``, or None when there is none (or the name is invalid)."""
    if not name or _BANNED.intersection(name) or name.startswith("."):
        return None
    try:
        return read_definition(name, root)
    except LimitNotFoundError:
        return None


def _not_found(name: str) -> LimitNotFoundError:
    return LimitNotFoundError(
        f"No concurrency limit named {name!r}; create it first with "
        f"'kernelflow concurrency-limit create {name} N' (or 'kernelflow gcl create {name} "
        "--limit N --slot-decay-per-second R' for a rate limit)."
    )


def write_definition(
    definition: LimitDefinition, root: str | Path | None = None
) -> LimitDefinition:
    """Create or replace a definition file atomically; returns what was written."""
    check_name(definition.name)
    check_limit(definition.limit)
    check_decay(definition.slot_decay_per_second)
    now = time.time()
    definition = replace(definition, created=definition.created or now, updated=now)
    directory = Path(limit_dir(definition.name, root))
    paths().ensure(directory)
    write_private(directory / _FILE, json.dumps(asdict(definition)).encode())
    return definition


def delete_definition(name: str, root: str | Path | None = None) -> None:
    """Remove limit ``name`` and its slot files; current holders keep running unaffected.

    Raises
    ------
    LimitNotFoundError
        No limit has that name.
    """
    directory = Path(limit_dir(check_name(name), root))
    if not (directory / _FILE).exists():
        raise _not_found(name)
    # The definition goes first, so no new acquisition starts on half-removed slots.
    (directory / _FILE).unlink()
    shutil.rmtree(directory, ignore_errors=True)


def list_definitions(root: str | Path | None = None) -> list[LimitDefinition]:
    """Every limit of the store, sorted by name."""
    base = root or limits_root()
    try:
        names = sorted(entry.name for entry in os.scandir(base) if entry.is_dir())
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        definition = find_definition(name, base)
        if definition is not None:
            found.append(definition)
    return found
