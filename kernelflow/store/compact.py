"""Compaction: fold the per-process journals into the DuckDB file.

Design
------
Every process appends events to its own journal (see
:mod:`kernelflow.store.journal`); any process may fold them into the
database. A fold, under the store's write lock:

1. lists the journals and decides which belong to processes that are dead
   on this host, *before* reading them, so a dead journal is known complete;
2. reads the journals from their stored offsets up to their last complete
   line, in batches of about :data:`BATCH_BYTES`, so its memory is that of
   one batch however long the journals are;
3. in ONE transaction per batch: bulk-inserts the batch's events (an Arrow
   table of raw lines parsed by DuckDB's ``from_json``), applies the newest
   state of each run to its row, applies cache events, artifacts and events
   (``emit_event``) and stores the journals' new offsets; with the last batch,
   marks the unfinished runs of dead processes ``Crashed``. A crash mid-way
   keeps the batches committed before it and commits nothing of the rest, so
   nothing is imported twice;
4. after the commit, deletes the dead journals, then their offset rows (in
   that order: a crash in between leaves an orphan offset row, removed next
   time, never a journal without its offset, which would be re-imported).

Events may arrive out of order across journals (a run created by one process
may be moved by another), so a state only overwrites a run row when it is at
least as new as the row's current state, a state for an unknown run creates a
placeholder row that the run's creation event later fills in, and cache
events are merged by timestamp.

Before opening the database, :func:`compact` compares journal sizes with what
this process last saw and checks for dead journals; when nothing changed it
returns without importing DuckDB at all.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import sys
import threading
import time
from array import array
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING

from kernelflow import settings
from kernelflow.errors import ConfigurationError
from kernelflow.settings import StorePaths
from kernelflow.store.journal import ProcessIdentity, current_journal, process_is_alive
from kernelflow.store.schema import TERMINAL_STATE_TYPES

if TYPE_CHECKING:
    import duckdb

__all__ = ["CompactReport", "compact", "fold", "start_background_compaction"]

logger = logging.getLogger("kernelflow.store")

_SUFFIX = ".jsonl"

#: How DuckDB reads one journal line: the union of every event kind's fields.
#: A field of the wrong type becomes NULL rather than failing the batch.
_EVENT_TYPE = json.dumps(
    {
        "ev": "VARCHAR",
        "t": "DOUBLE",
        # process
        "host": "VARCHAR",
        "pid": "BIGINT",
        "start_ticks": "BIGINT",
        "boot_id": "VARCHAR",
        "argv": ["VARCHAR"],
        # flow_run / task_run
        "id": "VARCHAR",
        "name": "VARCHAR",
        "flow_name": "VARCHAR",
        "version": "VARCHAR",
        "parent_flow_run_id": "VARCHAR",
        "parent_task_run_id": "VARCHAR",
        "deployment_id": "VARCHAR",
        "parameters": "JSON",
        "tags": ["VARCHAR"],
        "flow_run_id": "VARCHAR",
        "task_name": "VARCHAR",
        "cache_key": "VARCHAR",
        "inputs": "JSON",
        # state / log / outputs
        "run_id": "VARCHAR",
        "kind": "VARCHAR",
        "type": "VARCHAR",
        "message": "VARCHAR",
        "run_count": "INTEGER",
        "start_time": "DOUBLE",
        "end_time": "DOUBLE",
        "result": "VARCHAR",
        "level": "INTEGER",
        "logger": "VARCHAR",
        "outputs": "JSON",
        # cache_write / cache_hit / cache_delete
        "key": "VARCHAR",
        "checksum": "VARCHAR",
        "size": "BIGINT",
        "created": "DOUBLE",
        "expires": "DOUBLE",
        "task_run_id": "VARCHAR",
        "duration": "DOUBLE",
        # artifact / artifact_update (also id, key, type, flow_run_id, task_run_id)
        "description": "VARCHAR",
        "data": "VARCHAR",
        # event (also id, flow_run_id, task_run_id)
        "event": "VARCHAR",
        "occurred": "DOUBLE",
        "resource": "JSON",
        "related": "JSON",
        "payload": "JSON",
    },
    separators=(",", ":"),
)

# A dead process's Scheduled runs are promises for later, not work it was
# doing, so they are not Crashed with it.
_NOT_CRASHABLE_TYPES = ", ".join(f"'{t}'" for t in (*TERMINAL_STATE_TYPES, "SCHEDULED"))
# NotReady (a PENDING state) is where a task run ends when an upstream failed:
# it will never start, so its process exiting does not crash it.
_NOT_CRASHABLE_NAMES = "'NotReady'"


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
        Journals of dead processes deleted after their last import.
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
# Journal path -> its parsed first line; a complete first line never changes.
_headers: dict[Path, dict] = {}


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

        _register_exit_hook_before_duckdb()

        from kernelflow.store.db import connect, translate_error

        with connect(paths, timeout=timeout) as con:
            report.opened = True
            try:
                fold(con, paths, report)
            except duckdb.IOException as exc:  # e.g. the disk filled up mid-way
                raise translate_error(exc, paths) from None
    report.seconds = time.perf_counter() - started
    return report


def _journals(paths: StorePaths) -> dict[Path, int]:
    """Journal path -> size, for every journal of the store."""
    found = {}
    try:
        with os.scandir(paths.journal) as entries:
            for entry in entries:
                if entry.name.endswith(_SUFFIX):
                    try:
                        found[Path(entry.path)] = entry.stat().st_size
                    except FileNotFoundError:
                        pass  # deleted by a compaction in another process
    except FileNotFoundError:
        pass
    return found


def _has_work(paths: StorePaths) -> bool:
    seen = _seen.get(paths.home, {})
    return any(
        size != seen.get(path.name) or _is_dead(path) for path, size in _journals(paths).items()
    )


def _header(path: Path) -> dict | None:
    """The ``process`` line a journal starts with, or None if not (yet) complete."""
    header = _headers.get(path)
    if header is None:
        try:
            with open(path, "rb") as fh:
                first = fh.read(65536)
        except OSError:
            return None
        end = first.find(b"\n")
        try:
            parsed = json.loads(first[:end]) if end > 0 else None
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("ev") == "process":
            header = _headers[path] = parsed
    return header


def _identity(path: Path) -> tuple[str, int, int, str]:
    """(host, pid, start_ticks, boot_id) of a journal's writer: header, else file name."""
    header = _header(path)
    if header is not None:
        try:
            return (
                str(header["host"]),
                int(header["pid"]),
                int(header.get("start_ticks") or 0),
                str(header.get("boot_id") or ""),
            )
        except (KeyError, TypeError, ValueError):
            pass
    host, _, rest = path.name[: -len(_SUFFIX)].partition("--")
    pid, _, rest = rest.partition("--")
    ticks = rest.partition("--")[0]
    # The file name holds the host name with unsafe characters replaced: only
    # our own (identically replaced) name can be compared.
    if host == _safe_host():
        host = socket.gethostname()
    try:
        return host, int(pid), int(ticks), ""
    except ValueError:
        return host, -1, 0, ""


