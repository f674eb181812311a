"""Read queries for a notebook's ``%%task`` cells: their lineage and their latest runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas

__all__ = ["cell_runs", "notebook_task_runs"]


def cell_runs(notebook: str | None = None) -> pandas.DataFrame:
    """Every run of a ``%%task`` cell (a task run with recorded outputs), oldest first.

    Parameters
    ----------
    notebook:
        Only the cells of this notebook session's flow name; None for every notebook.

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``task_name``, ``state_name``, ``inputs``, ``outputs``
        (JSON text) and ``created``.
    """
    from kernelflow.store.queries import sql

    query = (
        "SELECT t.id, t.task_name, t.state_name, t.inputs, t.outputs, t.created "
        "FROM task_runs t JOIN flow_runs f ON t.flow_run_id = f.id "
        "WHERE t.outputs IS NOT NULL"
    )
    params: list[str] = []
    if notebook:
        query += " AND f.flow_name = ?"
        params.append(notebook)
    return sql(query + " ORDER BY t.created NULLS FIRST, t.id", params)


def notebook_task_runs(notebook: str, limit: int) -> pandas.DataFrame:
    """The ``limit`` newest task runs of notebook ``notebook`` (all its sessions), newest first.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``state``, ``duration_s``, ``cached``, ``tries``,
        ``created``, ``message`` and ``id``.
    """
    from kernelflow.store.queries import sql

    return sql(
        """
        SELECT t.name, t.state_name AS state, round(t.duration_s, 3) AS duration_s,
               t.cached, t.run_count AS tries, t.created, t.state_message AS message, t.id
        FROM task_runs t JOIN flow_runs f ON t.flow_run_id = f.id
        WHERE f.flow_name = ?
        ORDER BY t.created DESC NULLS LAST, t.id DESC
        LIMIT ?
        """,
        [notebook, limit],
    )
