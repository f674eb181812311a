"""pyarrow and polars values: their buffers fed without copying."""

from __future__ import annotations

from typing import Any

from kernelflow.hashing._walk import _feed, _pack_u64, _put, _put_buffer, _type_name

# --- pyarrow -------------------------------------------------------------------------------


def _feed_pyarrow(hasher: Any, value: Any) -> bool:
    import pyarrow as pa

    if isinstance(value, (pa.Table, pa.RecordBatch)):
        _put(hasher, b"W", _type_name(type(value)).encode())
        schema = value.schema.serialize()
        _put_buffer(hasher, b"h", schema, schema.size)
        _feed(hasher, value.num_rows)
        for column in value.columns:
            _feed_arrow_value(hasher, column)
        return True
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        _put(hasher, b"V", _type_name(type(value)).encode())
        _feed_arrow_value(hasher, value)
        return True
    return False


def _feed_arrow_value(hasher: Any, value: Any) -> None:
    """An Arrow Array or ChunkedArray, as one chunk.

    The same rows chunked differently are one value: ``pd.concat`` leaves a
    column in two chunks that a pickle round trip makes one, and the restored
    frame must hash as the original did. Several chunks are combined first (a
    copy, paid only then); one chunk hashes exactly as an Array.
    """
    import pyarrow as pa

    if isinstance(value, pa.ChunkedArray):
        value = value.chunk(0) if value.num_chunks == 1 else value.combine_chunks()
    _put(hasher, b"k", str(value.type).encode())
    hasher.update(_pack_u64(len(value)) + _pack_u64(1))
    _feed_arrow_array(hasher, value)


def _feed_arrow_array(hasher: Any, array: Any) -> None:
    import pyarrow as pa

    kind = array.type
    hasher.update(b"r" + _pack_u64(len(array)) + _pack_u64(array.null_count))
    if pa.types.is_dictionary(kind):
        _feed_arrow_array(hasher, array.indices)
        _feed_arrow_array(hasher, array.dictionary)
        return
    if kind.num_fields or isinstance(kind, pa.ExtensionType):
        # Nested arrays have child offsets that buffers() does not show; the IPC
        # encoder writes them out exactly, so hash that.
        message = pa.record_batch([array], names=[""]).serialize()
        _put_buffer(hasher, b"i", message, message.size)
        return
    if array.offset:
        # A slice shares its parent's buffers: copy out just its rows, so a small
        # slice of a big array hashes fast and equal slices hash alike.
        array = pa.concat_arrays([array])
    for position, buffer in enumerate(array.buffers()):
        if buffer is None or (position == 0 and array.null_count == 0):
            hasher.update(b"-")  # no validity bitmap, or one that says nothing
        else:
            _put_buffer(hasher, b"b", buffer, buffer.size)


# --- polars --------------------------------------------------------------------------------


def _feed_polars(hasher: Any, value: Any) -> bool:
    import polars as pl

    if not isinstance(value, (pl.DataFrame, pl.Series)):
        return False
    try:
        # The newest level keeps polars' string views: zero-copy (the default copies).
        arrow = value.to_arrow(compat_level=pl.CompatLevel.newest())
    except (pl.exceptions.PolarsError, TypeError, ValueError):  # e.g. Object columns
        return False
    _put(hasher, b"L", _type_name(type(value)).encode())
    if isinstance(value, pl.Series):
        _feed(hasher, value.name)
    _feed_pyarrow(hasher, arrow)
    return True
