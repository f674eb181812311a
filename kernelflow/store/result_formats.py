"""How values become result files and back: pickle (buffers out of band) and Arrow tables.

The formats are described (and measured) in :mod:`kernelflow.store.results`.
"""

from __future__ import annotations

import json
import pickle
import struct
import sys
from typing import Any

import xxhash

from kernelflow.errors import ResultSerializationError
from kernelflow.settings import paths
from kernelflow.store.result_files import (
    _MAP_THRESHOLD,
    _SUFFIXES,
    ResultRecord,
    _commit,
    _intact,
    _one_line,
    _read,
    _temporary,
)

_META_KEY = b"kernelflow"
_PROBE_ROWS = 5


# A pickle-buffers file: magic, stream length, buffer count; then (offset, length) of
# each buffer; then the pickle stream; then the buffers, each at a multiple of 64 bytes
# (numpy wants aligned data, SIMD loops like cache-line alignment).
_BUFFERS_MAGIC = b"KFPKB\x00\x00\x01"
_BUFFERS_HEAD = struct.Struct("<8sQQ")
_BUFFER_ENTRY = struct.Struct("<QQ")
_BUFFER_ALIGN = 64


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


# --- values <-> Arrow tables ---------------------------------------------------------------


def _to_table(value: Any, fmt: str, pandas_format: str) -> Any:
    """An Arrow table carrying how to rebuild ``value``, or None.

    None when ``value`` is not a table, or is a pandas frame that is to be pickled
    (``pandas_format``, :data:`kernelflow.store.results.PANDAS_FORMAT`) or would not
    come back identical from ``fmt``.
    """
    library = type(value).__module__.partition(".")[0]
    if library == "pandas" and type(value) is sys.modules["pandas"].DataFrame:
        return _pandas_to_table(value, fmt) if pandas_format == "table" else None
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
            # An Index, which pandas takes here and its type stubs do not list.
            values: Any = index.levels[position].astype(object)
            index = index.set_levels(values, level=position)
        return index
    return index.astype(object)
