"""The SQL of a fold: how a batch of journal lines becomes rows.

See :mod:`kernelflow.store.compact` for the fold itself.

A batch is parsed into three temporary tables (:data:`PARSE`):

``_st``
    ``state`` lines, parsed with only a state's fields (:data:`STATE_TYPE`);
``_tr``
    ``task_run`` lines, parsed with only a task run's fields;
``_ev``
    every other line, parsed with the union of every event's fields
    (:data:`EVENT_TYPE`): flow runs, logs, cache, artifacts, events...

The writer puts ``"ev"`` first, so the kind of a line is its first bytes and the two kinds
that make up almost all of a journal (three lines per trivial task run: its creation, which
stands for its Pending state too, Running and the final state; four in journals written
before that) are parsed into narrow rows. A line of those kinds written another way lands in
``_ev`` and is read from there too (the views ``_sv``/``_tv``).

A task run whose creation and newest state are in the same batch (nearly all
of them) is inserted once, already in that state; only runs carried across
batches, or created after a state (a placeholder), are updated in place.

Events may arrive out of order across journals (a run created by one process
may be moved by another), so a state only overwrites a run row when it is at
least as new as the row's current state, a state for an unknown run creates a
placeholder row that the run's creation event later fills in, and cache
events are merged by timestamp.
"""

from __future__ import annotations

import json

from kernelflow.store.fold_events import ARTIFACT_STATEMENTS, CACHE_STATEMENTS, EVENT_STATEMENTS

__all__ = [
    "AFTER_RUNS",
    "ANY_PLACEHOLDER",
    "BEFORE_RUNS",
    "CARRIED_OLD",
    "CARRIED_OLD_STATEMENTS",
    "CARRIED_RECENT",
    "CARRIED_RECENT_UPDATE",
    "CHECKPOINT",
    "COUNTS",
    "DROP_BATCH",
    "DROP_LINES",
    "DROP_PRESENT",
    "DROP_RECENT",
    "EVENT_TYPE",
    "FORGET_OFFSETS",
    "FORGET_RECENT",
    "NO_RECENT",
    "OFFSETS",
    "READ_OFFSETS",
    "REMEMBER_RECENT",
    "RESET_SETTINGS",
    "SET_MEMORY",
    "SET_THREADS",
    "STATE_STATEMENTS",
    "STATE_TYPE",
    "TASK_STATEMENTS",
    "TASK_TYPE",
    "VIEWS",
    "from_json",
    "parse",
]

#: How DuckDB reads one journal line: the union of every event kind's fields.
#: A field of the wrong type becomes NULL rather than failing the batch.
_FIELDS: dict[str, object] = {
    "ev": "VARCHAR",
    "t": "DOUBLE",
    # process
    "host": "VARCHAR",
    "pid": "BIGINT",
    "start_ticks": "BIGINT",
    "boot_id": "VARCHAR",
    "argv": ["VARCHAR"],
    "part": "INTEGER",  # typed as every field is; the fold reads the part from the file name
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
    "pending": "BOOLEAN",
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
}
EVENT_TYPE = json.dumps(_FIELDS, separators=(",", ":"))


def _fields(*names: str) -> str:
    """The JSON type of a line with only these fields (typed as in the union above)."""
    return json.dumps({name: _FIELDS[name] for name in names}, separators=(",", ":"))


#: A ``state`` line's fields.
STATE_TYPE = _fields(
    "run_id",
    "kind",
    "type",
    "name",
    "message",
    "t",
    "run_count",
    "start_time",
    "end_time",
    "result",
)

#: A ``task_run`` line's fields.
TASK_TYPE = _fields(
    "id", "flow_run_id", "task_name", "name", "tags", "cache_key", "inputs", "t", "pending"
)

_STATE_PREFIX = '{"ev":"state",'
_TASK_PREFIX = '{"ev":"task_run",'


