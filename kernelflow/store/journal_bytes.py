"""Journal bytes for DuckDB: complete lines read from a file, handed over without pyarrow.

A fold's batch goes to DuckDB without a Python object per line: the bytes
read are written to a private scratch file next to the database, which
DuckDB's CSV reader splits into lines (one VARCHAR column; no delimiter,
quote or escape a JSON line can hold), and a running sum of the line lengths
gives each line's offset (:func:`load_lines`). Before, the bytes were the data
buffer of an Arrow string array; importing pyarrow alone cost about 43 MB and
0.1 s of CPU in every folding process.

The reader is checked against the bytes (number of lines, total length); a
batch it cannot read as they are (a torn line with a control character or
invalid UTF-8, which only a crash leaves) is passed line by line instead, as
Python lists (:func:`temp_table`), with invalid bytes replaced.
"""

from __future__ import annotations

import os
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from kernelflow.settings import open_private

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "line_starts",
    "load_lines",
    "open_scratch",
    "read_complete",
    "remove_scratch",
    "temp_table",
]


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

    ``data`` ends with a newline. A ``find`` per line: no copy of the lines.
    """
    find, end, position, before = data.find, len(data), 0, len(starts)
    append = starts.append
    while position < end:
        append(base + position)
        position = find(b"\n", position) + 1
    return len(starts) - before


#: The batch's lines as DuckDB's CSV reader sees them: one column, no quoting, lines
#: ending with ``\n`` only (an empty one is read as NULL). ``rel``: where the line starts
#: in the batch, from the lengths of the lines before it (one thread, insertion order
#: kept: the file's order).
_READ_LINES = """
    SELECT line, sum(strlen(line) + 1) OVER (ROWS UNBOUNDED PRECEDING) - strlen(line) - 1 AS rel
    FROM (
        SELECT coalesce(line, '') AS line
        FROM read_csv('{path}', columns = {{'line': 'VARCHAR'}}, delim = chr(1), quote = '',
                      escape = '', header = false, auto_detect = false, new_line = '\\n',
                      strict_mode = true, max_line_size = {size}, buffer_size = {buffer})
    )
"""
#: One journal in the batch: every line is its.
_LOAD_ONE = "CREATE OR REPLACE TEMP TABLE _batch AS SELECT 0 AS file_idx, rel, line FROM ({read})"
#: Several: a line belongs to the last chunk starting at or before it (``_files.first``).
_LOAD_MANY = """
    CREATE OR REPLACE TEMP TABLE _batch AS
    SELECT f.file_idx, b.rel, b.line FROM ({read}) b ASOF JOIN _files f ON b.rel >= f.first
"""
_CHECK = "SELECT count(*), coalesce(sum(strlen(line)), 0) FROM _batch"
#: Default of DuckDB's CSV ``buffer_size``; a longer line needs a larger buffer.
_BUFFER = 32 << 20


def open_scratch(scratch: Path) -> BinaryIO:
    """Open ``scratch`` (created private, emptied) to write a batch's bytes into."""
    return os.fdopen(open_private(scratch, os.O_WRONLY | os.O_TRUNC), "wb")


def load_lines(
    con: duckdb.DuckDBPyConnection, scratch: Path, lines: int, size: int, firsts: list[int]
) -> None:
    """Put the lines written to ``scratch`` in the temporary table ``_batch (file_idx, rel, line)``.

    ``scratch`` holds ``size`` bytes of ``lines`` complete lines from one or
    more journals (written with :func:`open_scratch`, removed by the caller
    with :func:`remove_scratch`); ``firsts[i]`` is where journal ``i``'s bytes
    start in it (``_files`` holds them as ``first`` when there are several).
    ``rel`` is a line's offset in the batch; ``line`` is its text without the
    newline. Python holds none of the bytes meanwhile: the file is DuckDB's input.
    """
    import duckdb

    read = _READ_LINES.format(
        path=str(scratch).replace("'", "''"), size=size + 2, buffer=max(_BUFFER, 2 * size + 4)
    )
    try:
        con.execute((_LOAD_ONE if len(firsts) == 1 else _LOAD_MANY).format(read=read))
        ok = con.execute(_CHECK).fetchall()[0] == (lines, size - lines)
    except duckdb.OutOfMemoryException:
        raise  # the fold reads the batch again with more memory
    except duckdb.Error:  # e.g. invalid UTF-8 or a control character in a torn line
        ok = False
    if not ok:
        _load_slowly(con, scratch.read_bytes(), firsts)


def _load_slowly(con: duckdb.DuckDBPyConnection, data: bytes, firsts: list[int]) -> None:
    """:func:`load_lines` for bytes the CSV reader cannot take: one Python string per line."""
    starts = array("q")
    line_starts(data, 0, starts)
    ends = [*starts[1:], len(data)]
    file_idx, chunk = [], 0
    for start in starts:
        while chunk + 1 < len(firsts) and firsts[chunk + 1] <= start:
            chunk += 1
        file_idx.append(chunk)
    temp_table(
        con,
        "_batch",
        file_idx=("INTEGER", file_idx),
        rel=("BIGINT", list(starts)),
        line=(
            "VARCHAR",
            [data[s : e - 1].decode("utf-8", "replace") for s, e in zip(starts, ends, strict=True)],
        ),
    )


def remove_scratch(scratch: Path) -> None:
    """Delete :func:`load_lines`' scratch file, if there is one."""
    try:
        scratch.unlink()
    except FileNotFoundError:
        pass


def temp_table(con: duckdb.DuckDBPyConnection, name: str, **columns: tuple[str, list[Any]]) -> None:
    """``CREATE OR REPLACE TEMP TABLE name`` from Python lists, one per column.

    Each column is ``(duckdb_type, values)``; the lists have the same length
    (possibly zero). Used for the few rows a fold describes in Python (the
    batch's journals, their offsets): no pyarrow.
    """
    select = ", ".join(f"unnest(?::{type_}[]) AS {col}" for col, (type_, _) in columns.items())
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {select}",
        [values for _, values in columns.values()],
    )