def _safe_host() -> str:
    return ProcessIdentity(socket.gethostname(), 0, 0, "").file_name.partition("--")[0]


def _is_dead(path: Path) -> bool:
    """True only for a journal whose process is known to be gone (never for other hosts)."""
    host, pid, ticks, boot_id = _identity(path)
    return pid > 0 and process_is_alive(host, pid, ticks, boot_id) is False


def _read_new_lines(
    path: Path, start: int, limit: int | None = None
) -> tuple[list[bytes], array, int, int]:
    """Complete lines of ``path`` from byte ``start``, about ``limit`` bytes of them.

    Returns the lines, their offsets, the offset after the last one, and the
    size read (larger when the file ends with a partial line). With ``limit``,
    at most that many bytes are read, except that a single line longer than
    ``limit`` is read whole (a fold always moves on).
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read() if limit is None else fh.read(limit)
            if limit is not None and len(data) == limit and b"\n" not in data:
                data += _rest_of_line(fh)
    except FileNotFoundError:
        return [], array("q"), start, start
    end = data.rfind(b"\n") + 1  # a final partial line waits for its newline
    lines = data[:end].split(b"\n")
    lines.pop()  # the empty string after the last newline
    # Line i starts after lines 0..i-1 and their newlines.
    seqs = array("q", accumulate((len(line) + 1 for line in lines), initial=start))
    seqs.pop()
    return lines, seqs, start + end, start + len(data)


def _rest_of_line(fh) -> bytes:
    """The bytes up to and including the next newline (or the end of the file)."""
    pieces = []
    while chunk := fh.read(1 << 20):
        newline = chunk.find(b"\n")
        if newline >= 0:
            pieces.append(chunk[: newline + 1])
            break
        pieces.append(chunk)
    return b"".join(pieces)


def fold(con: duckdb.DuckDBPyConnection, paths: StorePaths, report: CompactReport) -> None:
    """Import every journal's new lines into the open database ``con``, in batches.

    What :func:`compact` does once it holds the store's write lock, and what
    :mod:`kernelflow.store.repair` does into a fresh database (whose empty
    ``journal_offsets`` make every journal read from its first byte). The
    batches are of about :data:`BATCH_BYTES`.

    Each batch is one transaction holding its events and its journals' new
    offsets, so a fold stopped between batches keeps what it committed and
    imports nothing twice; its memory is that of one batch, however long the
    journals are (a kernel open for weeks, a flow of a million tasks). The
    runs of dead processes are marked Crashed with the last batch, once their
    journals have been read to the end.
    """
    offsets = dict(con.execute('SELECT file, "offset" FROM journal_offsets').fetchall())
    # Listed again under the lock: another process may have compacted since.
    journals = _journals(paths)
    # Decided before reading: a journal read after its writer died is complete.
    dead = {path for path in journals if _is_dead(path)}
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
    while True:
        # Each journal up to the size listed above: a fold does not chase writers.
        pending = [p for p in positions if positions[p] < journals[p]]
        batch = _read_batch(con, pending, positions, journals, reached)
        last = all(positions[p] >= journals[p] for p in pending)
        if batch is None and not last:
            continue  # only unfinished lines were read; the other journals are next
        con.begin()
        try:
            if batch is not None:
                _import(con, batch, report)
            if last and dead:  # with the last batch: the journals are read to their end
                report.crashed_runs = _crash(con, dead, journals)
            con.commit()
        except BaseException:
            _rollback(con)
            raise
        if last:
            break
    con.execute("DROP TABLE IF EXISTS _ev")  # a batch's parsed events: free them now
    report.journals = sum(1 for path in positions if positions[path] > first[path])
    # Only now: after a failed fold the hint must still say "not imported".
    seen = _seen.setdefault(paths.home, {})
    seen.update(reached)

    for path in dead:
        try:
            path.unlink()
            report.removed_journals += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("kernelflow: cannot remove finished journal %s: %s", path, exc)
        seen.pop(path.name, None)
        _headers.pop(path, None)
    # Offset rows of journals that no longer exist (deleted above, or by an
    # earlier compaction that stopped before this step).
    present = _table(file=_strings([p.name for p in _journals(paths)]))
    con.register("_present", present)
    con.execute('DELETE FROM journal_offsets WHERE file NOT IN (SELECT file FROM "_present")')
    if report.bad_lines:
        logger.warning("kernelflow: skipped %d unreadable journal lines", report.bad_lines)


#: About this many journal bytes are parsed and imported per transaction of a fold.
BATCH_BYTES = 8 * 1024 * 1024


def _read_batch(
    con: duckdb.DuckDBPyConnection,
    pending: list[Path],
    positions: dict[Path, int],
    journals: dict[Path, int],
    reached: dict[str, int],
) -> list[tuple[str, int]] | None:
    """Read up to :data:`BATCH_BYTES` of ``pending`` journals into the temporary table ``_ev``.

    Moves ``positions`` past the lines read and returns the journals' new
    offsets, or None when no complete line was read.
    """
    import pyarrow as pa

    lines: list[bytes] = []
    seqs = array("q")
    file_idx = array("i")
    files, new_offsets = [], []
    budget = BATCH_BYTES
    for path in pending:
        if budget <= 0:
            break
        start = positions[path]
        limit = min(budget, journals[path] - start)
        new_lines, new_seqs, end, read = _read_new_lines(path, start, limit)
        reached[path.name] = read
        budget -= read - start
        if not new_lines:  # a partial line only: its writer has not finished it yet
            journals[path] = start
            continue
        positions[path] = end
        host, pid, _, _ = _identity(path)
        file_idx.extend(array("i", [len(files)]) * len(new_lines))
        files.append((path.name[: -len(_SUFFIX)], host, pid))
        lines += new_lines
        seqs += new_seqs
        new_offsets.append((path.name, end))
    if not lines:
        return None
    table = _table(file_idx=_ints(file_idx, pa.int32()), seq=_ints(seqs, pa.int64()))
    _parse(con, table.append_column("line", _strings(lines)), files)
    return new_offsets


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    import duckdb

    try:
        con.rollback()
    except duckdb.Error:
        pass  # a failed commit has already ended the transaction; the first error matters


# Arrow arrays are built from buffers, not with pa.array()/pa.table(): those
# probe their input for pandas objects and so import pandas (~1 s), which a
# process compacting at exit should not pay.


def _ints(values: array, type_):
    import pyarrow as pa

    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


def _strings(values: list[bytes] | list[str]):
    """A string array of ``values`` (bytes are UTF-8; invalid bytes are replaced)."""
    import pyarrow as pa

    pieces = [v.encode() if isinstance(v, str) else v for v in values]
    offsets = array("q", accumulate(map(len, pieces), initial=0))
    data = pa.py_buffer(b"".join(pieces))
    strings = pa.Array.from_buffers(
        pa.large_string(), len(pieces), [None, pa.py_buffer(offsets), data]
    )
    try:
        strings.validate(full=True)
    except pa.ArrowInvalid:
        # Rare: a lone surrogate that the journal wrote with "surrogatepass".
        return _strings([p.decode("utf-8", "replace") for p in pieces])
    return strings


def _table(**columns):
    import pyarrow as pa

    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


def _parse(con, batch, files) -> None:
    """Parse the new lines into the temporary table ``_ev`` (outside the transaction)."""
    import duckdb
    import pyarrow as pa

    con.register("_batch", batch)
    con.register(
        "_files",
        _table(
            file_idx=_ints(array("i", range(len(files))), pa.int32()),
            process=_strings([f[0] for f in files]),
            host=_strings([f[1] for f in files]),
            pid=_ints(array("q", [f[2] for f in files]), pa.int64()),
        ),
    )
    parse = """
        CREATE OR REPLACE TEMP TABLE _ev AS
        SELECT f.process, f.host, f.pid, b.file_idx, b.seq, {event} AS e
        FROM _batch b JOIN _files f USING (file_idx)
        """
    event = f"from_json(b.line, '{_EVENT_TYPE}')"
    try:
        con.execute(parse.format(event=event))
    except duckdb.Error:
        # A line that is not JSON (a torn write): parse again, slower, keeping it as NULL.
        con.execute(parse.format(event=f"try({event})"))


def _import(con, new_offsets, report: CompactReport) -> None:
    import pyarrow as pa

    counts = dict(con.execute("SELECT e.ev, count(*) FROM _ev GROUP BY ALL").fetchall())
    report.events += sum(counts.values())
    report.bad_lines += counts.get(None, 0)
    for ev, statements in _STATEMENTS:
        if any(counts.get(kind) for kind in ev):
            for statement in statements:
                con.execute(statement)
    con.register(
        "_offsets",
        _table(
            file=_strings([o[0] for o in new_offsets]),
            offset=_ints(array("q", [o[1] for o in new_offsets]), pa.int64()),
        ),
    )
    con.execute('DELETE FROM journal_offsets WHERE file IN (SELECT file FROM "_offsets")')
    con.execute('INSERT INTO journal_offsets SELECT file, "offset" FROM "_offsets"')


def _run_statements(table: str, creation: str, columns: str) -> list[str]:
    """Insert new runs of one kind; fill placeholders a state created earlier.

    A run is created once, by one event, and each event is imported once, so
    the anti-join against the table is all the deduplication needed.
    """
    names = [c.split(" AS ")[-1].strip() for c in columns.split(",")]
    assignments = ", ".join(f"{n} = n.{n}" for n in names if n != "id")
    return [
        f"""
        CREATE OR REPLACE TEMP TABLE _new AS
        SELECT {columns}, to_timestamp(e.t) AS created, host, pid, process
        FROM _ev WHERE e.ev = '{creation}' AND e.id IS NOT NULL
        """,
        # A placeholder already carries the host and process of its (newer) state: keep them.
        f"""
        UPDATE {table} SET {assignments}, created = n.created
        FROM _new n WHERE {table}.id = n.id AND {table}.created IS NULL
        """,
        f"""
        INSERT INTO {table} BY NAME
        SELECT * FROM _new n WHERE NOT EXISTS (SELECT 1 FROM {table} r WHERE r.id = n.id)
        """,
    ]


_FLOW_COLUMNS = (
    "e.id AS id, e.name AS name, e.flow_name AS flow_name, e.version AS flow_version, "
    "e.parent_flow_run_id AS parent_flow_run_id, e.parent_task_run_id AS parent_task_run_id, "
    "e.deployment_id AS deployment_id, e.parameters AS parameters, e.tags AS tags"
)
_TASK_COLUMNS = (
    "e.id AS id, e.flow_run_id AS flow_run_id, e.task_name AS task_name, e.name AS name, "
    "e.tags AS tags, e.cache_key AS cache_key, e.inputs AS inputs"
)


def _state_statements() -> list[str]:
    statements = [
        """
        INSERT INTO states
        SELECT e.run_id, e.kind, e.type, e.name, e.message, to_timestamp(e.t), process, seq
        FROM _ev WHERE e.ev = 'state' AND e.run_id IS NOT NULL
        """,
        # The newest state of each run in this batch; later lines win ties.
        """
        CREATE OR REPLACE TEMP TABLE _latest AS
        SELECT run_id, s.kind AS kind, s.type AS state_type, s.name AS state_name,
               s.message AS state_message, to_timestamp(s.t) AS state_timestamp,
               to_timestamp(s.start_time) AS start_time, to_timestamp(s.end_time) AS end_time,
               s.run_count AS run_count, s.result AS result,
               s.host AS host, s.pid AS pid, s.process AS process
        FROM (
            SELECT e.run_id AS run_id,
                   arg_max(
                       {kind: e.kind, type: e.type, name: e.name, message: e.message, t: e.t,
                        start_time: e.start_time, end_time: e.end_time,
                        run_count: e.run_count, result: e.result,
                        host: host, pid: pid, process: process},
                       (coalesce(e.t, -1), file_idx, seq)) AS s
            FROM _ev WHERE e.ev = 'state' AND e.run_id IS NOT NULL AND e.kind IN ('flow', 'task')
            GROUP BY e.run_id
        )
        """,
    ]
    for table, kind, extra in (
        ("flow_runs", "flow", ""),
        ("task_runs", "task", ", cached = l.state_name = 'Cached'"),
    ):
        statements += [
            # A state that arrived before its run's creation event (written by
            # another process) gets a placeholder row, filled in later.
            f"""
            INSERT INTO {table} (id)
            SELECT run_id FROM _latest l
            WHERE kind = '{kind}' AND NOT EXISTS (SELECT 1 FROM {table} r WHERE r.id = l.run_id)
            """,
            f"""
            UPDATE {table} SET
                state_type = l.state_type, state_name = l.state_name,
                state_message = l.state_message, state_timestamp = l.state_timestamp,
                start_time = coalesce(l.start_time, {table}.start_time),
                end_time = l.end_time,
                duration_s = epoch(l.end_time) - epoch(coalesce(l.start_time, {table}.start_time)),
                run_count = coalesce(l.run_count, {table}.run_count),
                result = l.result, host = l.host, pid = l.pid, process = l.process {extra}
            FROM _latest l
            WHERE {table}.id = l.run_id AND l.kind = '{kind}'
              AND ({table}.state_timestamp IS NULL
                   OR l.state_timestamp >= {table}.state_timestamp)
            """,
        ]
    return statements


_CACHE_STATEMENTS = [
    """
    CREATE OR REPLACE TEMP TABLE _cache AS
    SELECT e.*, file_idx, seq FROM _ev
    WHERE e.ev IN ('cache_write', 'cache_hit', 'cache_delete') AND e.key IS NOT NULL
    """,
    """
    INSERT INTO cache_entries (key, hits, deleted)
    SELECT DISTINCT key, 0, false FROM _cache c
    WHERE NOT EXISTS (SELECT 1 FROM cache_entries x WHERE x.key = c.key)
    """,
    # The newest write of a key wins, whatever order journals are read in.
    """
    UPDATE cache_entries SET
        task_name = w.task_name, result = w.result, checksum = w.checksum, size = w.size,
        created = w.created, expires = w.expires, task_run_id = w.task_run_id,
        duration_s = w.duration
    FROM (
        SELECT key, task_name, result, checksum, size,
               to_timestamp(coalesce(created, t)) AS created, to_timestamp(expires) AS expires,
               task_run_id, duration
        FROM _cache WHERE ev = 'cache_write'
        QUALIFY row_number() OVER (
            PARTITION BY key ORDER BY coalesce(created, t) DESC NULLS LAST, file_idx DESC, seq DESC
        ) = 1
    ) w
    WHERE cache_entries.key = w.key
      AND (cache_entries.created IS NULL OR w.created >= cache_entries.created)
    """,
    """
    UPDATE cache_entries SET hits = hits + h.n, last_hit = greatest(last_hit, h.last)
    FROM (SELECT key, count(*) AS n, to_timestamp(max(t)) AS last
          FROM _cache WHERE ev = 'cache_hit' GROUP BY key) h
    WHERE cache_entries.key = h.key
    """,
    """
    UPDATE cache_entries SET deleted_at = greatest(deleted_at, d.t)
    FROM (SELECT key, to_timestamp(max(t)) AS t
          FROM _cache WHERE ev = 'cache_delete' GROUP BY key) d
    WHERE cache_entries.key = d.key
    """,
    # Deleted unless written again after the last delete.
    """
    UPDATE cache_entries
    SET deleted = deleted_at IS NOT NULL AND (created IS NULL OR deleted_at >= created)
    WHERE key IN (SELECT key FROM _cache)
    """,
]

# Artifacts: an ``artifact`` line creates one, ``artifact_update`` lines (progress)
# replace its data and, when given, its description. An update may be folded before
# its creation (another process's journal, read first), so as with runs an unknown
# id gets a placeholder row that the creation fills in; the newest data wins.
_ARTIFACT_STATEMENTS = [
    """
    CREATE OR REPLACE TEMP TABLE _artifact AS
    SELECT e.ev AS ev, e.id AS id, e.key AS key, e.type AS type,
           e.description AS description, e.data AS data, e.flow_run_id AS flow_run_id,
           e.task_run_id AS task_run_id, to_timestamp(e.t) AS t, file_idx, seq
    FROM _ev WHERE e.ev IN ('artifact', 'artifact_update') AND e.id IS NOT NULL
    """,
    """
    INSERT INTO artifacts (id)
    SELECT DISTINCT id FROM _artifact a
    WHERE NOT EXISTS (SELECT 1 FROM artifacts x WHERE x.id = a.id)
    """,
    """
    UPDATE artifacts SET key = c.key, type = c.type, flow_run_id = c.flow_run_id,
        task_run_id = c.task_run_id, created = c.t
    FROM (SELECT * FROM _artifact WHERE ev = 'artifact'
          QUALIFY row_number() OVER (PARTITION BY id ORDER BY file_idx, seq) = 1) c
    WHERE artifacts.id = c.id AND artifacts.created IS NULL
    """,
    # The description first, compared with the row's time before this batch moves it
    # (an older one still fills a row that has none: a creation folded after its updates).
    """
    UPDATE artifacts SET description = d.description
    FROM (SELECT id, description, t FROM _artifact WHERE description IS NOT NULL
          QUALIFY row_number() OVER (
              PARTITION BY id ORDER BY t DESC, file_idx DESC, seq DESC) = 1) d
    WHERE artifacts.id = d.id
      AND (artifacts.updated IS NULL OR d.t >= artifacts.updated
           OR artifacts.description IS NULL)
    """,
    """
    UPDATE artifacts SET data = d.data, updated = d.t
    FROM (SELECT id, data, t FROM _artifact
          QUALIFY row_number() OVER (
              PARTITION BY id ORDER BY t DESC, file_idx DESC, seq DESC) = 1) d
    WHERE artifacts.id = d.id AND (artifacts.updated IS NULL OR d.t >= artifacts.updated)
    """,
]

# Events (emit_event): inserted once per id, as Prefect's server keeps one event per id
# (a caller may give the id, and send the same event twice).
_EVENT_STATEMENTS = [
    """
    INSERT INTO events BY NAME
    SELECT n.* FROM (
        SELECT e.id AS id, e.event AS event, to_timestamp(coalesce(e.occurred, e.t)) AS occurred,
               json_extract_string(e.resource, '$."prefect.resource.id"') AS resource_id,
               e.resource AS resource, coalesce(e.related, '[]') AS related,
               coalesce(e.payload, '{}') AS payload,
               e.flow_run_id AS flow_run_id, e.task_run_id AS task_run_id
        FROM _ev WHERE e.ev = 'event' AND e.id IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY e.id ORDER BY file_idx, seq) = 1
    ) n
    WHERE NOT EXISTS (SELECT 1 FROM events x WHERE x.id = n.id)
    """,
]

_STATEMENTS: list[tuple[tuple[str, ...], list[str]]] = [
    (
        ("process",),
        [
            """
            INSERT INTO processes
            SELECT process, e.host, e.pid, e.start_ticks, e.boot_id, e.argv, to_timestamp(e.t),
                   NULL, 0
            FROM _ev WHERE e.ev = 'process'
            """
        ],
    ),
    (("flow_run",), _run_statements("flow_runs", "flow_run", _FLOW_COLUMNS)),
    (("task_run",), _run_statements("task_runs", "task_run", _TASK_COLUMNS)),
    (
        # The engine learns input hashes and the cache key after creating a
        # task run; this event fills them in.
        ("inputs",),
        [
            """
            CREATE OR REPLACE TEMP TABLE _inputs AS
            SELECT e.run_id AS run_id, e.cache_key AS cache_key, e.inputs AS hashes
            FROM _ev WHERE e.ev = 'inputs' AND e.run_id IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY e.run_id ORDER BY file_idx DESC, seq DESC) = 1
            """,
            """
            UPDATE task_runs SET cache_key = coalesce(i.cache_key, task_runs.cache_key)
            FROM _inputs i WHERE task_runs.id = i.run_id
            """,
            # {"x": "h1"} is merged into {"x": {"hash": null, "upstream": ...}}.
            """
            UPDATE task_runs
            SET inputs = json_merge_patch(coalesce(task_runs.inputs, '{}'), p.patch)
            FROM (
                SELECT run_id,
                       json_group_object(name, json_object('hash', hashes ->> name)) AS patch
                FROM (SELECT run_id, hashes, unnest(json_keys(hashes)) AS name FROM _inputs)
                GROUP BY run_id
            ) p
            WHERE task_runs.id = p.run_id
            """,
        ],
    ),
    (("state",), _state_statements()),
    (
        ("outputs",),
        [
            """
            UPDATE task_runs SET outputs = o.outputs
            FROM (SELECT e.run_id AS run_id, e.outputs AS outputs FROM _ev
                  WHERE e.ev = 'outputs' AND e.run_id IS NOT NULL
                  QUALIFY row_number() OVER (
                      PARTITION BY e.run_id ORDER BY file_idx DESC, seq DESC) = 1) o
            WHERE task_runs.id = o.run_id
            """
        ],
    ),
    (
        ("log",),
        [
            """
            INSERT INTO logs
            SELECT e.run_id, e.kind, e.level,
                   CASE e.level WHEN 50 THEN 'CRITICAL' WHEN 40 THEN 'ERROR'
                        WHEN 30 THEN 'WARNING' WHEN 20 THEN 'INFO' WHEN 10 THEN 'DEBUG'
                        WHEN 0 THEN 'NOTSET' ELSE 'Level ' || e.level END,
                   e.logger, e.message, to_timestamp(e.t), process, seq
            FROM _ev WHERE e.ev = 'log'
            """
        ],
    ),
    (("cache_write", "cache_hit", "cache_delete"), _CACHE_STATEMENTS),
    (("artifact", "artifact_update"), _ARTIFACT_STATEMENTS),
    (("event",), _EVENT_STATEMENTS),
]


def _crash(con, dead: set[Path], journals: dict[Path, int]) -> int:
    """Mark the unfinished runs of dead processes Crashed; return how many."""
    import pyarrow as pa

    rows = []
    for path in sorted(dead):
        host, pid, _, _ = _identity(path)
        rows.append((path.name[: -len(_SUFFIX)], host, pid, journals[path]))
    con.register(
        "_dead",
        _table(
            process=_strings([r[0] for r in rows]),
            host=_strings([r[1] for r in rows]),
            pid=_ints(array("q", [r[2] for r in rows]), pa.int64()),
            # After every event of the journal, so Crashed sorts last.
            seq=_ints(array("q", [r[3] for r in rows]), pa.int64()),
        ),
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _crashed AS
        SELECT r.id, r.kind, d.process, d.seq, now() AS noticed,
               'Process ' || d.pid || ' on host ' || d.host || ' exited while this run was '
               || coalesce(r.state_name, 'Pending') AS message
        FROM (SELECT id, process, state_type, state_name, 'flow' AS kind FROM flow_runs
              UNION ALL
              SELECT id, process, state_type, state_name, 'task' AS kind FROM task_runs) r
        JOIN _dead d ON r.process = d.process
        WHERE coalesce(r.state_type, '') NOT IN ({_NOT_CRASHABLE_TYPES})
          AND coalesce(r.state_name, '') NOT IN ({_NOT_CRASHABLE_NAMES})
        """
    )
    con.execute(
        """
        INSERT INTO states
        SELECT id, kind, 'CRASHED', 'Crashed', message, noticed, process, seq FROM _crashed
        """
    )
    for table, kind in (("flow_runs", "flow"), ("task_runs", "task")):
        con.execute(
            f"""
            UPDATE {table} SET
                state_type = 'CRASHED', state_name = 'Crashed', state_message = c.message,
                state_timestamp = c.noticed, end_time = c.noticed,
                duration_s = epoch(c.noticed) - epoch({table}.start_time)
            FROM _crashed c WHERE {table}.id = c.id AND c.kind = '{kind}'
            """
        )
    con.execute(
        """
        UPDATE processes SET ended = now(),
            crashed_runs = (SELECT count(*) FROM _crashed c WHERE c.process = processes.process)
        WHERE process IN (SELECT process FROM _dead)
        """
    )
    return con.execute("SELECT count(*) FROM _crashed").fetchone()[0]


