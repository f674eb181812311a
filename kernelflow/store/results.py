"""Content-addressed result files beside the database: write, read and name them.

A persisted value lives in ``<home>/results/<ab>/<checksum>.<ext>``, where
``checksum`` is the xxh3_128 of the file's bytes and ``ab`` its first two hex
digits. The name proves the content: :func:`read_result` hashes the bytes
before it deserializes anything, so a truncated or altered file is reported,
never loaded. Identical content has one name, so it is written once.

Formats (measured in ``docs/decisions/0002-result-format.md``):

``pickle-buffers``
    values holding at least 1 MiB of contiguous buffers, e.g. pandas
    DataFrames and Series (their blocks are column-contiguous arrays), numpy
    arrays, dicts of them: pickled (protocol 5) with the buffers out of band.
    The file is a small header, the pickle stream, then each buffer aligned to
    64 bytes. It is read through a private copy-on-write memory map, so the
    loaded arrays are writable and nothing is copied until it is written to.
``arrow``
    polars DataFrames and pyarrow Tables: an uncompressed Arrow IPC file, read
    through a memory map (files over 1 MiB); the table, and polars frames where
    polars can, share the mapped file's memory. Also pandas frames when
    :data:`PANDAS_FORMAT` says so.
``parquet``
    read, for files written that way; not written unless :data:`TABLE_FORMAT`
    says so (it reads back several times slower).
``pickle``
    everything else, through cloudpickle (protocol 5), in one stream.

A pandas frame written as a table (``PANDAS_FORMAT = "table"``) carries a
``kernelflow`` entry in the schema metadata: which columns and index levels were
``object`` dtype, a ``RangeIndex`` of column labels and an index's ``freq``. A
frame that still would not come back identical (checked on its first rows) is
pickled instead.

A task's ``result_storage_key`` names its result instead: ``results/<key>``
(:func:`write_result` with ``name=``), e.g. ``results/sales-2024-01-01``. The
key may hold folders but must stay inside ``results/``
(:func:`check_result_name`); its format is recorded in the cache entry that
points at it, since the name has no suffix to tell.

Writes go to a temporary file in ``results/`` and are renamed into place, so a
reader never sees half a file, and a mapped file never changes under its
reader. Files are created with mode 0600 and folders 0700, whatever the umask.
:func:`read_result` reads only files inside ``results/``: a path that is
absolute or climbs out with ``..`` (or a file that is a symbolic link) is refused.
Importing this module imports neither cloudpickle, pandas nor pyarrow.
"""

from __future__ import annotations

import os
from typing import Any

import xxhash

from kernelflow.errors import ConfigurationError, ResultMissingError, StoreFullError
from kernelflow.settings import paths
from kernelflow.store.result_files import _SUFFIXES, ResultRecord, _locate, _name, _one_line, _read
from kernelflow.store.result_formats import (
    _load,
    _to_table,
    _write_pickle,
    _write_table,
)

__all__ = [
    "PANDAS_FORMAT",
    "TABLE_FORMAT",
    "ResultRecord",
    "check_result_name",
    "read_result",
    "write_result",
]

TABLE_FORMAT = "arrow"
"""The columnar format polars and pyarrow tables are written in (see the decision record)."""

PANDAS_FORMAT = "pickle"
"""How pandas DataFrames are written: ``"pickle"`` (pandas' own pickle, buffers out of
band: the fastest to load) or ``"table"`` (as :data:`TABLE_FORMAT`, which other tools
can read, e.g. DuckDB)."""


