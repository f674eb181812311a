"""Questions about task runs: a flow run's task runs, and how many are in each state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kernelflow.store.queries.bounds import _span, _span_of
from kernelflow.store.queries.reading import FRAME, ROWS, Shape, _read, _Reader

if TYPE_CHECKING:
    import pandas


def task_runs_of(flow_run_id: str) -> pandas.DataFrame:
    """The task runs of one flow run, in the order they were created.

    Parameters
    ----------
    flow_run_id
        The flow run's id.

    Returns
    -------
    pandas.DataFrame
        Rows of ``task_runs``.
    """
    with _read() as reader:
        return _task_runs(reader, [flow_run_id], FRAME)


def task_run_rows(flow_run_ids: str | Sequence[str]) -> list[dict[str, Any]]:
    """The task runs of one or more flow runs as rows, in the order they were created.

    Parameters
    ----------
    flow_run_ids
        A flow run's id, or several (a deployment run and its notebook session).

    Returns
    -------
    list of dict
        Rows of ``task_runs``.
    """
    ids = [flow_run_ids] if isinstance(flow_run_ids, str) else list(flow_run_ids)
    with _read() as reader:
        return _task_runs(reader, ids, ROWS)


def _task_runs(reader: _Reader, flow_run_ids: list[str], shape: Shape) -> Any:
    params: dict[str, Any] = {"ids": flow_run_ids}
    bound = _span(reader, flow_run_ids).where("created", params)
    found = reader.fetch(
        f"SELECT * FROM task_runs WHERE list_contains($ids, flow_run_id){bound} "
        "ORDER BY created NULLS LAST, id",
        params,
        shape,
    )
    if shape == ROWS and len(flow_run_ids) == 1:
        reader.task_ids[flow_run_ids[0]] = [row["id"] for row in found]
    return found


def task_state_counts(flow_run_ids: Sequence[str]) -> pandas.DataFrame:
    """How many task runs of each flow run are in each state.

    A deployment run's own tasks run in the notebook session its kernel
    records as a child run; they are counted as the deployment run's.

    Parameters
    ----------
    flow_run_ids
        The flow runs to count for.

    Returns
    -------
    pandas.DataFrame
        ``flow_run_id``, ``state_name``, ``state_type`` and ``n``.
    """
    with _read() as reader:
        return _task_state_counts(reader, flow_run_ids, FRAME)


def task_state_count_rows(
    flow_run_ids: Sequence[str], runs: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """:func:`task_state_counts` as rows.

    Parameters
    ----------
    flow_run_ids
        The flow runs to count for.
    runs
        Those flow runs' rows, when the caller has read them already (with
        ``created``, ``end_time`` and ``state_type`` as the store returns
        them): they bound the count without reading them again.
    """
    with _read() as reader:
        return _task_state_counts(reader, flow_run_ids, ROWS, runs)


def _task_state_counts(
    reader: _Reader, flow_run_ids: Sequence[str], shape: Shape, runs: list[dict] | None = None
) -> Any:
    """The counts; ``runs``, when the caller read them already, spare a lookup of their span."""
    params: dict[str, Any] = {"ids": list(flow_run_ids)}
    span = _span(reader, flow_run_ids) if runs is None else _span_of(runs)
    tasks = span.where("t.created", params)
    # The flow runs involved lie in the same span as their task runs (a session starts
    # after the deployment run that started it), so each scan of flow_runs is bounded too.
    listed = span.where("created", {})
    sessions = span.where("s.created", {})
    return reader.fetch(
        f"""
        WITH listed AS (
            SELECT id, deployment_id FROM flow_runs WHERE list_contains($ids, id){listed}
        ),
        owners AS (
            SELECT id AS member, id AS owner FROM listed
            UNION ALL
            SELECT s.id, s.parent_flow_run_id FROM flow_runs s
            JOIN listed o ON o.id = s.parent_flow_run_id
            WHERE o.deployment_id IS NOT NULL
              AND coalesce(list_contains(s.tags, 'notebook'), FALSE){sessions}
        )
        SELECT owners.owner AS flow_run_id, coalesce(t.state_name, 'Unknown') AS state_name,
               t.state_type, count(*) AS n
        FROM task_runs t JOIN owners ON t.flow_run_id = owners.member
        WHERE TRUE{tasks}
        GROUP BY ALL
        """,
        params,
        shape,
    )
