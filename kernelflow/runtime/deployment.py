"""The deployment whose run executes this notebook: ``runtime.deployment.name`` and so on.

=================  ===================================================  ===========
attribute          value                                                outside
=================  ===================================================  ===========
``id``             the deployment's id                                  ``None``
``name``           its name, as given to ``kernelflow deploy``          ``None``
``version``        its notebook snapshot's content hash                 ``None``
``parameters``     the run's parameters (the deployment's defaults,     ``{}``
                   overridden by those given for this run)
``flow_run_id``    the deployment run's flow run id                     see below
=================  ===================================================  ===========

A deployment run executes its notebook in a fresh kernel (papermill); the
worker passes the run's identity to that kernel, so these values are the
same in every cell, in every ``@flow``/``@task`` called there and in
``%%task`` cells. Outside a deployment run they are empty, except
``flow_run_id``, which is then the current flow run's id as in Prefect
(``None`` outside any flow run). ``KERNELFLOW__RUNTIME__DEPLOYMENT__<ATTRIBUTE>``
overrides a value (see :mod:`kernelflow.runtime`).

Example
-------
A cell of a deployed notebook::

    from kernelflow import runtime
    print(f"{runtime.deployment.name} run {runtime.deployment.flow_run_id}")
    region = runtime.deployment.parameters.get("region", "eu")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kernelflow.runtime import _common


def _text(key: str) -> str | None:
    """A text field of the deployment worker's run info (None if it is absent or not text)."""
    value = _common.deployment_info().get(key)
    return value if isinstance(value, str) else None


def get_id() -> str | None:
    """The id of the deployment this run belongs to."""
    deployment_id = _text("id")
    if deployment_id:
        return deployment_id
    run = _common.started_flow_run(_common.flow_context())
    return (run.deployment_id if run is not None else None) or None


def get_name() -> str | None:
    """The deployment's name."""
    return _text("name")


def get_version() -> str | None:
    """The deployment's version: the content hash of its notebook snapshot."""
    return _text("version")


def get_parameters() -> dict[str, Any]:
    """The deployment run's parameters (the deployment's, with this run's on top)."""
    parameters = _common.deployment_info().get("parameters")
    return dict(parameters) if isinstance(parameters, dict) else {}


def get_flow_run_id() -> str | None:
    """The deployment run's flow run id; outside one, the current flow run's id."""
    flow_run_id = _text("flow_run_id")
    if flow_run_id:
        return flow_run_id
    ctx = _common.flow_context()
    return ctx.flow_run.id if ctx is not None else None


FIELDS: dict[str, Callable[[], Any]] = {
    "id": get_id,
    "name": get_name,
    "version": get_version,
    "parameters": get_parameters,
    "flow_run_id": get_flow_run_id,
}
#: Public names (read through the module __getattr__ below).
__all__ = sorted(FIELDS)


def __getattr__(name: str) -> Any:
    return _common.attribute("deployment", name, FIELDS)


def __dir__() -> list[str]:
    return sorted(__all__)
