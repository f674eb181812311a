"""One batch of a fold: journal bytes into DuckDB, parsed, imported.

:mod:`kernelflow.store.compact` decides which journals to read and where
transactions begin and end; this module does one batch's work, under the memory
limit the fold sets for it (:class:`MemoryLimit`). The SQL is in
:mod:`kernelflow.store.fold_sql`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from kernelflow.settings import StorePaths
from kernelflow.store import fold_sql as sql
from kernelflow.store.journal_bytes import load_lines, open_scratch, read_complete, temp_table
from kernelflow.store.journals import JournalName, identity

if TYPE_CHECKING:
    import duckdb

__all__ = ["MEMORY_MB", "MemoryLimit", "import_batch", "parse", "read_batch"]

logger = logging.getLogger("kernelflow.store")

#: DuckDB's memory limit while folding, in MB (raised for a batch of one huge line): four
#: times a batch. It bounds the fold's extra RSS (48 MB: 60 MB extra on a 100 MB journal,
#: 70 on 1 GB; 32 MB: 47 and 61) for ~10 % more CPU, as DuckDB evicts sooner.
MEMORY_MB = 32


class MemoryLimit:
    """DuckDB's memory limit during a fold: set for each batch, raised for one that needs more."""

    #: After this many raises (x4 each) for one batch, its out-of-memory error stands.
    MAX_BOOST = 4**4

    def __init__(self) -> None:
        self.megabytes = 0  # as last set (a SET costs a few ms: only when it changes)
        self.boost = 1  # x4 after each out-of-memory error of the current batch

    def fit(self, con: duckdb.DuckDBPyConnection, size: int) -> None:
        """Set the limit for a batch of ``size`` bytes."""
        # A few times the batch (the parsed rows), so a batch of one huge line fits too;
        # past it, temporary tables spill to disk.
        megabytes = max(MEMORY_MB, 4 * size >> 20) * self.boost
        if megabytes != self.megabytes:
            con.execute(sql.SET_MEMORY.format(megabytes=megabytes))
            self.megabytes = megabytes

    def more(self, paths: StorePaths) -> bool:
        """Raise the limit for the batch that just ran out of memory; False if it is at most."""
        if self.boost >= self.MAX_BOOST:
            return False
        self.boost *= 4
        logger.info(
            "kernelflow: a batch of %s's journals needs more memory; reading it again", paths.home
        )
        return True


def read_batch(
    con: duckdb.DuckDBPyConnection,
    scratch: Path,
    pending: list[Path],
    positions: dict[Path, int],
    journals: dict[Path, int],
    reached: dict[str, int],
    memory: MemoryLimit,
    budget: int,
) -> list[tuple[str, int]] | None:
    """Read up to ``budget`` bytes of ``pending`` journals into the batch tables.

    Moves ``positions`` past the lines read and returns the journals' new
    offsets, or None when no complete line was read.
    """
    files: list[tuple[str, str, int, int]] = []
    firsts: list[int] = []  # where each journal's bytes start in the batch
    new_offsets = []
    size, lines = 0, 0
    # Each journal's bytes go to the scratch file as read: Python keeps none of them.
    with open_scratch(scratch) as out:
        for path in pending:
            if budget <= 0:
                break
            start = positions[path]
            limit = min(budget, journals[path] - start)
            data, read = read_complete(path, start, limit)
            reached[path.name] = read
            budget -= read - start
            if not data:  # a partial line only: its writer has not finished it yet
                journals[path] = start
                continue
            end = start + len(data)
            positions[path] = end
            host, pid, _, _ = identity(path)
            name = JournalName.parse(path.name)
            # seq = the part's base + the line's offset in the file.
            files.append((name.process, host, pid, name.seq_base() + start - size))
            firsts.append(size)
            out.write(data)
            size += len(data)
            lines += data.count(b"\n")
            new_offsets.append((path.name, end))
            del data
    if not files:
        return None
    memory.fit(con, size)
    temp_table(
        con,
        "_files",
        file_idx=("INTEGER", list(range(len(files)))),
        process=("VARCHAR", [f[0] for f in files]),
        host=("VARCHAR", [f[1] for f in files]),
        pid=("BIGINT", [f[2] for f in files]),
        base=("BIGINT", [f[3] for f in files]),
        first=("BIGINT", firsts),
    )
    load_lines(con, scratch, lines, size, firsts)
    parse(con)
    return new_offsets


