"""The SQL folding a batch's cache, artifact and ``emit_event`` lines (see :mod:`.fold_sql`).

Each list runs over the batch's ``_ev`` table (every line that is neither a
state nor a task run) when the batch holds events of its kinds.
"""

from __future__ import annotations

__all__ = ["ARTIFACT_STATEMENTS", "CACHE_STATEMENTS", "EVENT_STATEMENTS"]

CACHE_STATEMENTS = [
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
ARTIFACT_STATEMENTS = [
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
EVENT_STATEMENTS = [
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
