"""Flow runs of deployments: recorded like any flow run, with no Python flow behind them."""

from __future__ import annotations

from typing import Any

from kernelflow.engine.lifecycle import record_flow_run, short_repr
from kernelflow.logs import configure as configure_logging
from kernelflow.runs import FlowRun
from kernelflow.states import State

__all__ = ["create_deployment_flow_run"]


def create_deployment_flow_run(
    flow_name: str,
    name: str,
    deployment_id: str,
    parameters: dict[str, Any],
    tags: list[str],
    state: State,
    run_id: str | None = None,
) -> FlowRun:
    """Record a flow run of a deployment (no Python :class:`Flow` behind it) in ``state``.

    A notebook deployment's run is executed by papermill in another process;
    this records it like any flow run so the store, crash detection and
    ``kernelflow runs`` see it. ``run_id`` re-creates a run whose id was
    already claimed (a scheduler taking over a claimed fire).
    """
    configure_logging()
    run = FlowRun(flow_name, name, parameters, list(tags), deployment_id=deployment_id)
    if run_id is not None:
        run.id = run_id
    record_flow_run(run, state, {k: short_repr(v) for k, v in parameters.items()})
    return run
