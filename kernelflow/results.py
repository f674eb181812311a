"""Content-addressed result files beside the database.

A persisted value lives in ``<home>/results/<ab>/<checksum>.<ext>``, where
``checksum`` is the xxh3_128 of the file's bytes and ``ab`` its first two hex
digits. The name proves the content: :func:`read_result` hashes the bytes
before it deserializes anything, so a truncated or altered file is reported,
never loaded. Identical content has one name, so it is written once.

Formats (measured in ``docs/decisions/0002-result-format.md``):

``arrow``
    pandas and polars DataFrames and pyarrow Tables: an uncompressed Arrow IPC
    file, read through a memory map (files over 1 MiB). pandas frames come back
    as a writable copy; pyarrow Tables, and polars frames where polars can,
    share the mapped file's memory.
``parquet``
    read, for files written that way; not written unless :data:`TABLE_FORMAT`
    says so (it reads back several times slower).
``pickle``
    everything else, through cloudpickle (protocol 5).

Arrow drops a few pandas details, so the schema metadata carries a
``kernelflow`` entry: which library to rebuild, which columns and index levels
were ``object`` dtype, a ``RangeIndex`` of column labels and an index's
``freq``. A frame that still would not come back identical (checked on its
first rows) is pickled instead.

Writes go to a temporary file in ``results/`` and are renamed into place, so a
reader never sees half a file. Importing this module imports neither
cloudpickle, pandas nor pyarrow.
"""

from __future__ import annotations

import json
import mmap
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from kernelflow.errors import ResultMissingError, ResultSerializationError
from kernelflow.settings import paths

__all__ = ["TABLE_FORMAT", "ResultRecord", "read_result", "write_result"]

TABLE_FORMAT = "arrow"
"""The columnar format tables are written in (see the decision record)."""

_SUFFIXES = {"arrow": ".arrow", "parquet": ".parquet", "pickle": ".pkl"}
_FORMATS = {suffix: fmt for fmt, suffix in _SUFFIXES.items()}
_META_KEY = b"kernelflow"
_PROBE_ROWS = 5
_MAP_THRESHOLD = 1 << 20  # bytes; below this a plain read is cheaper than a memory map


@dataclass(frozen=True)
class ResultRecord:
    """Where a persisted value lives and how to check it.

    Attributes
    ----------
    path
        The file, relative to the store home, e.g. ``results/ab/ab12….arrow``.
    checksum
        xxh3_128 hex digest of the file's bytes (also its name).
    size
        The file's size in bytes.
    format
        ``"arrow"``, ``"parquet"`` or ``"pickle"``.
    """

    path: str
    checksum: str
    size: int
    format: str


def write_result(value: Any, *, task_name: str | None = None) -> ResultRecord:
    """Persist ``value`` as a content-addressed file and describe it.

    Parameters
    ----------
    value
        The value to persist. A pandas or polars DataFrame or a pyarrow Table is
        written as Arrow; anything else is pickled.
    task_name
        The task that returned ``value``, named in the error message.

    Returns
    -------
    ResultRecord

    Raises
    ------
    ResultSerializationError
        If ``value`` cannot be pickled.

    Examples
    --------
    >>> record = write_result({"rows": 3})
    >>> read_result(record.path, record.checksum)
    {'rows': 3}
    """
    store = paths()
    store.ensure(store.results)
    table = _to_table(value, TABLE_FORMAT)
    if table is not None:
        record = _write_table(table, TABLE_FORMAT)
        if record is not None:
            return record
    return _write_pickle(value, task_name)


def read_result(path: str | os.PathLike[str], checksum: str) -> Any:
    """Load a value written by :func:`write_result`, after verifying its bytes.

    Parameters
    ----------
    path
        The file, relative to the store home (an absolute path also works).
    checksum
        The expected xxh3_128 hex digest of the file.

    Returns
    -------
    object
        The value, as the same library's type it was written from.

    Raises
    ------
    ResultMissingError
        If the file is missing, fails its checksum or cannot be loaded.
    """
    # Plain strings, not pathlib: a cache hit of a small value is a few dozen
    # microseconds, and pathlib would be a third of them.
    file = os.path.join(paths().home, path)
    fmt = _FORMATS.get(os.path.splitext(file)[1])
    if fmt is None:
        raise ResultMissingError(f"{path} is not a result file; rerun the task to recompute it.")
    try:
        data = _read(file)
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


def _read(file: str | Path) -> Any:
    """The file's bytes: a memory map for big files, which Arrow then reads without copying."""
    with open(file, "rb") as fh:
        if os.fstat(fh.fileno()).st_size < _MAP_THRESHOLD:
            return fh.read()
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def _temporary() -> Path:
    return paths().results / f".tmp-{os.getpid()}-{os.urandom(6).hex()}"


def _commit(temporary: Path, checksum: str, fmt: str, size: int) -> ResultRecord:
    """Move a finished temporary file to its content address, unless it is already there."""
    store = paths()
    final = store.results / checksum[:2] / f"{checksum}{_SUFFIXES[fmt]}"
    if _intact(final, checksum):
        temporary.unlink()
    else:
        final.parent.mkdir(exist_ok=True)
        os.replace(temporary, final)
    return ResultRecord(final.relative_to(store.home).as_posix(), checksum, size, fmt)


def _intact(file: Path, checksum: str) -> bool:
    """Whether ``file`` exists with the right content.

    The name alone is not enough: a damaged copy found by a cache lookup gets
    recomputed, and its identical content must then replace the damaged file.
    """
    try:
        data = _read(file)
    except (OSError, ValueError):  # missing, or empty (which cannot be mapped)
        return False
    return xxhash.xxh3_128_hexdigest(data) == checksum


def _write_pickle(value: Any, task_name: str | None) -> ResultRecord:
    import cloudpickle

    try:
        data = cloudpickle.dumps(value, protocol=5)
    except Exception as exc:  # __reduce__ of user objects may raise anything
        whose = f"of task {task_name!r}" if task_name else "of a task"
        raise ResultSerializationError(
            f"Cannot persist the result {whose} ({_one_line(exc)}): return something "
            "picklable, or set persist_result=False (for a cached task, also drop its "
            "cache_policy / cache_key_fn)."
        ) from exc
    checksum = xxhash.xxh3_128_hexdigest(data)
    store = paths()
    final = store.results / checksum[:2] / f"{checksum}.pkl"
    if not _intact(final, checksum):  # identical content is written once
        temporary = _temporary()
        try:
            temporary.write_bytes(data)
            return _commit(temporary, checksum, "pickle", len(data))
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    return ResultRecord(final.relative_to(store.home).as_posix(), checksum, len(data), "pickle")


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

    None when ``value`` is not a table, or is a pandas frame that would not come
    back identical from ``fmt``.
    """
    library = type(value).__module__.partition(".")[0]
    if library == "pandas" and type(value) is sys.modules["pandas"].DataFrame:
        return _pandas_to_table(value, fmt)
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
    if fmt == "pickle":
        import pickle  # cloudpickle output is plain pickle; it imports cloudpickle if needed

        return pickle.loads(data)
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
