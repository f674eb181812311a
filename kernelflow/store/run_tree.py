"""Read query for one flow run with everything under it, as ``kernelflow demo`` prints it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas

__all__ = ["EXAMPLE_QUERY", "run_tree"]

#: A first query to show users, for ``kernelflow sql`` or ``kernelflow.sql``.
EXAMPLE_QUERY = "SELECT flow_name, state_name, duration_s FROM flow_runs"


def run_tree(flow_run_id: str) -> pandas.DataFrame:
    """Flow run ``flow_run_id``, its direct subflows and all their task runs, oldest first.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind`` (``flow`` or ``task``), ``flow``, ``run``,
        ``state_name``, ``duration_s``, ``tries``, ``cached`` and ``created``.
    """
    from kernelflow.store.queries import sql

    return sql(
        """
        WITH runs AS (
            SELECT * FROM flow_runs WHERE id = $root OR parent_flow_run_id = $root
        )
        SELECT 'flow' AS kind, flow_name AS flow, name AS run, state_name, duration_s,
               run_count AS tries, NULL AS cached, created
        FROM runs
        UNION ALL
        SELECT 'task', runs.flow_name, t.name, t.state_name, t.duration_s,
               t.run_count, t.cached, t.created
        FROM task_runs AS t JOIN runs ON t.flow_run_id = runs.id
        ORDER BY created
        """,
        {"root": flow_run_id},
    )