def parse(json_call: str) -> list[str]:
    """Statements parsing ``_batch`` (joined with ``_files``) into ``_st``, ``_tr`` and ``_ev``.

    ``json_call`` is ``from_json`` or, to keep an unreadable line as NULL, ``try_from_json``
    (see :func:`from_json`).
    """
    columns = "f.process, f.host, f.pid, b.file_idx, f.base + b.rel AS seq"
    source = "_batch b JOIN _files f USING (file_idx)"
    return [
        f"""
        CREATE OR REPLACE TEMP TABLE _st AS
        SELECT {columns}, {json_call.format(type=STATE_TYPE)} AS s
        FROM {source} WHERE starts_with(b.line, '{_STATE_PREFIX}')
        """,
        f"""
        CREATE OR REPLACE TEMP TABLE _tr AS
        SELECT {columns}, {json_call.format(type=TASK_TYPE)} AS r
        FROM {source} WHERE starts_with(b.line, '{_TASK_PREFIX}')
        """,
        f"""
        CREATE OR REPLACE TEMP TABLE _ev AS
        SELECT {columns}, {json_call.format(type=EVENT_TYPE)} AS e
        FROM {source}
        WHERE NOT starts_with(b.line, '{_STATE_PREFIX}')
          AND NOT starts_with(b.line, '{_TASK_PREFIX}')
        """,
    ]


def from_json(safe: bool) -> str:
    """The parse call of :func:`parse`: ``try()`` keeps a bad line as a NULL row."""
    return "try(from_json(b.line, '{type}'))" if safe else "from_json(b.line, '{type}')"


#: Events per kind in the batch, and how many of them could not be read.
COUNTS = """
    SELECT 'state', count(*), count(*) FILTER (WHERE s IS NULL) FROM _st
    UNION ALL SELECT 'task_run', count(*), count(*) FILTER (WHERE r IS NULL) FROM _tr
    UNION ALL SELECT e.ev, count(*), 0 FROM _ev GROUP BY e.ev
"""

#: Every state and task run of the batch, whichever table its line was parsed into. A
#: task run line with ``"pending": true`` stands for its Pending state too (same time,
#: same place in the journal); older journals wrote that state as a line of its own.
VIEWS = [
    """
    CREATE OR REPLACE TEMP VIEW _tv AS
    SELECT r.id AS id, r.flow_run_id AS flow_run_id, r.task_name AS task_name, r.name AS name,
           r.tags AS tags, r.cache_key AS cache_key, r.inputs AS inputs, r.t AS t,
           r.pending AS pending, process, host, pid, file_idx, seq
    FROM _tr WHERE r.id IS NOT NULL
    UNION ALL
    SELECT e.id, e.flow_run_id, e.task_name, e.name, e.tags, e.cache_key, e.inputs, e.t,
           e.pending, process, host, pid, file_idx, seq
    FROM _ev WHERE e.ev = 'task_run' AND e.id IS NOT NULL
    """,
    """
    CREATE OR REPLACE TEMP VIEW _sv AS
    SELECT s.run_id AS run_id, s.kind AS kind, s.type AS type, s.name AS name,
           s.message AS message, s.t AS t, s.run_count AS run_count,
           s.start_time AS start_time, s.end_time AS end_time, s.result AS result,
           process, host, pid, file_idx, seq
    FROM _st WHERE s.run_id IS NOT NULL
    UNION ALL
    SELECT e.run_id, e.kind, e.type, e.name, e.message, e.t, e.run_count, e.start_time,
           e.end_time, e.result, process, host, pid, file_idx, seq
    FROM _ev WHERE e.ev = 'state' AND e.run_id IS NOT NULL
    UNION ALL
    SELECT id, 'task', 'PENDING', 'Pending', NULL, t, 0, NULL, NULL, NULL,
           process, host, pid, file_idx, seq
    FROM _tv WHERE pending
    """,
]


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


def _update_state(table: str, extra: str, source: str) -> str:
    """Move existing rows of ``table`` to their newest state in ``source`` (unless older)."""
    return f"""
        UPDATE {table} SET
            state_type = l.state_type, state_name = l.state_name,
            state_message = l.state_message, state_timestamp = l.state_timestamp,
            start_time = coalesce(l.start_time, {table}.start_time),
            end_time = l.end_time,
            duration_s = epoch(l.end_time) - epoch(coalesce(l.start_time, {table}.start_time)),
            run_count = coalesce(l.run_count, {table}.run_count),
            result = l.result, host = l.host, pid = l.pid, process = l.process {extra}
        FROM {source} l
        WHERE {table}.id = l.run_id
          AND ({table}.state_timestamp IS NULL OR l.state_timestamp >= {table}.state_timestamp)
        """


