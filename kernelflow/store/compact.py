"""Compaction: fold the per-process journals into the DuckDB file.

Design
------
Every process appends events to its own journal (see
:mod:`kernelflow.store.journal`); any process may fold them into the
database. A fold, under the store's write lock:

1. lists the journals and decides which are *finished* before reading them:
   those of processes that are dead on this host, and rotated parts that a
   later part of their process follows (:mod:`kernelflow.store.journals`);
2. reads the journals from their stored offsets up to their last complete
   line, in batches of about :data:`BATCH_BYTES`, so its memory is that of
   one batch however long the journals are. The bytes of a batch go to DuckDB
   as they are (through a private scratch file DuckDB reads, no Python object
   per line and no pyarrow: :mod:`kernelflow.store.journal_bytes`) and are
   parsed there (:mod:`kernelflow.store.fold_sql`) under a memory limit; a
   batch of huge lines that exceeds it is read again under a higher one;
3. per batch (:mod:`kernelflow.store.fold_batch`), in one transaction of up to
   :data:`BATCHES_PER_COMMIT` batches: inserts the batch's events, task runs
   already in their newest state, moves older runs, applies cache events,
   artifacts and events (``emit_event``) and stores the journals' new offsets;
   with the last batch, marks the unfinished runs of dead processes ``Crashed``.
   A crash mid-way keeps the transactions committed before it and commits
   nothing of the rest, so nothing is imported twice;
4. after the commit, deletes the finished journals, then their offset rows (in
   that order: a crash in between leaves a journal whose offset is its size,
   deleted next time, never a journal without its offset, which would be
   re-imported); a live process's current journal is never deleted.

Before opening the database, :func:`compact` compares journal sizes with what
this process last saw and checks for finished journals; when nothing changed
it returns without importing DuckDB at all. :func:`pending_bytes` says how far
behind the database is, without DuckDB either.

Background, detached and exit compaction live in :mod:`kernelflow.store.compactor`,
above this module (it calls :func:`compact`; nothing here calls it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kernelflow import settings
from kernelflow.errors import StoreFullError
from kernelflow.settings import StorePaths
from kernelflow.store import fold_sql as sql
from kernelflow.store.crash import crash as _crash
from kernelflow.store.fold_batch import MemoryLimit, import_batch, read_batch
from kernelflow.store.journal_bytes import (
    remove_scratch,
    temp_table,
)
from kernelflow.store.journals import (
    finished_parts,
    forget_header,
    is_dead,
    list_journals,
    pending_bytes,
    read_folded,
    write_folded,
)

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "BATCH_BYTES",
    "CompactReport",
    "FoldStopped",
    "call_when_duckdb_loads",
    "compact",
    "fold",
    "pending_bytes",
]

logger = logging.getLogger("kernelflow.store")

#: About this many journal bytes are parsed and imported per batch of a fold: the
#: fold's extra memory is a small multiple of it, whatever the journals' size.
BATCH_BYTES = 8 * 1024 * 1024
#: Batches imported per transaction: fewer commits (each writes the WAL and may checkpoint)
#: cost less CPU, and the open transaction's rows cost memory (1 GB journal: 1 batch
#: 40-44 s / 61 MB extra RSS, 4: 35-36 s / 57-58 MB, 8: 30-32 s / 59 MB, 16: 30 s / 66 MB;
#: docs/decisions/streaming-compaction.md).
BATCHES_PER_COMMIT = 8


#: Per thread, set by the background compactor in its own thread: ``seconds`` a fold
#: pauses between batches (the recording thread runs meanwhile), and ``stop``, an event
#: that ends a fold before its next batch (:class:`FoldStopped`).
fold_pause = threading.local()


class FoldStopped(Exception):
    """A fold ended before its next batch: the background compactor was stopped (at exit).

    Its open transaction was rolled back; the next fold reads those events again.
    """


#: Called each time a fold has imported duckdb, before it opens the database: the
#: compactor (above this module) registers its exit hook then, to run before DuckDB's.
_duckdb_loaded: list[Callable[[], object]] = []


def call_when_duckdb_loads(callback: Callable[[], object]) -> None:
    """Call ``callback()`` whenever a fold has just imported duckdb (once per callback)."""
    if callback not in _duckdb_loaded:
        _duckdb_loaded.append(callback)


@dataclass
class CompactReport:
    """What one :func:`compact` call did.

    Attributes
    ----------
    opened
        Whether the database was opened (False: nothing had changed).
    journals
        Journals that had new complete lines.
    events
        Lines imported, including unreadable ones.
    bad_lines
        Lines that were not valid JSON events (imported as nothing, logged).
    crashed_runs
        Runs marked ``Crashed`` because their process is gone.
    removed_journals
        Finished journals (of dead processes, or rotated parts) deleted once folded.
    seconds
        Wall time of the call.
    """

    opened: bool = False
    journals: int = 0
    events: int = 0
    bad_lines: int = 0
    crashed_runs: int = 0
    removed_journals: int = 0
    seconds: float = 0.0


# Per store home: journal file name -> its size when this process last folded it.
# Only a hint to skip opening the database; the truth is journal_offsets.
_seen: dict[Path, dict[str, int]] = {}


def compact(paths: StorePaths | None = None, *, timeout: float | None = None) -> CompactReport:
    """Fold every journal of the store into its DuckDB file.

    Safe to call from many processes at once (they take turns on the store's
    lock) and cheap when nothing changed: then the database is not opened.

    Parameters
    ----------
    paths
        The store; default the active one (:func:`kernelflow.settings.paths`).
    timeout
        Seconds to wait for the database; default ``KERNELFLOW_LOCK_TIMEOUT``.

    Returns
    -------
    CompactReport

    Raises
    ------
    StoreError
        A subclass saying why the database could not be used; the journals
        are untouched, so a later call imports everything.

    Examples
    --------
    >>> from kernelflow.store import compact
    >>> compact().events  # doctest: +SKIP
    12
    """
    started = time.perf_counter()
    paths = paths or settings.paths()
    report = CompactReport()
    if _has_work(paths):
        # Imported only when there is work: a process with nothing to fold
        # never loads duckdb or pyarrow.
        import duckdb

        for callback in _duckdb_loaded:
            callback()

        from kernelflow.store.db import connect, translate_error

        with connect(paths, timeout=timeout) as con:
            report.opened = True
            try:
                fold(con, paths, report)
            except duckdb.IOException as exc:  # e.g. the disk filled up mid-way
                raise translate_error(exc, paths) from None
            except OSError as exc:  # writing a batch to its scratch file
                if exc.errno not in StoreFullError.ERRNOS:
                    raise
                raise StoreFullError.writing(f"{_scratch(paths)} (a fold's batch)", exc) from None
    report.seconds = time.perf_counter() - started
    return report


def _has_work(paths: StorePaths) -> bool:
    # A process that never folded (a fresh CLI command) trusts what the last fold of
    # any process recorded, so it opens nothing when the store is up to date.
    seen = _seen.get(paths.home)
    journals = list_journals(paths)
    if seen is None:
        if not paths.database.exists():
            return bool(journals)  # a removed database: the record of folds is void
        seen = read_folded(paths)
    if any(size != seen.get(path.name) for path, size in journals.items()):
        return True
    return bool(finished_parts(journals)) or any(is_dead(path) for path in journals)


def fold(con: duckdb.DuckDBPyConnection, paths: StorePaths, report: CompactReport) -> None:
    """Import every journal's new lines into the open database ``con``, in batches.

    What :func:`compact` does once it holds the store's write lock, and what
    :mod:`kernelflow.store.repair` does into a fresh database (whose empty
    ``journal_offsets`` make every journal read from its first byte). The
    batches are of about :data:`BATCH_BYTES`.

    A transaction holds up to :data:`BATCHES_PER_COMMIT` batches' events and their
    journals' new offsets, so a fold stopped mid-way keeps what it committed and
    imports nothing twice; its memory is that of a few batches, however long the
    journals are (a kernel open for weeks, a flow of a million tasks). The
    runs of dead processes are marked Crashed with the last batch, once their
    journals have been read to the end.
    """
    offsets = dict(con.execute(sql.READ_OFFSETS).fetchall())
    # One thread: the other core stays with the processes that record runs, and each
    # thread's buffers would add to the fold's memory.
    con.execute(sql.SET_THREADS.format(threads=1))
    try:
        _fold(con, paths, report, offsets)
        # Under the fold's memory limit: the close would checkpoint after the limit is
        # reset, and took up to 120 MB more there (a 1M-task flow's exit fold: 117 -> 238).
        con.execute(sql.CHECKPOINT)
    finally:
        remove_scratch(_scratch(paths))
        _reset_settings(con)


def _scratch(paths: StorePaths) -> Path:
    """The file a batch's bytes pass through to DuckDB (one fold at a time per database)."""
    return paths.database.with_name(paths.database.name + ".fold-batch")