def check_result_name(name: str, template: str | None = None) -> str:
    """Return ``name`` if it names a file inside ``results/``, else raise ConfigurationError.

    Refused: absolute paths, ``..`` (or any part starting with ``.``, which also
    keeps clear of temporary files), empty parts (``a//b``, a trailing ``/``),
    backslashes, NUL and parts longer than a file name may be.

    Examples
    --------
    >>> check_result_name("sales/2024-01-01")
    'sales/2024-01-01'
    >>> check_result_name("../etc/passwd")  # doctest: +SKIP
    Traceback (most recent call last):
    ConfigurationError: result_storage_key '../etc/passwd' is not a name inside ...
    """
    parts = name.split("/") if isinstance(name, str) else [""]
    if (
        not isinstance(name, str)
        or not name
        or "\\" in name
        or "\0" in name
        or os.path.isabs(name)
        or any(not part or part.startswith(".") or len(part.encode()) > 255 for part in parts)
        or len(name) > 1024
    ):
        given = repr(name) if template is None or template == name else f"{template!r} ({name!r})"
        raise ConfigurationError(
            f"result_storage_key {given} is not a name inside the store's results/ folder; "
            "use a relative name without '..' or a leading '/' or '.', "
            "e.g. 'my-result-{parameters[x]}'."
        )
    return name


def write_result(
    value: Any, *, task_name: str | None = None, name: str | None = None
) -> ResultRecord:
    """Persist ``value`` as a content-addressed file (or as ``results/<name>``) and describe it.

    Parameters
    ----------
    value
        The value to persist. A polars DataFrame or a pyarrow Table is written as
        Arrow; anything else is pickled, with big buffers (pandas blocks, numpy
        arrays) out of band.
    task_name
        The task that returned ``value``, named in the error message.
    name
        A task's rendered ``result_storage_key``: the file is ``results/<name>``,
        replacing what was there (see :func:`check_result_name`).

    Returns
    -------
    ResultRecord

    Raises
    ------
    ResultSerializationError
        If ``value`` cannot be pickled.
    ConfigurationError
        ``name`` is not inside ``results/``, or a folder or file is in its way.

    Examples
    --------
    >>> record = write_result({"rows": 3})
    >>> read_result(record.path, record.checksum)
    {'rows': 3}
    """
    store = paths()
    store.ensure(store.results)
    if name is not None:
        check_result_name(name)
    token = _name.set(name)
    try:
        table = _to_table(value, TABLE_FORMAT, PANDAS_FORMAT)
        if table is not None:
            record = _write_table(table, TABLE_FORMAT)
            if record is not None:
                return record
        return _write_pickle(value, task_name)
    except OSError as exc:
        if exc.errno not in StoreFullError.ERRNOS:
            raise
        whose = f"the result of task {task_name!r}" if task_name else "a result"
        raise StoreFullError.writing(f"{whose} to {store.results}", exc) from None
    finally:
        _name.reset(token)


def read_result(path: str | os.PathLike[str], checksum: str, fmt: str | None = None) -> Any:
    """Load a value written by :func:`write_result`, after verifying its bytes.

    Parameters
    ----------
    path
        The file, relative to the store home: ``results/...``. Absolute paths and
        paths that leave ``results/`` are refused.
    checksum
        The expected xxh3_128 hex digest of the file.
    fmt
        The file's format, for a file named by ``result_storage_key`` (whose name
        has no suffix to tell it); by default, the suffix says.

    Returns
    -------
    object
        The value, as the same library's type it was written from.

    Raises
    ------
    ResultMissingError
        If the file is missing, fails its checksum or cannot be loaded, or the
        path is not inside ``results/``.
    """
    path = os.fspath(path)
    file, found = _locate(path)
    fmt = fmt if fmt in _SUFFIXES else found
    if fmt is None:
        raise ResultMissingError(f"{path} is not a result file; rerun the task to recompute it.")
    try:
        data = _read(file, writable=fmt == "pickle-buffers")
    except OSError as exc:
        reason = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable ({exc})"
        raise ResultMissingError(
            f"The result file {path} is {reason}; rerun the task to recompute it."
        ) from None
    actual = xxhash.xxh3_128_hexdigest(data)
    if actual != checksum:
        raise ResultMissingError(
            f"The result file {path} is corrupt (its checksum is {actual}, not {checksum}); "
            "rerun the task to recompute it."
        )
    try:
        return _load(data, fmt)
    except Exception as exc:  # a class renamed since, an unregistered extension type...
        raise ResultMissingError(
            f"Cannot load the result file {path} ({_one_line(exc)}); rerun the task to "
            "recompute it."
        ) from exc