# -- background and at-exit compaction ---------------------------------------------------------


class _Compactor(threading.Thread):
    """A daemon thread folding this process's journal into the store every few seconds."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="kernelflow-compactor", daemon=True)
        self.interval = interval
        self.pid = os.getpid()
        self._stopping = threading.Event()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the current compaction, if any; wait up to ``timeout`` seconds."""
        self._stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    def run(self) -> None:
        compacted: dict[Path, int] = {}  # journal -> its size at our last compaction
        while not self._stopping.wait(self.interval):
            journal = current_journal()
            try:
                size = journal.path.stat().st_size
            except FileNotFoundError:
                continue  # nothing written yet, or the store was removed (a test's temporary one)
            if compacted.get(journal.path) != size and _compact_quietly("background"):
                compacted[journal.path] = size
                _retention_quietly()


def _retention_quietly() -> None:
    """The automatic retention policy, if set and due; a failure is logged, never raised."""
    from kernelflow.store.prune import apply_retention

    try:
        report = apply_retention()
    except Exception as exc:  # best effort, as background compaction
        logger.warning("kernelflow: automatic pruning (KERNELFLOW_RETENTION) failed: %s", exc)
        return
    if report is not None and (report.flow_runs or report.task_runs or report.result_files):
        logger.info(
            "kernelflow: pruned %d flow runs, %d task runs and %d result files older than "
            "KERNELFLOW_RETENTION",
            report.flow_runs,
            report.task_runs,
            report.result_files,
        )


