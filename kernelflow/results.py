"""Content-addressed result files beside the database.

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

import contextvars
import json
import mmap
import os
import pickle
import struct
import sys
from pathlib import Path
from typing import Any, NamedTuple

import xxhash

from kernelflow.errors import (
    ConfigurationError,
    ResultMissingError,
    ResultSerializationError,
    StoreFullError,
)
from kernelflow.settings import open_private, paths

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

_SUFFIXES = {"arrow": ".arrow", "parquet": ".parquet", "pickle": ".pkl", "pickle-buffers": ".pkb"}
_FORMATS = {suffix: fmt for fmt, suffix in _SUFFIXES.items()}
_META_KEY = b"kernelflow"
_PROBE_ROWS = 5
_MAP_THRESHOLD = 1 << 20  # bytes; below this a plain read is cheaper than a memory map

# A pickle-buffers file: magic, stream length, buffer count; then (offset, length) of
# each buffer; then the pickle stream; then the buffers, each at a multiple of 64 bytes
# (numpy wants aligned data, SIMD loops like cache-line alignment).
_BUFFERS_MAGIC = b"KFPKB\x00\x00\x01"
_BUFFERS_HEAD = struct.Struct("<8sQQ")
_BUFFER_ENTRY = struct.Struct("<QQ")
_BUFFER_ALIGN = 64

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
        table = _to_table(value, TABLE_FORMAT)
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


def _write_pickle(value: Any, task_name: str | None) -> ResultRecord:
    """Pickle ``value``: its big buffers out of band (``pickle-buffers``), else in one stream."""
    import cloudpickle

    buffers: list[pickle.PickleBuffer] = []
    try:
        stream = cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        # Pickle refuses non-contiguous buffers, so every one has its raw bytes.
        raw = [buffer.raw() for buffer in buffers]
        if sum(buffer.nbytes for buffer in raw) < _MAP_THRESHOLD:
            # Small buffers gain nothing from a map: one stream is one read.
            raw = []
            if buffers:
                stream = cloudpickle.dumps(value, protocol=5)
    except Exception as exc:  # __reduce__ of user objects may raise anything
        whose = f"of task {task_name!r}" if task_name else "of a task"
        raise ResultSerializationError(
            f"Cannot persist the result {whose} ({_one_line(exc)}): return something "
            "picklable, or set persist_result=False (for a cached task, also drop its "
            "cache_policy / cache_key_fn)."
        ) from exc
    if not raw:
        return _write_pieces([stream], "pickle")
    return _write_pieces(_buffer_layout(stream, raw), "pickle-buffers")


def _buffer_layout(stream: bytes, raw: list[memoryview]) -> list[Any]:
    """The pieces of a pickle-buffers file, in order (see ``_BUFFERS_MAGIC``)."""
    offset = _BUFFERS_HEAD.size + _BUFFER_ENTRY.size * len(raw) + len(stream)
    table, pieces = [], []
    for buffer in raw:
        padding = -offset % _BUFFER_ALIGN
        offset += padding
        table.append(_BUFFER_ENTRY.pack(offset, buffer.nbytes))
        pieces += [b"\0" * padding, buffer]
        offset += buffer.nbytes
    head = _BUFFERS_HEAD.pack(_BUFFERS_MAGIC, len(stream), len(raw))
    return [head, *table, stream, *pieces]


def _write_pieces(pieces: list[Any], fmt: str) -> ResultRecord:
    """Write the concatenation of ``pieces`` to its content address (once)."""
    hasher = xxhash.xxh3_128()
    for piece in pieces:
        hasher.update(piece)
    checksum = hasher.hexdigest()
    size = sum(memoryview(piece).nbytes for piece in pieces)
    store = paths()
    final = store.results / checksum[:2] / f"{checksum}{_SUFFIXES[fmt]}"
    if not _intact(final, checksum):  # identical content is written once
        temporary = _temporary()
        try:
            with open(temporary, "wb") as sink:
                for piece in pieces:
                    sink.write(piece)
            return _commit(temporary, checksum, fmt, size)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    return ResultRecord(final.relative_to(store.home).as_posix(), checksum, size, fmt)


def _load_buffers(data: Any) -> Any:
    """Unpickle a pickle-buffers file, its buffers as views of ``data`` (no copy)."""
    magic, length, count = _BUFFERS_HEAD.unpack_from(data, 0)
    if magic != _BUFFERS_MAGIC:
        raise ValueError("not a pickle-buffers file")
    view = memoryview(data)
    start = _BUFFERS_HEAD.size + _BUFFER_ENTRY.size * count
    buffers = []
    for i in range(count):
        offset, size = _BUFFER_ENTRY.unpack_from(data, _BUFFERS_HEAD.size + _BUFFER_ENTRY.size * i)
        if offset + size > len(view):
            raise ValueError("a buffer lies past the end of the file")
        buffers.append(view[offset : offset + size])
    if start + length > len(view):
        raise ValueError("the pickle stream lies past the end of the file")
    return pickle.loads(view[start : start + length], buffers=buffers)


def _write_table(table: Any, fmt: str) -> ResultRecord | None:
    """Write an Arrow table; None if Arrow cannot write it (the caller pickles instead)."""
    import pyarrow as pa

    temporary = _temporary()
    try:
        try:
            with pa.OSFile(str(temporary), "wb") as sink:
                _encode_table(table, fmt, sink)
        except pa.ArrowException:
            temporary.unlink(missing_ok=True)
            return None
        data = _read(temporary)
        checksum = xxhash.xxh3_128_hexdigest(data)
        size = len(data)
        del data  # unmap before renaming
        return _commit(temporary, checksum, fmt, size)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _encode_table(table: Any, fmt: str, sink: Any) -> None:
    import pyarrow as pa

    if fmt == "arrow":
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, sink)


def _decode_table(data: Any, fmt: str) -> Any:
    import pyarrow as pa

    if fmt == "arrow":
        return pa.ipc.open_file(pa.py_buffer(data)).read_all()
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(pa.py_buffer(data)))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# --- values <-> Arrow tables ---------------------------------------------------------------


def _to_table(value: Any, fmt: str) -> Any:
    """An Arrow table carrying how to rebuild ``value``, or None.

    None when ``value`` is not a table, or is a pandas frame that is to be pickled
    (:data:`PANDAS_FORMAT`) or would not come back identical from ``fmt``.
    """
    library = type(value).__module__.partition(".")[0]
    if library == "pandas" and type(value) is sys.modules["pandas"].DataFrame:
        return _pandas_to_table(value, fmt) if PANDAS_FORMAT == "table" else None
    if library == "polars" and type(value) is sys.modules["polars"].DataFrame:
        import polars as pl

        try:
            # The newest level keeps string views: no copy, and polars reads them back as is.
            table = value.to_arrow(compat_level=pl.CompatLevel.newest())
        except (pl.exceptions.PolarsError, TypeError, ValueError):  # Object columns
            return None
        return _with_meta(table, {"kind": "polars"})
    if library == "pyarrow" and type(value) is sys.modules["pyarrow"].Table:
        return _with_meta(value, {"kind": "pyarrow"})
    return None


def _with_meta(table: Any, meta: dict[str, Any]) -> Any:
    metadata = dict(table.schema.metadata or {})
    metadata[_META_KEY] = json.dumps(meta).encode()
    return table.replace_schema_metadata(metadata)


def _pandas_to_table(frame: Any, probe_format: str | None) -> Any:
    """The frame as an Arrow table, or None if it would not come back identical.

    ``probe_format``: also write and read the first rows in that format and
    compare (None when this call is that probe).
    """
    import pandas as pd
    import pyarrow as pa

    is_object = pd.api.types.is_object_dtype
    index, columns = frame.index, frame.columns
    object_columns = [i for i, dtype in enumerate(frame.dtypes) if is_object(dtype)]
    # Arrow turns an object column of mixed values into one type (or fails) and
    # labels of mixed types into strings: only text or bytes survive exactly.
    for values in (*(frame.iloc[:, i] for i in object_columns), *_levels(index)):
        kind = pd.api.types.infer_dtype(values, skipna=False)
        if is_object(values.dtype) and kind not in ("string", "bytes", "empty"):
            return None
    if any("mixed" in pd.api.types.infer_dtype(lvl, skipna=False) for lvl in _levels(columns)):
        return None
    try:
        table = pa.Table.from_pandas(frame)
    except (pa.ArrowException, TypeError, ValueError):  # duplicate labels, complex numbers...
        return None
    timed = isinstance(index, (pd.DatetimeIndex, pd.TimedeltaIndex))
    meta = {
        "kind": "pandas",
        "object_columns": object_columns,
        "object_index": [i for i, lvl in enumerate(_levels(index)) if is_object(lvl.dtype)],
        "object_labels": [i for i, lvl in enumerate(_levels(columns)) if is_object(lvl.dtype)],
        "label_range": [columns.start, columns.stop, columns.step]
        if type(columns) is pd.RangeIndex
        else None,
        "freq": index.freqstr if timed else None,
    }
    table = _with_meta(table, meta)
    if probe_format is not None and not _round_trips(frame.iloc[:_PROBE_ROWS], probe_format):
        return None
    return table


def _round_trips(head: Any, fmt: str) -> bool:
    """Whether the first rows come back identical from ``fmt``: catches what the checks
    above miss (e.g. Parquet decodes a categorical of integers to plain integers)."""
    import pandas as pd
    import pyarrow as pa

    table = _pandas_to_table(head, None)
    if table is None:
        return False
    sink = pa.BufferOutputStream()
    try:
        _encode_table(table, fmt, sink)
    except pa.ArrowException:
        return False
    back = _from_table(_decode_table(sink.getvalue(), fmt))
    try:
        pd.testing.assert_frame_equal(
            back, head, check_exact=True, check_index_type=True, check_column_type=True,
            check_categorical=True, check_freq=True, check_flags=True,
        )  # fmt: skip
    except AssertionError:
        return False
    return back.attrs == head.attrs


def _levels(index: Any) -> list[Any]:
    import pandas as pd

    if isinstance(index, pd.MultiIndex):
        return [index.get_level_values(i) for i in range(index.nlevels)]
    return [index]


def _load(data: Any, fmt: str) -> Any:
    # cloudpickle output is plain pickle; it imports cloudpickle if it needs it.
    if fmt == "pickle":
        return pickle.loads(data)
    if fmt == "pickle-buffers":
        return _load_buffers(data)
    return _from_table(_decode_table(data, fmt))


def _from_table(table: Any) -> Any:
    metadata = dict(table.schema.metadata or {})
    meta = json.loads(metadata.pop(_META_KEY, b'{"kind": "pyarrow"}'))
    if meta["kind"] == "pyarrow":
        return table.replace_schema_metadata(metadata or None)
    if meta["kind"] == "polars":
        import polars as pl

        return pl.from_arrow(table.replace_schema_metadata(metadata or None))
    import pandas as pd

    # The default to_pandas copies into consolidated blocks. The zero-copy variant
    # (split_blocks=True) is faster but its arrays are read-only views of the
    # file, so ``frame.iloc[0, 0] = 1`` would fail.
    frame = table.to_pandas()
    # pandas >= 3 reads Arrow strings back as "str"; restore object where it was.
    for position in meta["object_columns"]:
        frame.isetitem(position, frame.iloc[:, position].astype(object))
    frame.index = _restore_object_levels(frame.index, meta["object_index"])
    frame.columns = _restore_object_levels(frame.columns, meta["object_labels"])
    if meta["label_range"] is not None:
        frame.columns = pd.RangeIndex(*meta["label_range"])
    if meta["freq"] is not None:
        frame.index = type(frame.index)(frame.index, freq=meta["freq"])
    return frame


def _restore_object_levels(index: Any, positions: list[int]) -> Any:
    import pandas as pd

    if not positions:
        return index
    if isinstance(index, pd.MultiIndex):
        for position in positions:
            index = index.set_levels(index.levels[position].astype(object), level=position)
        return index
    return index.astype(object)
