"""The cache index: cache key -> persisted result, found without the database.

A lookup happens before every cached task run, often in a process that must not
open the DuckDB file (see :mod:`kernelflow.store.journal`). So the index is one
small JSON file per key, ``<home>/cache/<k[:2]>/<key>.json``, naming the result
file written by :mod:`kernelflow.results`. A hit costs one read of the index
file and one of the (checksum-verified) result file. Small hits are a few tens
of microseconds, so the hot path avoids what costs microseconds there: pathlib,
buffered file objects, dataclass ``__init__``.

The files are the truth for lookups. Every write, hit and delete is also
appended to the journal (``cache_write`` / ``cache_hit`` / ``cache_delete``),
so the database can show the cache and its use.

Index files are replaced atomically (temporary file + ``os.replace``): a reader
sees the old entry or the new one, never half of one. An index or result file
that turns out to be corrupt is reported in one log line, deleted, and the
lookup counts as a miss, so the task simply runs again.

Every entry is signed with the store's key (:mod:`kernelflow.store.signing`):
the index file holds the entry's fields and ``mac``, an HMAC-SHA256 of them.
The fields include the result's path and checksum, and :func:`read_result`
checks the file's bytes against that checksum before it loads anything. An
entry without a valid signature was not written by kernelflow (or was changed
since): it is a miss with one warning, and its result is never loaded.

A key that is not a plain file name (cache_key_fn may return any string) is
stored under the hash of the key instead; the entry keeps the key itself.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from kernelflow.errors import ResultMissingError, StoreError, StoreFullError
from kernelflow.hashing import hash_bytes
from kernelflow.settings import paths, write_private
from kernelflow.store import events as events_
from kernelflow.store import signing
from kernelflow.store.journal import record
from kernelflow.store.results import ResultRecord, read_result, write_result

__all__ = ["CacheEntry", "CacheHit", "clear", "delete", "entries", "lookup", "point", "store"]

logger = logging.getLogger("kernelflow.cache")

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")

#: What an index file's signature is for (a signature made for anything else never fits).
_PURPOSE = b"kernelflow cache entry v1"


class CacheEntry(NamedTuple):
    """One cache key and the result it points to (the content of an index file).

    A named tuple: cheap to create on every hit, and ``_asdict()`` is the file's JSON.

    Attributes
    ----------
    key
        The cache key.
    task_name
        The task whose run stored the result.
    result
        The result file, relative to the store home.
    checksum, size, format
        As in :class:`kernelflow.results.ResultRecord`.
    created
        When the entry was written (Unix epoch seconds).
    expires
        When the entry stops matching (epoch seconds), or None for never.
    task_run_id
        The run that computed the result.
    duration
        Seconds that run took, i.e. what a hit saves.
    """

    key: str
    task_name: str
    result: str
    checksum: str
    size: int
    format: str
    created: float
    expires: float | None
    task_run_id: str | None
    duration: float

    def is_expired(self, now: float | None = None) -> bool:
        """Whether the entry has expired at ``now`` (default: the current time)."""
        return self.expires is not None and self.expires <= (time.time() if now is None else now)


class CacheHit(NamedTuple):
    """A found cache entry and its loaded value."""

    value: Any
    entry: CacheEntry


def lookup(
    key: str,
    *,
    task_run_id: str | None = None,
    events: list[Mapping[str, Any]] | None = None,
    refuse: Callable[[Any], str | None] | None = None,
) -> CacheHit | None:
    """Find the cached result of ``key``.

    Parameters
    ----------
    key
        The cache key.
    task_run_id
        The run asking; recorded in the ``cache_hit`` event.
    events
        A list to append the ``cache_hit`` event to, for the caller to journal with
        its next events in one write; by default it is journaled at once.
    refuse
        Called with the cached value: a reason (not None) makes the entry a miss,
        kept for others (see :meth:`kernelflow.cache.CachePolicy.refuse`).

    Returns
    -------
    CacheHit or None
        None when there is no entry, it has expired, its files are corrupt, or it
        is not signed with the store's key (then one warning is logged to
        ``kernelflow.cache`` and the entry removed).

    Raises
    ------
    StoreNotPrivateError
        Other users can write the store, or its key is not private.

    Examples
    --------
    >>> _ = store("k1", 42, task_name="answer", expires=None, task_run_id=None, duration=1.5)
    >>> lookup("k1").value
    42
    """
    file = _index_file(key)
    try:
        raw = _read_small(file)
    except FileNotFoundError:
        return None
    try:
        entry = _parse_entry(file, raw, key)
        expired = entry.is_expired()
    except _Unsigned:
        where = os.path.relpath(file, paths().home)
        _discard(
            key,
            f"Cache entry for key {key!r} is not signed with this store's key (file {where}), "
            "so kernelflow did not write it; its result is not loaded",
        )
        return None
    except (ValueError, TypeError):  # bad JSON, fields missing, unknown or mistyped
        where = os.path.relpath(file, paths().home)
        _discard(key, f"Cache entry for key {key!r} is corrupt (file {where})")
        return None
    if expired:
        return None
    try:
        value = read_result(entry.result, entry.checksum, entry.format)
    except ResultMissingError:
        state = "corrupt" if (paths().home / entry.result).exists() else "missing"
        task = entry.task_name
        _discard(key, f"Cached result for task {task!r} is {state} (file {entry.result})")
        return None
    if refuse is not None and refuse(value) is not None:
        return None
    event = events_.cache_hit(key=key, task_run_id=task_run_id, t=time.time())
    if events is None:
        record(event)
    else:
        events.append(event)
    return CacheHit(value, entry)


def store(
    key: str,
    value: Any,
    *,
    task_name: str,
    expires: float | None,
    task_run_id: str | None,
    duration: float,
    result_name: str | None = None,
) -> CacheEntry:
    """Persist ``value`` and point ``key`` at it, replacing any previous entry.

    Parameters
    ----------
    key
        The cache key.
    value
        The task's return value (see :func:`kernelflow.results.write_result`).
    task_name
        The task that computed it.
    expires
        Epoch seconds after which the entry no longer matches, or None.
    task_run_id
        The run that computed it.
    duration
        Seconds that run took.
    result_name
        Write the result as ``results/<result_name>`` (a task's rendered
        ``result_storage_key``) instead of at its content address.

    Returns
    -------
    CacheEntry

    Raises
    ------
    ResultSerializationError
        If ``value`` cannot be persisted.
    ConfigurationError
        ``result_name`` cannot be written inside ``results/``.
    """
    result = write_result(value, task_name=task_name, name=result_name)
    return point(
        key,
        result,
        task_name=task_name,
        expires=expires,
        task_run_id=task_run_id,
        duration=duration,
    )


def point(
    key: str,
    result: ResultRecord,
    *,
    task_name: str,
    expires: float | None,
    task_run_id: str | None,
    duration: float,
) -> CacheEntry:
    """Point ``key`` at a result persisted before, replacing any previous entry.

    The second half of :func:`store`: a transaction persists a task's result
    when the task completes, and points its cache key at it only when the
    transaction commits (see :mod:`kernelflow.transactions`).

    Parameters
    ----------
    key
        The cache key.
    result
        What :func:`kernelflow.results.write_result` returned for the value.
    task_name, expires, task_run_id, duration
        As in :func:`store`.

    Returns
    -------
    CacheEntry
    """
    entry = CacheEntry(
        key=key,
        task_name=task_name,
        result=result.path,
        checksum=result.checksum,
        size=result.size,
        format=result.format,
        created=time.time(),
        expires=expires,
        task_run_id=task_run_id,
        duration=duration,
    )
    file = Path(_index_file(key))
    store_paths = paths()
    store_paths.ensure(file.parent)
    fields = entry._asdict()
    signature = signing.sign(store_paths, _PURPOSE, _signed_bytes(fields))
    try:
        write_private(file, json.dumps({**fields, "mac": signature}).encode())
    except OSError as exc:
        if exc.errno not in StoreFullError.ERRNOS:
            raise
        raise StoreFullError.writing(f"the cache entry of task {task_name!r}", exc) from None
    # Every field but ``format``, which is not part of the journal's cache_write.
    record(
        events_.cache_written(
            key=entry.key,
            task_name=entry.task_name,
            result=entry.result,
            checksum=entry.checksum,
            size=entry.size,
            created=entry.created,
            expires=entry.expires,
            task_run_id=entry.task_run_id,
            duration=entry.duration,
        )
    )
    return entry


def delete(key: str) -> bool:
    """Remove the entry of ``key``; True if there was one.

    The result file stays: other keys or run states may point at the same content.
    """
    try:
        os.unlink(_index_file(key))
    except FileNotFoundError:
        return False
    record(events_.cache_deleted(key=key, t=time.time()))
    return True


def clear(task_name: str | None = None, older_than: float | None = None) -> int:
    """Remove cache entries; return how many were removed.

    Parameters
    ----------
    task_name
        Only entries stored by this task (default: every task).
    older_than
        Only entries created more than this many seconds ago (default: any age).
    """
    cutoff = None if older_than is None else time.time() - older_than
    removed = 0
    for entry in entries():
        if task_name is not None and entry.task_name != task_name:
            continue
        if cutoff is not None and entry.created > cutoff:
            continue
        removed += delete(entry.key)
    return removed


def entries() -> list[CacheEntry]:
    """Every readable, signed cache entry, oldest first (expired ones included).

    Raises
    ------
    StoreNotPrivateError
        Other users can write the store, or its key is not private.
    """
    found = []
    for file in paths().cache.glob("*/*.json"):
        try:
            found.append(_verified(json.loads(file.read_bytes())))
        except StoreError:
            raise  # an unsafe store or key: say so, rather than list nothing
        except (OSError, ValueError, TypeError, _Unsigned):
            continue  # deleted meanwhile, corrupt or unsigned: lookup reports and removes those
    return sorted(found, key=lambda entry: entry.created)


def _index_file(key: str) -> str:
    """The index file of ``key``: a string path, as pathlib would cost more than the rest
    of a small hit; memoized, since a notebook asks for the same few keys again and again."""
    home = paths().home
    found = _index_files.get((home, key))
    if found is None:
        name = key if _PLAIN_KEY.fullmatch(key) else hash_bytes("cache key", key)
        found = os.path.join(home, "cache", name[:2], f"{name}.json")
        if len(_index_files) >= _INDEX_MEMO_SIZE:
            _index_files.clear()  # a bound, not an LRU: refilling costs microseconds
        _index_files[(home, key)] = found
    return found


_index_files: dict[tuple[Path, str], str] = {}
_INDEX_MEMO_SIZE = 4096


def _parse_entry(file: str, raw: bytes, key: str) -> CacheEntry:
    """The entry an index file's bytes hold; the same bytes as last time are not parsed again.

    Raises
    ------
    ValueError, TypeError
        If the bytes are not an entry of ``key``.
    """
    seen = _parsed.get(file)
    if seen is not None and seen[0] == raw:
        return seen[1]  # these very bytes were verified before
    entry = _verified(json.loads(raw))
    if entry.key != key:
        raise ValueError(key)
    if len(_parsed) >= _INDEX_MEMO_SIZE:
        _parsed.clear()
    _parsed[file] = (raw, entry)
    return entry


_parsed: dict[str, tuple[bytes, CacheEntry]] = {}


class _Unsigned(Exception):
    """An index file that is a well-formed entry, but not signed with the store's key."""