_background: _Compactor | None = None
_background_lock = threading.Lock()
_last_warning: str | None = None


def start_background_compaction(interval: float | None = None) -> _Compactor:
    """Compact every ``interval`` seconds while this process's journal grows.

    Idempotent per process; also registers a compaction at interpreter exit.
    Failures are logged as warnings, never raised.

    Parameters
    ----------
    interval
        Seconds between checks; default ``KERNELFLOW_COMPACT_SECONDS`` (5).

    Returns
    -------
    threading.Thread
        The daemon thread; its ``stop()`` ends it.
    """
    global _background
    with _background_lock:
        if _background is None or _background.pid != os.getpid() or not _background.is_alive():
            if interval is None:
                interval = settings.env_seconds("COMPACT_SECONDS", 5.0)
            _background = _Compactor(interval)
            _background.start()
            _register_exit_hook()
        return _background


_exit_hook_registered = False


def _register_exit_hook() -> None:
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_compact_at_exit)
        _exit_hook_registered = True


_hook_before_duckdb = False
#: Set when this process's exit compaction has begun: a fold failing from then on
#: (DuckDB interrupts its queries at exit) is expected, and its events wait in the journal.
_exiting = False


def _register_exit_hook_before_duckdb() -> None:
    """Run the exit compaction before DuckDB's own exit hooks, which interrupt queries.

    ``import duckdb`` registers atexit hooks that interrupt running queries
    (``INTERRUPT Error: Interrupted!``) and refuse new ones. atexit runs hooks
    last-registered first, so a hook registered after that import runs before
    them: the background fold in progress finishes, and an inline exit fold
    can still use DuckDB.
    """
    global _hook_before_duckdb
    if not _hook_before_duckdb:
        atexit.register(_compact_at_exit)
        _hook_before_duckdb = True


