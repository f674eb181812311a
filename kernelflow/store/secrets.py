"""Secrets (``kernelflow.blocks.system.Secret``): one private file each, never the database.

Where a secret lives decides who can read it:

- **Not in the DuckDB file.** Every table there can be read with
  ``kernelflow.sql``, ``kernelflow sql``, ``%kf sql`` and the REST API's
  readers; DuckDB has no per-table permissions, and a sandbox that refused
  one table by name could be talked around. So ``secrets`` is not a table.
- **Not in a journal.** Journals are folded into the database, and their
  lines are plain text that tools and backups copy around.
- **In** ``<home>/secrets/<name>.json``: a directory of mode 0700 and files of
  mode 0600 in the store's private home, like the store's signing key. Only
  the owner of the store (who can run code as themselves anyway) reads them.
  They are not encrypted: a key kept next to them would protect nothing.

A save writes a temporary file and then links it into place (refusing an
existing name) or renames it over the old one (``overwrite``), so a reader
sees a whole file, never half of one, and of two processes saving the same
new name exactly one succeeds.

File format: JSON ``{"id", "name", "value", "created", "updated"}``, where
``value`` is the secret's value as JSON (a string, or any JSON value).
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

from kernelflow import settings
from kernelflow.errors import StoreNotWritableError

__all__ = ["delete_secret", "load_secret", "save_secret"]


def _path(name: str) -> Path:
    # The name is checked by the caller: lowercase letters, digits and dashes only.
    return settings.paths().secrets / f"{name}.json"


def load_secret(name: str) -> dict[str, Any] | None:
    """Saved secret ``name`` (``id``, ``name``, ``value``, ``created``, ``updated``), or None."""
    try:
        raw = _path(name).read_bytes()
    except FileNotFoundError:
        return None
    return json.loads(raw)


def save_secret(name: str, value: Any, secret_id: str, overwrite: bool) -> dict[str, Any] | None:
    """Save ``value`` as secret ``name``; None if the name exists and ``overwrite`` is false.

    Parameters
    ----------
    name
        A valid block name (checked by the caller).
    value
        A JSON-serialisable value.
    secret_id
        The id a new secret gets; an overwritten one keeps its own.
    overwrite
        Replace a secret of that name.

    Returns
    -------
    dict or None
        What was saved (as :func:`load_secret` reads it back).

    Raises
    ------
    StoreNotWritableError
        The secrets directory cannot be written.
    """
    paths = settings.paths()
    paths.ensure(paths.secrets)
    now = time.time()
    record = {"id": secret_id, "name": name, "value": value, "created": now, "updated": now}
    target = _path(name)
    if overwrite:
        existing = load_secret(name)
        if existing is not None:
            record["id"], record["created"] = existing["id"], existing["created"]
        data = json.dumps(record).encode()
        _checked(settings.write_private, target, data)
        return record
    data = json.dumps(record).encode()
    temporary = target.with_name(f".{target.name}.{os.urandom(8).hex()}.tmp")
    try:
        _checked(settings.write_private, temporary, data)
        try:
            os.link(temporary, target)  # atomic, and fails if the name exists
        except FileExistsError:
            return None
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise _not_writable(target, exc) from None
            # A file system without hard links: an exclusive create still lets one win.
            if not _create_exclusive(target, data):
                return None
    finally:
        try:
            os.unlink(temporary)
        except OSError:
            pass
    return record


#: ``os.link`` errors that mean "this file system has no hard links".
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK})


def _create_exclusive(target: Path, data: bytes) -> bool:
    """Create ``target`` (0600) holding ``data``; False if it exists."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise _not_writable(target, exc) from None
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise _not_writable(target, exc) from None
    finally:
        os.close(fd)
    return True


def delete_secret(name: str) -> bool:
    """Delete secret ``name``; True if it existed."""
    try:
        _path(name).unlink()
    except FileNotFoundError:
        return False
    return True


def _checked(write: Any, path: Path, data: bytes) -> None:
    try:
        write(path, data)
    except OSError as exc:
        raise _not_writable(path, exc) from None


def _not_writable(path: Path, exc: OSError) -> StoreNotWritableError:
    return StoreNotWritableError(
        f"Cannot write the secret file {path} ({exc.strerror or exc}); fix the permissions of "
        f"{path.parent} or set KERNELFLOW_HOME to a directory you can write."
    )
