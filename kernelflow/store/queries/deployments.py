"""Questions about deployments: their stored definitions and each one's newest run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kernelflow.store.queries.reading import ROWS, _has_table, _read, _Reader

if TYPE_CHECKING:
    import pandas


def _deployments_exist(reader: _Reader) -> bool:
    """Whether the store has the ``deployments`` table (a store older than it has not)."""
    return _has_table(reader, "deployments")


def deployment_definition(deployment_id: str) -> str | None:
    """The stored definition (JSON text) of the deployment with this id, if it exists.

    Parameters
    ----------
    deployment_id
        The deployment's id.

    Returns
    -------
    str or None
        ``None`` for a deleted deployment, or a store without deployments.
    """
    with _read() as reader:
        if not _deployments_exist(reader):
            return None
        found = reader.one("SELECT definition FROM deployments WHERE id = ?", [deployment_id])
    return None if found is None else str(found[0])


def deployment_definitions() -> list[str] | None:
    """Every deployment's stored definition (JSON text), by name.

    Returns
    -------
    list of str or None
        ``None`` for a store without the ``deployments`` table (written
        before deployments existed).
    """
    with _read() as reader:
        if not _deployments_exist(reader):
            return None
        found = reader.execute("SELECT definition FROM deployments ORDER BY name").fetchall()
    return [str(definition) for (definition,) in found]


def last_deployment_runs() -> pandas.DataFrame:
    """The newest top-level run of each deployment.

    Returns
    -------
    pandas.DataFrame
        ``deployment_id``, and the run's ``id``, ``state_name``,
        ``state_type`` and ``created``.
    """
    with _read() as reader:
        return reader.fetch(_LAST_DEPLOYMENT_RUNS)


def last_deployment_run_rows() -> list[dict[str, Any]]:
    """:func:`last_deployment_runs` as rows."""
    with _read() as reader:
        return reader.fetch(_LAST_DEPLOYMENT_RUNS, None, ROWS)


_LAST_DEPLOYMENT_RUNS = (
    "SELECT deployment_id, arg_max(id, created) AS id, "
    "arg_max(state_name, created) AS state_name, arg_max(state_type, created) AS state_type, "
    "max(created) AS created FROM flow_runs "
    "WHERE deployment_id IS NOT NULL AND parent_flow_run_id IS NULL GROUP BY deployment_id"
)
