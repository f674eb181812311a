"""Deployments and claims in the DuckDB store, as the deployments package sees them.

Every statement lives in :mod:`kernelflow.store.deployments` (which explains
how exactly-once rests on ``deployment_fires`` and ``deployment_attempts``);
this module turns its rows into :class:`Deployment` objects and names the
claims the scheduler and executions make. Each call opens the database for
a few milliseconds and never while a notebook runs.
"""

from __future__ import annotations

import json
from typing import Any

from kernelflow.deployments.models import Deployment
from kernelflow.errors import DeploymentNotFoundError
from kernelflow.store.deployments import (
    claim_attempt,
    claim_fire,
    claim_skipped,
    delete_deployment_row,
    deployment_row,
    deployment_rows,
    last_slots,
    orphaned_runs,
    release_attempt,
    take_over_attempt,
    unstarted_fires,
    write_deployments,
)

__all__ = [
    "claim_attempt",
    "claim_fire",
    "claim_skipped",
    "delete_deployment",
    "get_deployment",
    "last_slots",
    "load_deployments",
    "orphaned_runs",
    "release_attempt",
    "save_deployment",
    "save_deployments",
    "set_paused",
    "take_over_attempt",
    "unstarted_fires",
]


def save_deployment(deployment: Deployment, update: bool) -> Deployment:
    """Insert ``deployment``, or replace the one of that name when ``update`` is true.

    Raises
    ------
    ConfigurationError
        The name exists and ``update`` is false.
    """
    return save_deployments([deployment], update)[0]


def save_deployments(deployments: list[Deployment], update: bool) -> list[Deployment]:
    """:func:`save_deployment` for many, in one transaction (all or none)."""
    from kernelflow.runs import new_id

    write_deployments(deployments, update, new_id)
    return deployments


def load_deployments() -> list[Deployment]:
    """Every deployment, by name; one that cannot run has its ``problem`` set (never raises)."""
    return [_from_row(*r) for r in deployment_rows()]


def _from_row(definition: Any, dep_id: Any, name: Any) -> Deployment:
    """A stored deployment, even from a definition that is not JSON (then with a problem)."""
    try:
        data = json.loads(definition)
    except (TypeError, ValueError):
        data = None
    if not isinstance(data, dict):
        data = {"id": dep_id, "name": name}  # from_definition reports it incomplete
    return Deployment.from_definition(data)


def get_deployment(name: str) -> Deployment:
    """The deployment called ``name``.

    Raises
    ------
    DeploymentNotFoundError
        No deployment has that name.
    """
    row = deployment_row(name)
    if row is None:
        raise DeploymentNotFoundError(
            f"No deployment is called {name!r}; list them with 'kernelflow deployment ls'."
        )
    return _from_row(*row)


def set_paused(name: str, paused: bool) -> Deployment:
    """Pause or resume ``name``; a resumed deployment fires from now on, not for the pause."""
    deployment = get_deployment(name)
    deployment.paused = paused
    return save_deployment(deployment, update=True)


def delete_deployment(name: str) -> Deployment:
    """Remove ``name``; its runs and claims stay in the history."""
    deployment = get_deployment(name)
    delete_deployment_row(deployment.id)
    return deployment