#: Every state's history row, and the newest state of each run of the batch.
STATE_STATEMENTS = [
    """
    INSERT INTO states
    SELECT run_id, kind, type, name, message, to_timestamp(t), process, seq FROM _sv
    """,
    # Later lines win ties.
    """
    CREATE OR REPLACE TEMP TABLE _latest AS
    SELECT run_id, s.kind AS kind, s.type AS state_type, s.name AS state_name,
           s.message AS state_message, to_timestamp(s.t) AS state_timestamp,
           to_timestamp(s.start_time) AS start_time, to_timestamp(s.end_time) AS end_time,
           s.run_count AS run_count, s.result AS result,
           s.host AS host, s.pid AS pid, s.process AS process
    FROM (
        SELECT run_id,
               arg_max(
                   {kind: kind, type: type, name: name, message: message, t: t,
                    start_time: start_time, end_time: end_time,
                    run_count: run_count, result: result,
                    host: host, pid: pid, process: process},
                   (coalesce(t, -1), file_idx, seq)) AS s
        FROM _sv WHERE kind IN ('flow', 'task')
        GROUP BY run_id
    )
    """,
    # A state that arrived before its run's creation event (written by another
    # process) gets a placeholder row, filled in later.
    """
    INSERT INTO flow_runs (id)
    SELECT run_id FROM _latest l
    WHERE kind = 'flow' AND NOT EXISTS (SELECT 1 FROM flow_runs r WHERE r.id = l.run_id)
    """,
    _update_state("flow_runs", "", "(SELECT * FROM _latest WHERE kind = 'flow')"),
]

#: Task runs created in this batch (or made by a state folded before their creation):
#: filled in, then inserted already in their newest state when the batch holds one.
TASK_STATEMENTS = [
    # Rows made by a state folded before their creation: few, found by zone maps on
    # ``created`` (NULL only there) rather than by a scan of every run's id.
    """
    CREATE OR REPLACE TEMP TABLE _placeholders AS
    SELECT t.id FROM task_runs t JOIN (SELECT DISTINCT id FROM _tv) n USING (id)
    WHERE t.created IS NULL
    """,
    """
    UPDATE task_runs SET flow_run_id = n.flow_run_id, task_name = n.task_name,
        name = n.name, tags = n.tags, cache_key = n.cache_key, inputs = n.inputs,
        created = to_timestamp(n.t)
    FROM _tv n
    WHERE task_runs.id = n.id AND task_runs.id IN (SELECT id FROM _placeholders)
      AND task_runs.created IS NULL
    """,
    # One INSERT, no UPDATE, for nearly every run.
    """
    INSERT INTO task_runs BY NAME
    SELECT n.id, n.flow_run_id, n.task_name, n.name, n.tags, n.cache_key, n.inputs,
           to_timestamp(n.t) AS created,
           l.state_type, l.state_name, l.state_message, l.state_timestamp,
           l.start_time, l.end_time, epoch(l.end_time) - epoch(l.start_time) AS duration_s,
           l.run_count, l.result, l.state_name = 'Cached' AS cached,
           coalesce(l.host, n.host) AS host, coalesce(l.pid, n.pid) AS pid,
           coalesce(l.process, n.process) AS process
    FROM _tv n LEFT JOIN (SELECT * FROM _latest WHERE kind = 'task') l ON l.run_id = n.id
    WHERE n.id NOT IN (SELECT id FROM _placeholders)
    """,
    # Newest states of runs created before this batch (or filled above); ``recent``: the
    # run was created by the previous batch of this fold, so its row is among the newest.
    """
    CREATE OR REPLACE TEMP TABLE _carried AS
    SELECT l.*, l.run_id IN (SELECT id FROM _recent) AS recent FROM _latest l
    WHERE kind = 'task'
      AND (run_id NOT IN (SELECT id FROM _tv) OR run_id IN (SELECT id FROM _placeholders))
    """,
]

#: Did a state folded earlier make a row for one of the batch's new runs?
ANY_PLACEHOLDER = "SELECT 1 FROM _placeholders LIMIT 1"
#: Is any carried run not created by the previous batch (so possibly unknown)?
CARRIED_OLD = "SELECT 1 FROM _carried WHERE NOT recent LIMIT 1"
#: Is any carried run created by the previous batch?
CARRIED_RECENT = "SELECT 1 FROM _carried WHERE recent LIMIT 1"

