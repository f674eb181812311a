"""Result files on disk: where one lives, reading it (mapped when big), committing a new one.

Writes go to a temporary file in ``results/`` and are renamed into place, so a
reader never sees half a file, and a mapped file never changes under its
reader. See :mod:`kernelflow.store.results` for the layout and the formats.
"""

from __future__ import annotations

import contextvars
import mmap
import os
from pathlib import Path
from typing import Any, NamedTuple

import xxhash

from kernelflow.errors import ConfigurationError, ResultMissingError
from kernelflow.settings import open_private, paths

_SUFFIXES = {"arrow": ".arrow", "parquet": ".parquet", "pickle": ".pkl", "pickle-buffers": ".pkb"}
_FORMATS = {suffix: fmt for fmt, suffix in _SUFFIXES.items()}


_MAP_THRESHOLD = 1 << 20  # bytes; below this a plain read is cheaper than a memory map


#: The ``result_storage_key`` name of the result being written, if it has one.
_name: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "kernelflow_result_name", default=None
)


class ResultRecord(NamedTuple):
    """Where a persisted value lives and how to check it.

    Attributes
    ----------
    path
        The file, relative to the store home, e.g. ``results/ab/ab12….pkl``.
    checksum
        xxh3_128 hex digest of the file's bytes (also its name).
    size
        The file's size in bytes.
    format
        ``"pickle"``, ``"pickle-buffers"``, ``"arrow"`` or ``"parquet"``.
    """

    path: str
    checksum: str
    size: int
    format: str


# --- files ---------------------------------------------------------------------------------


def _locate(path: str) -> tuple[str, str | None]:
    """The absolute file of a result path and its format (None: not a result file).

    Plain strings, not pathlib, and memoized: a small cache hit takes a few dozen
    microseconds, and joining paths would be a tenth of them.
    """
    home = paths().home
    found = _located.get((home, path))
    if found is None:
        parts = path.split("/")
        # Only paths that stay in results/: an entry or manifest naming any other file
        # (../, an absolute path) must not make us read, let alone unpickle, it.
        if parts[0] != "results" or len(parts) < 2 or any(p in ("", ".", "..") for p in parts):
            raise ResultMissingError(
                f"The result path {path!r} is not inside the store's results/ folder; "
                "refusing to read it (rerun the task to recompute the result)."
            )
        file = os.path.join(home, path)
        found = (file, _FORMATS.get(os.path.splitext(file)[1]))
        if len(_located) >= _LOCATED_SIZE:
            _located.clear()  # a bound, not an LRU: refilling costs microseconds
        _located[(home, path)] = found
    return found


_located: dict[tuple[Path, str], tuple[str, str | None]] = {}
_LOCATED_SIZE = 4096


def _read(file: str | Path, writable: bool = False) -> Any:
    """The file's bytes: one read for small files, else a memory map.

    ``writable``: map big files privately (copy-on-write), so what is loaded from
    them can be written to without touching the file; else read-only, which Arrow
    reads without copying.
    """
    # O_NOFOLLOW: a result is never a symbolic link; one planted in results/ must not
    # point the read at another file.
    fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        if size < _MAP_THRESHOLD:
            # Small files are read whole (an empty one cannot be mapped); bytearray
            # when writable, so arrays loaded out of band from it are writable too.
            data = os.read(fd, size)
            return bytearray(data) if writable else data
        access = mmap.ACCESS_COPY if writable else mmap.ACCESS_READ
        try:
            return mmap.mmap(fd, 0, access=access)
        except ValueError:  # emptied since the fstat: no checksum will match
            return b""
    finally:
        os.close(fd)


def _temporary() -> Path:
    """A new, empty, private (0600) file with a random name in ``results/``."""
    temporary = paths().results / f".tmp-{os.getpid()}-{os.urandom(6).hex()}"
    os.close(open_private(temporary, os.O_WRONLY | os.O_EXCL))
    return temporary


def _commit(temporary: Path, checksum: str, fmt: str, size: int) -> ResultRecord:
    """Move a finished temporary file to its content address, unless it is already there.

    Or, for a ``result_storage_key`` (:data:`_name`), to ``results/<name>``.
    """
    store = paths()
    name = _name.get()
    if name is not None:
        final = store.results / name
        try:
            store.ensure(final.parent)
            os.replace(temporary, final)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise ConfigurationError(
                f"Cannot write the result to results/{name} ({exc.strerror or exc}); choose "
                "another result_storage_key."
            ) from None
        return ResultRecord(final.relative_to(store.home).as_posix(), checksum, size, fmt)
    final = store.results / checksum[:2] / f"{checksum}{_SUFFIXES[fmt]}"
    if _intact(final, checksum):
        temporary.unlink()
    else:
        store.ensure(final.parent)
        os.replace(temporary, final)
    return ResultRecord(final.relative_to(store.home).as_posix(), checksum, size, fmt)


def _intact(file: Path, checksum: str) -> bool:
    """Whether ``file`` exists with the right content.

    The name alone is not enough: a damaged copy found by a cache lookup gets
    recomputed, and its identical content must then replace the damaged file.
    """
    try:
        data = _read(file)
    except OSError:
        return False
    return xxhash.xxh3_128_hexdigest(data) == checksum


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