def _verified(data: Any) -> CacheEntry:
    """The entry an index file's JSON holds, if its signature is the store's.

    Raises
    ------
    ValueError, TypeError
        Not an entry (fields missing, unknown or mistyped).
    _Unsigned
        An entry without a valid signature.
    """
    if not isinstance(data, dict):
        raise TypeError("an index file holds a JSON object")
    fields = dict(data)
    signature = fields.pop("mac", None)
    entry = CacheEntry(**fields)
    if not isinstance(entry.result, str) or not isinstance(entry.checksum, str):
        raise TypeError("mistyped result or checksum")
    # Sign what is used: the entry as kernelflow reads it, in one canonical form.
    if not signing.verify(paths(), _PURPOSE, _signed_bytes(entry._asdict()), signature):
        raise _Unsigned(entry.key)
    return entry


def _signed_bytes(fields: dict[str, Any]) -> bytes:
    """The canonical bytes of an entry's fields, which its signature covers."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def _read_small(file: str) -> bytes:
    """A small file's bytes, with bare system calls (a buffered ``open`` costs more)."""
    fd = os.open(file, os.O_RDONLY)
    try:
        data = os.read(fd, 4096)
        if len(data) < 4096:
            return data
        chunks = [data]  # a long key: read on to the end
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _discard(key: str, problem: str) -> None:
    logger.warning("%s; recomputing.", problem)
    try:
        delete(key)
    except OSError as exc:  # e.g. a read-only store: the miss stands, the file stays
        logger.debug("Could not delete the cache entry %r: %s", key, exc)
