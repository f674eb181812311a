"""What the running code can learn about its run, as Prefect's ``prefect.runtime``.

>>> from kernelflow import runtime
>>> runtime.flow_run.name, runtime.task_run.name, runtime.deployment.name
(None, None, None)

Three modules, each answering from the run the calling code is part of, at
the moment an attribute is read:

* :mod:`~kernelflow.runtime.flow_run`: the current flow run. In a notebook
  with ``%load_ext kernelflow`` that is the kernel session's run (or a flow
  called in it); in a task, the flow run the task belongs to.
* :mod:`~kernelflow.runtime.task_run`: the current task run, including a
  ``%%task`` cell.
* :mod:`~kernelflow.runtime.deployment`: the deployment whose run executes
  this notebook (papermill, started by ``kernelflow scheduler`` or
  ``run_deployment``), from what the worker passes to the kernel.

Outside a run every attribute is empty: ``None``, ``{}``, ``[]`` or ``0``
(``scheduled_start_time`` is now), as in Prefect. For tests, an environment
variable ``KERNELFLOW__RUNTIME__<MODULE>__<ATTRIBUTE>`` (Prefect's
``PREFECT__RUNTIME__...``) replaces a value, converted to its type, e.g.
``KERNELFLOW__RUNTIME__FLOW_RUN__NAME=test-run``.
"""

from __future__ import annotations

from kernelflow.runtime import deployment, flow_run, task_run

__all__ = ["deployment", "flow_run", "task_run"]
