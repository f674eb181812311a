"""The engine: the one place that moves flow and task runs through their states.

A task run goes Pending → Running → Completed | Cached | Failed | TimedOut,
with AwaitingRetry → Retrying between tries; a flow run the same, plus
Crashed when the process is interrupted. The terminal state is always written,
in ``finally`` if need be. Sync and async runs share every decision and one
driver body per kind; the drivers only differ in how they call, wait and sleep.

Modules, from the bottom up:

``transitions``
    :func:`set_state`, the only function that changes a run's state; listeners,
    hooks, the "Finished in state" line.
``lifecycle``
    recording a flow run, starting a try, an interrupted run: shared with the
    notebook session and deployment runs.
``inputs``
    upstream futures and states resolved to values; input lineage.
``task_attempt``, ``task_run``
    one task run's decisions; creating task runs and driving them.
``flow_attempt``, ``flow_run``
    one flow run's decisions; driving flow runs (plain and generator).
``deployment_runs``
    recording runs of deployments.
``pauses``
    the final state of a run whose pause timed out.

This package re-exports the names code outside it has used; code inside
kernelflow imports each name from the module that defines it.
"""

from kernelflow.engine.deployment_runs import create_deployment_flow_run
from kernelflow.engine.flow_run import (
    run_flow,
    run_flow_async,
    run_generator_flow,
    run_generator_flow_async,
)
from kernelflow.engine.task_run import create_task_run, run_task, run_task_any, run_task_async
from kernelflow.engine.transitions import set_state, subscribe, unsubscribe

__all__ = [
    "create_deployment_flow_run",
    "create_task_run",
    "run_flow",
    "run_flow_async",
    "run_generator_flow",
    "run_generator_flow_async",
    "run_task",
    "run_task_any",
    "run_task_async",
    "set_state",
    "subscribe",
    "unsubscribe",
]
