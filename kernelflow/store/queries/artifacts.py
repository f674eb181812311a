"""What a run leaves besides task runs and logs (artifacts, webhook notices); the cache table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kernelflow.store.queries.bounds import _span
from kernelflow.store.queries.reading import (
    _NAMED_TASK_RUNS,
    FRAME,
    ROWS,
    Shape,
    _has_table,
    _read,
    _Reader,
)

if TYPE_CHECKING:
    import pandas


def webhooks_of(flow_run_id: str) -> pandas.DataFrame:
    """The webhook notifications sent for a flow run, oldest first.

    Parameters
    ----------
    flow_run_id
        The flow run's id.

    Returns
    -------
    pandas.DataFrame
        Rows of the ``webhooks`` view (``url``, ``outcome``, ``detail``,
        ``timestamp``); empty for a store older than the view.
    """
    with _read() as reader:
        return _webhooks(reader, flow_run_id, FRAME)


def webhook_rows(flow_run_id: str) -> list[dict[str, Any]]:
    """:func:`webhooks_of` as rows."""
    with _read() as reader:
        return _webhooks(reader, flow_run_id, ROWS)


def _webhooks(reader: _Reader, flow_run_id: str, shape: Shape) -> Any:
    if not _has_table(reader, "webhooks", "views"):
        return reader.fetch("SELECT NULL::VARCHAR AS url WHERE FALSE", None, shape)
    params: dict[str, Any] = {"run": flow_run_id}
    bound = _span(reader, [flow_run_id]).where("timestamp", params)
    return reader.fetch(
        "SELECT url, outcome, detail, timestamp FROM webhooks WHERE flow_run_id = $run"
        f"{bound} ORDER BY timestamp",
        params,
        shape,
    )


def cache_entries(include_deleted: bool = False) -> pandas.DataFrame:
    """The task cache: one row per cache key, most recently written first.

    Parameters
    ----------
    include_deleted
        Also list entries that were deleted (``deleted`` is True).

    Returns
    -------
    pandas.DataFrame
        Rows of ``cache_entries``.
    """
    where = "" if include_deleted else "WHERE NOT deleted"
    with _read() as reader:
        return reader.fetch(
            f"SELECT * FROM cache_entries {where} ORDER BY created DESC NULLS LAST, key"
        )


#: The columns of an artifact as `runs show`, REST and `Artifact.get` read them.
_ARTIFACT_COLUMNS = "id, key, type, description, data, flow_run_id, task_run_id, created, updated"


def artifacts_of(flow_run_id: str) -> pandas.DataFrame:
    """The artifacts of a flow run and of its task runs, in the order they were created.

    Parameters
    ----------
    flow_run_id
        The flow run's id.

    Returns
    -------
    pandas.DataFrame
        Rows of ``artifacts``.
    """
    with _read() as reader:
        return _artifacts(reader, flow_run_id, FRAME)


def artifact_rows(flow_run_id: str) -> list[dict[str, Any]]:
    """:func:`artifacts_of` as rows."""
    with _read() as reader:
        return _artifacts(reader, flow_run_id, ROWS)


def _artifacts(reader: _Reader, flow_run_id: str, shape: Shape) -> Any:
    params: dict[str, Any] = {"run": flow_run_id}
    tasks = reader.task_ids.get(flow_run_id)
    if tasks is not None and len(tasks) <= _NAMED_TASK_RUNS:
        # Its task runs were read whole on this connection, in the same span: named,
        # so task_runs is not read again.
        params["tasks"] = tasks
        of_tasks = "list_contains($tasks, task_run_id)"
    else:
        bound = _span(reader, [flow_run_id]).where("created", params)
        of_tasks = f"task_run_id IN (SELECT id FROM task_runs WHERE flow_run_id = $run{bound})"
    return reader.fetch(
        f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts "
        f"WHERE created IS NOT NULL AND (flow_run_id = $run OR {of_tasks}) "
        "ORDER BY created, id",
        params,
        shape,
    )


def latest_artifact(key: str) -> pandas.DataFrame:
    """The most recently updated artifact with ``key`` (Prefect's ``Artifact.get``).

    Parameters
    ----------
    key
        The artifact key.

    Returns
    -------
    pandas.DataFrame
        At most one row of ``artifacts``.
    """
    with _read() as reader:
        return reader.fetch(
            f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE key = ? AND created IS NOT NULL "
            "ORDER BY updated DESC NULLS LAST, created DESC, id DESC LIMIT 1",
            [key],
        )