#: States of carried runs that may be unknown: a placeholder for each unknown run, then
#: the update, which scans every run's id.
CARRIED_OLD_STATEMENTS = [
    """
    INSERT INTO task_runs (id)
    SELECT run_id FROM _carried l
    WHERE NOT recent AND NOT EXISTS (SELECT 1 FROM task_runs r WHERE r.id = l.run_id)
    """,
    _update_state(
        "task_runs",
        ", cached = l.state_name = 'Cached'",
        "(SELECT * FROM _carried WHERE NOT recent)",
    ),
]

#: States of runs the previous batch created: ``created >= ?`` (that batch's first
#: creation time) lets zone maps skip every older row group, so the update does not
#: grow with the table.
CARRIED_RECENT_UPDATE = (
    _update_state(
        "task_runs",
        ", cached = l.state_name = 'Cached'",
        "(SELECT * FROM _carried WHERE recent)",
    ).rstrip()
    + "\n          AND task_runs.created >= to_timestamp(?)\n"
)

#: Remember this batch's new runs, and their first creation time, for the next batch.
REMEMBER_RECENT = [
    "CREATE OR REPLACE TEMP TABLE _recent AS SELECT id FROM _tv WHERE t IS NOT NULL",
    "SELECT min(t) FROM _tv",
]
FORGET_RECENT = "UPDATE _carried SET recent = false"
NO_RECENT = "CREATE OR REPLACE TEMP TABLE _recent (id VARCHAR)"


BEFORE_RUNS: list[tuple[tuple[str, ...], list[str]]] = [
    (
        ("process",),
        [
            """
            INSERT INTO processes
            SELECT process, e.host, e.pid, e.start_ticks, e.boot_id, e.argv, to_timestamp(e.t),
                   NULL, 0
            FROM _ev WHERE e.ev = 'process'
              AND NOT EXISTS (SELECT 1 FROM processes p WHERE p.process = _ev.process)
            QUALIFY row_number() OVER (PARTITION BY process ORDER BY seq) = 1
            """
        ],
    ),
    (("flow_run",), _run_statements("flow_runs", "flow_run", _FLOW_COLUMNS)),
]

#: After the states and task runs (:data:`STATE_STATEMENTS`, :data:`TASK_STATEMENTS`).
AFTER_RUNS: list[tuple[tuple[str, ...], list[str]]] = [
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
    (("cache_write", "cache_hit", "cache_delete"), CACHE_STATEMENTS),
    (("artifact", "artifact_update"), ARTIFACT_STATEMENTS),
    (("event",), EVENT_STATEMENTS),
]

#: A batch's journals' new offsets (in ``_offsets``) replace their old ones.
OFFSETS = [
    'DELETE FROM journal_offsets WHERE file IN (SELECT file FROM "_offsets")',
    'INSERT INTO journal_offsets SELECT file, "offset" FROM "_offsets"',
]
READ_OFFSETS = 'SELECT file, "offset" FROM journal_offsets'
#: Offset rows of journals that no longer exist (listed in ``_present``).
FORGET_OFFSETS = 'DELETE FROM journal_offsets WHERE file NOT IN (SELECT file FROM "_present")'
_BATCH_TABLES = "_ev _st _tr _latest _carried _placeholders _new _offsets _files"
_DROPPED = "_batch _present _recent"
DROP_BATCH = [f"DROP TABLE IF EXISTS {t}" for t in _BATCH_TABLES.split()]
#: The batch's lines once parsed; the journals present after a fold; the last batch's runs.
DROP_LINES, DROP_PRESENT, DROP_RECENT = (f"DROP TABLE IF EXISTS {t}" for t in _DROPPED.split())
#: The connection's settings while it folds, and back to the defaults after (checkpointed
#: first, under the fold's memory limit).
SET_THREADS, SET_MEMORY = "SET threads = {threads}", "SET memory_limit = '{megabytes}MB'"
CHECKPOINT, RESET_SETTINGS = "CHECKPOINT", ["RESET threads", "RESET memory_limit"]
