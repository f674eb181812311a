"""Crashed runs: the unfinished runs of a process that is gone, marked ``Crashed`` by a fold.

:func:`crash` runs in the transaction of a fold's last batch, once the dead
processes' journals are read to their end (see :mod:`kernelflow.store.compact`),
so a run's last recorded state is known before it is overwritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kernelflow.store.journal_bytes import temp_table
from kernelflow.store.journals import JournalName, identity
from kernelflow.store.schema import TERMINAL_STATE_TYPES

if TYPE_CHECKING:
    import duckdb

__all__ = ["CRASHED_COUNT", "CRASH_STATEMENTS", "NOT_CRASHABLE_TYPES", "crash"]

# A dead process's Scheduled runs are promises for later, not work it was
# doing, so they are not Crashed with it.
NOT_CRASHABLE_TYPES = ", ".join(f"'{t}'" for t in (*TERMINAL_STATE_TYPES, "SCHEDULED"))
# NotReady (a PENDING state) is where a task run ends when an upstream failed:
# it will never start, so its process exiting does not crash it.
_NOT_CRASHABLE_NAMES = "'NotReady'"

#: Mark the unfinished runs of the dead processes in ``_dead`` (process, host, pid, seq)
#: Crashed; ``_crashed`` is left holding them.
CRASH_STATEMENTS = [
    f"""
    CREATE OR REPLACE TEMP TABLE _crashed AS
    SELECT r.id, r.kind, d.process, d.seq, now() AS noticed,
           'Process ' || d.pid || ' on host ' || d.host || ' exited while this run was '
           || coalesce(r.state_name, 'Pending') AS message
    FROM (SELECT id, process, state_type, state_name, 'flow' AS kind FROM flow_runs
          UNION ALL
          SELECT id, process, state_type, state_name, 'task' AS kind FROM task_runs) r
    JOIN _dead d ON r.process = d.process
    WHERE coalesce(r.state_type, '') NOT IN ({NOT_CRASHABLE_TYPES})
      AND coalesce(r.state_name, '') NOT IN ({_NOT_CRASHABLE_NAMES})
    """,
    """
    INSERT INTO states
    SELECT id, kind, 'CRASHED', 'Crashed', message, noticed, process, seq FROM _crashed
    """,
    *(
        f"""
        UPDATE {table} SET
            state_type = 'CRASHED', state_name = 'Crashed', state_message = c.message,
            state_timestamp = c.noticed, end_time = c.noticed,
            duration_s = epoch(c.noticed) - epoch({table}.start_time)
        FROM _crashed c WHERE {table}.id = c.id AND c.kind = '{kind}'
        """
        for table, kind in (("flow_runs", "flow"), ("task_runs", "task"))
    ),
    """
    UPDATE processes SET ended = now(),
        crashed_runs = (SELECT count(*) FROM _crashed c WHERE c.process = processes.process)
    WHERE process IN (SELECT process FROM _dead)
    """,
]

CRASHED_COUNT = "SELECT count(*) FROM _crashed"


def crash(con: duckdb.DuckDBPyConnection, dead: set[Path], journals: dict[Path, int]) -> int:
    """Mark the unfinished runs of dead processes Crashed; return how many."""
    rows: dict[str, tuple[str, int, int]] = {}  # process -> host, pid, seq after its events
    for path in sorted(dead):
        host, pid, _, _ = identity(path)
        name = JournalName.parse(path.name)
        # After every event of the process's journals, so Crashed sorts last.
        seq = name.seq_base() + journals[path]
        if name.process not in rows or rows[name.process][2] < seq:
            rows[name.process] = (host, pid, seq)
    processes = sorted(rows)
    temp_table(
        con,
        "_dead",
        process=("VARCHAR", processes),
        host=("VARCHAR", [rows[p][0] for p in processes]),
        pid=("BIGINT", [rows[p][1] for p in processes]),
        seq=("BIGINT", [rows[p][2] for p in processes]),
    )
    for statement in CRASH_STATEMENTS:
        con.execute(statement)
    (crashed,) = con.execute(CRASHED_COUNT).fetchall()[0]
    con.execute("DROP TABLE _dead")
    return crashed
