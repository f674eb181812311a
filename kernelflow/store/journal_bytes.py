"""Journal bytes for DuckDB: complete lines read from a file, handed over as Arrow arrays.

A fold's batch goes to DuckDB without a Python object per line: the bytes
read are the data buffer of an Arrow string array whose offsets are the line
starts (:func:`line_starts`), so a line keeps its newline, which JSON parsing
ignores.
"""

from __future__ import annotations

from array import array
from itertools import accumulate
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["ints", "line_starts", "read_complete", "strings", "table"]


def read_complete(path: Path, start: int, limit: int) -> tuple[bytes, int]:
    """The complete lines of ``path`` from byte ``start``, about ``limit`` bytes of them.

    Returns the bytes (ending with a newline, or empty) and the size read
    (larger when the file ends with a partial line). At most ``limit`` bytes
    are read, except that a single line longer than ``limit`` is read whole
    (a fold always moves on).
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(limit)
            if len(data) == limit and b"\n" not in data:
                data += _rest_of_line(fh)
    except FileNotFoundError:
        return b"", start
    end = data.rfind(b"\n") + 1  # a final partial line waits for its newline
    return (data if end == len(data) else data[:end]), start + len(data)


def _rest_of_line(fh: BinaryIO) -> bytes:
    """The bytes up to and including the next newline (or the end of the file)."""
    pieces = []
    while chunk := fh.read(1 << 20):
        newline = chunk.find(b"\n")
        if newline >= 0:
            pieces.append(chunk[: newline + 1])
            break
        pieces.append(chunk)
    return b"".join(pieces)


def line_starts(data: bytes, base: int, starts: array) -> int:
    """Append where each line of ``data`` starts, plus ``base``; return how many lines.

    A ``find`` per line: no copy of the lines (``split`` would double the batch's memory).
    """
    find, end, position, before = data.find, len(data), 0, len(starts)
    append = starts.append
    while position < end:
        append(base + position)
        position = find(b"\n", position) + 1
    return len(starts) - before


# Arrow arrays are built from buffers, not with pa.array()/pa.table(): those
# probe their input for pandas objects and so import pandas (~1 s), which a
# process compacting at exit should not pay.


# pyarrow has no type information: its objects are Any here.
def ints(values: array[int], type_: Any) -> Any:
    import pyarrow as pa

    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


def strings(values: list[bytes] | list[str]) -> Any:
    """A string array of ``values`` (bytes are UTF-8; invalid bytes are replaced)."""
    import pyarrow as pa

    pieces = [v.encode() if isinstance(v, str) else v for v in values]
    offsets = array("q", accumulate(map(len, pieces), initial=0))
    data = pa.py_buffer(b"".join(pieces))
    column = pa.Array.from_buffers(
        pa.large_string(), len(pieces), [None, pa.py_buffer(offsets), data]
    )
    try:
        column.validate(full=True)
    except pa.ArrowInvalid:
        return strings([p.decode("utf-8", "replace") for p in pieces])
    return column


def table(**columns: Any) -> Any:
    import pyarrow as pa

    return pa.Table.from_arrays(list(columns.values()), names=list(columns))