def _reset_settings(con: duckdb.DuckDBPyConnection) -> None:
    import duckdb

    try:
        for statement in sql.RESET_SETTINGS:
            con.execute(statement)
    except duckdb.Error:
        pass  # the connection is failing (the fold's own error is the one to report)


def _fold(
    con: duckdb.DuckDBPyConnection,
    paths: StorePaths,
    report: CompactReport,
    offsets: dict[str, int],
) -> None:
    import duckdb

    # Listed again under the lock: another process may have compacted since.
    journals = list_journals(paths)
    # Decided before reading: a journal read after its writer died (or moved on to
    # its next part) is complete.
    dead = {path for path in journals if is_dead(path)}
    finished = dead | finished_parts(journals)
    reached: dict[str, int] = {}  # journal name -> size read by this fold
    positions: dict[Path, int] = {}
    for path in sorted(journals):
        start = offsets.get(path.name, 0)
        if journals[path] < start:
            # Journals only grow; a shorter one is a new file under a reused name.
            logger.warning("kernelflow: journal %s shrank; reading it from the start", path)
            start = 0
        positions[path] = start
    first = dict(positions)
    con.execute(sql.NO_RECENT)
    recent_since: float | None = None
    memory = MemoryLimit()
    in_transaction, batches = False, 0  # batches imported in the open transaction
    per_commit = BATCHES_PER_COMMIT
    stop = getattr(fold_pause, "stop", None)
    while True:
        # Each journal up to the size listed above: a fold does not chase writers.
        pending = [p for p in positions if positions[p] < journals[p]]
        if not in_transaction:
            # Where this transaction starts: read again from here if it is rolled back.
            saved = (dict(positions), dict(journals), dict(reached), dict(offsets))
            saved_report = (report.events, report.bad_lines, recent_since)
        reading = True
        try:
            if stop is not None and stop.is_set():
                raise FoldStopped(f"a fold of {paths.home} was stopped")
            new_offsets = read_batch(
                con, _scratch(paths), pending, positions, journals, reached, memory, BATCH_BYTES
            )
            reading = False
            last = all(positions[p] >= journals[p] for p in pending)
            if new_offsets is None and not last:
                continue  # only unfinished lines were read; the other journals are next
            if not in_transaction:
                con.begin()
                in_transaction = True
            if new_offsets is not None:
                recent_since, events, bad_lines = import_batch(con, new_offsets, recent_since)
                report.events += events
                report.bad_lines += bad_lines
            if last and dead:  # with the last batch: the journals are read to their end
                report.crashed_runs = _crash(con, dead, journals)
            batches += 1
            if last or batches >= per_commit or memory.boost > 1:
                con.commit()
                in_transaction, batches = False, 0
        except BaseException as exc:
            was_open = in_transaction
            if in_transaction:
                _rollback(con)
                in_transaction, batches = False, 0
            if isinstance(exc, duckdb.OutOfMemoryException) and memory.more(paths):
                # A batch of a few huge lines (a logged DataFrame, a big artifact) needs
                # more than the limit: again from the transaction's start, with more.
                pass
            elif reading and was_open and per_commit > 1 and isinstance(exc, duckdb.Error):
                # DuckDB refused a batch parsed inside the open transaction (a torn line),
                # which aborted it, so the slower parse that skips such lines could not
                # run: again from the transaction's start, each batch committed alone.
                per_commit = 1
            else:
                raise
            # Read again from where the rolled-back transaction began.
            positions, journals = dict(saved[0]), dict(saved[1])
            reached, offsets = dict(saved[2]), dict(saved[3])
            report.events, report.bad_lines, recent_since = saved_report
            continue
        if memory.boost > 1:  # committed above
            # The batch's huge values are in the WAL: checkpoint them under the raised
            # limit (a later commit's automatic checkpoint under the usual one would fail).
            con.execute(sql.CHECKPOINT)
            memory.boost = 1
        for statement in sql.DROP_BATCH:  # the batch's parsed events: free them before the next
            con.execute(statement)
        for name, offset in new_offsets or ():
            offsets[name] = offset
        if last:
            break
        pause = getattr(fold_pause, "seconds", 0.0)
        if pause:  # a background fold: let the recording thread run between batches
            time.sleep(pause)
    con.execute(sql.DROP_RECENT)
    report.journals = sum(1 for path in positions if positions[path] > first[path])
    # Only now: after a failed fold the hint must still say "not imported".
    seen = _seen.setdefault(paths.home, {})
    seen.update(reached)

    # Every journal is read to its last complete line by now; what may follow in a
    # finished one is a torn write, which no reader could import anyway.
    for path in sorted(finished):
        try:
            path.unlink()
            report.removed_journals += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("kernelflow: cannot remove finished journal %s: %s", path, exc)
        seen.pop(path.name, None)
        forget_header(path)
    # Offset rows of journals that no longer exist (deleted above, or by an
    # earlier compaction that stopped before this step).
    present = list_journals(paths)
    temp_table(con, "_present", file=("VARCHAR", [p.name for p in present]))
    con.execute(sql.FORGET_OFFSETS)
    con.execute(sql.DROP_PRESENT)
    write_folded(paths, {p.name: offsets.get(p.name, 0) for p in present})
    if report.bad_lines:
        logger.warning("kernelflow: skipped %d unreadable journal lines", report.bad_lines)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    import duckdb

    try:
        con.rollback()
    except duckdb.Error:
        pass  # a failed commit has already ended the transaction; the first error matters