def _compact_at_exit() -> None:
    global _exiting
    if _exiting:
        return  # registered twice (see _register_exit_hook_before_duckdb): once is enough
    _exiting = True
    if _background is not None and _background.pid == os.getpid():
        _background.stop(timeout=2.0)  # it may hold the lock; let it finish first
    journal = current_journal()
    if not journal.events_written:
        return
    try:
        mode = settings.env_choice("COMPACT_AT_EXIT", "detach", ("detach", "inline", "off"))
    except ConfigurationError as exc:  # at exit nobody can act on an exception: say it once
        logger.warning("kernelflow: %s", exc)
        mode = "detach"
    if mode == "inline":
        # Short wait: a foreign program holding the database must not stall
        # the exit; the events stay in the journal for the next compaction.
        _compact_quietly("at exit", timeout=2.0)
    elif mode == "detach":
        _detach_compaction()


def _detach_compaction() -> None:
    """Fold this process's events in a detached child, so a short script exits at once.

    Importing DuckDB and pyarrow costs most of a second; a script that ran one
    small flow should not wait for it. The child outlives us by about that
    long; if it cannot start, the events simply wait in the journal for the
    next reader, which compacts before it queries.
    """
    import subprocess

    env = dict(os.environ, KERNELFLOW_HOME=str(settings.home()))
    try:
        subprocess.Popen(
            [sys.executable, "-m", "kernelflow.store.compact"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    except OSError as exc:
        logger.debug("kernelflow: could not start the exit compaction: %s", exc)


def _compact_quietly(when: str, timeout: float | None = None) -> bool:
    """Best-effort :func:`compact`: True on success; a failure is logged, never raised."""
    global _last_warning
    try:
        compact(timeout=timeout)
    except Exception as exc:  # best effort by design; recorded below
        if sys.is_finalizing() or (_exiting and when != "at exit"):
            # Interrupted because this process is exiting: normal, and nothing is lost
            # (the fold's transaction is rolled back; the next one imports the journal).
            logger.debug("kernelflow: %s compaction stopped at exit: %s", when, exc)
            return False
        message = f"kernelflow: {when} compaction failed: {exc}"
        # The same failure every few seconds (a CLI holding the file) is logged once.
        logger.log(logging.DEBUG if message == _last_warning else logging.WARNING, message)
        _last_warning = message
        return False
    _last_warning = None
    return True


if __name__ == "__main__":  # the detached exit compaction (see _detach_compaction)
    _compact_quietly("detached")