def parse(con: duckdb.DuckDBPyConnection) -> None:
    """Parse ``_batch`` into the tables ``_st``, ``_tr``, ``_ev``.

    A line DuckDB cannot parse (a torn write) makes the fast parse fail, and a slower one
    keeps it as NULL. Inside an open transaction, that failure aborts the transaction: the
    fold then reads its batches again, each in a transaction of its own.
    """
    import duckdb

    try:
        for statement in sql.parse(sql.from_json(safe=False)):
            con.execute(statement)
    except duckdb.OutOfMemoryException:
        # The fold rolls back and reads the batch again with more memory. (No DROP here:
        # in an aborted transaction it would fail and hide this error.)
        raise
    except duckdb.Error:
        # A line that is not JSON (a torn write): parse again, slower, keeping it as NULL.
        for statement in sql.parse(sql.from_json(safe=True)):
            con.execute(statement)
    # The batch's lines are in the parsed tables now: free them.
    con.execute(sql.DROP_LINES)
    for statement in sql.VIEWS:
        con.execute(statement)


def import_batch(
    con: duckdb.DuckDBPyConnection, new_offsets: list[tuple[str, int]], recent_since: float | None
) -> tuple[float | None, int, int]:
    """Import the parsed batch and its journals' new offsets (``new_offsets``).

    Returns the first creation time of the batch's new task runs (``recent_since`` is the
    previous batch's, whose new runs are in ``_recent``), the number of lines imported and
    how many of them could not be read.
    """
    counts: dict[str | None, int] = {}
    bad_lines = 0
    for ev, number, bad in con.execute(sql.COUNTS).fetchall():
        counts[ev] = counts.get(ev, 0) + number
        bad_lines += bad + (number if ev is None else 0)
    for ev, statements in sql.BEFORE_RUNS:
        if any(counts.get(kind) for kind in ev):
            for statement in statements:
                con.execute(statement)
    if counts.get("state") or counts.get("task_run"):
        for statement in sql.STATE_STATEMENTS:
            con.execute(statement)
        find_placeholders, fill_placeholders, insert_new, find_carried = sql.TASK_STATEMENTS
        con.execute(find_placeholders)
        if con.execute(sql.ANY_PLACEHOLDER).fetchall():
            con.execute(fill_placeholders)
        con.execute(insert_new)
        con.execute(find_carried)
        if recent_since is None:  # no bound known: every carried run goes the long way
            con.execute(sql.FORGET_RECENT)
        if con.execute(sql.CARRIED_OLD).fetchall():
            for statement in sql.CARRIED_OLD_STATEMENTS:
                con.execute(statement)
        if con.execute(sql.CARRIED_RECENT).fetchall():
            con.execute(sql.CARRIED_RECENT_UPDATE, [recent_since])
        con.execute(sql.REMEMBER_RECENT[0])
        (since,) = con.execute(sql.REMEMBER_RECENT[1]).fetchall()[0]
    else:
        con.execute(sql.NO_RECENT)
        since = None
    for ev, statements in sql.AFTER_RUNS:
        if any(counts.get(kind) for kind in ev):
            for statement in statements:
                con.execute(statement)
    temp_table(
        con,
        "_offsets",
        file=("VARCHAR", [o[0] for o in new_offsets]),
        offset=("BIGINT", [o[1] for o in new_offsets]),
    )
    for statement in sql.OFFSETS:
        con.execute(statement)
    return since, sum(counts.values()), bad_lines
