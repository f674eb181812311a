"""Notebook deployments: papermill runs of a notebook on a croniter schedule, exactly once.

>>> from kernelflow.deployments import deploy, run_deployment
>>> deploy("report.ipynb", "daily", cron="0 6 * * *", parameters={"n": 5})  # doctest: +SKIP
>>> run_deployment("daily", parameters={"n": 7}).state                       # doctest: +SKIP
Completed(...)

Modules: :mod:`.schedules` (cron and interval, time zones, DST),
:mod:`.parameters` (typed ``parameters`` cells), :mod:`.models`,
:mod:`.registry` (deploy / pause / resume / delete, notebook snapshots),
:mod:`.records` (the store's tables and claims), :mod:`.execution` (one
run's states and tries), :mod:`.runner` (papermill in a worker process),
:mod:`.html_copy` (an executed notebook's HTML, made on first view),
:mod:`.scaleout` (Dask), :mod:`.scheduler`, :mod:`.catchup`,
:mod:`.notify`, :mod:`.project` (``kernelflow.yaml``).
"""

from __future__ import annotations

import threading
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernelflow.deployments.models import Deployment
    from kernelflow.deployments.registry import (
        delete,
        deploy,
        get,
        list_deployments,
        pause,
        resume,
    )
    from kernelflow.deployments.scheduler import Scheduler

__all__ = [
    "Deployment",
    "Scheduler",
    "delete",
    "deploy",
    "get",
    "in_deployment_run",
    "list_deployments",
    "pause",
    "resume",
    "run_deployment",
]


# Loaded on first use: the worker process (``python -m kernelflow.deployments.runner``)
# imports this package first and should start in milliseconds.
_LAZY = {
    "Deployment": "kernelflow.deployments.models",
    "Scheduler": "kernelflow.deployments.scheduler",
    **{
        name: "kernelflow.deployments.registry"
        for name in ("delete", "deploy", "get", "list_deployments", "pause", "resume")
    },
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def in_deployment_run() -> str | None:
    """The deployment run's id when this process is a kernel executing one, else None."""
    from kernelflow.settings import DEPLOYMENT_RUN, internal

    return internal(DEPLOYMENT_RUN) or None


def run_deployment(
    name: str, parameters: dict[str, Any] | None = None, timeout: float | None = None
) -> Any:
    """Run deployment ``name`` now, as Prefect's ``run_deployment`` does; return its flow run.

    Parameters
    ----------
    name
        The deployment's name (``flow/name`` is accepted, as Prefect writes it).
    parameters
        Values for the notebook's ``parameters`` cell, converted to their types
        (a bad name or value is refused before anything runs).
    timeout
        Seconds to wait. ``None`` (default): the run executes in this process
        (a worker process and a fresh kernel) and its final state is returned.
        ``0``: the run is queued for a running ``kernelflow scheduler`` and
        returned at once, Scheduled. A positive number: as ``None``, but
        returns after at most that long, the run going on in a thread.
        When the run executes here, its worker process starts first (while
        the run is checked and claimed), and the run's events are folded
        into the store once it has ended.

    Returns
    -------
    kernelflow.runs.FlowRun
        With ``.id`` and ``.state``.
    """
    import time

    from kernelflow.deployments.standby import StandbyWorkers
    from kernelflow.settings import paths

    if timeout is not None:
        from kernelflow._durations import check_seconds

        timeout = check_seconds(timeout, "timeout", allow_zero=True)
    queue_only = timeout is not None and timeout <= 0
    # A run executed here starts its worker first: the worker's imports (papermill,
    # ~0.5 s of CPU) overlap the imports, checks and claims below instead of following
    # them. (A store not created yet has no deployment: the checks below say so.)
    home = paths().home
    standby = StandbyWorkers(0 if queue_only or not home.is_dir() else 1, home, refill=False)
    standby.start()
    try:
        from kernelflow.deployments import records
        from kernelflow.deployments.execution import RunExecution, create_run, new_run_id
        from kernelflow.deployments.parameters import coerce_parameters, read_snapshot
        from kernelflow.deployments.registry import get
        from kernelflow.deployments.scheduler.slots import after_hook
        from kernelflow.deployments.wake import signal_change

        deployment = get(name.rsplit("/", 1)[-1])
        if deployment.problem is not None:
            from kernelflow.errors import ConfigurationError

            raise ConfigurationError(deployment.problem)
        nb = read_snapshot(deployment.snapshot_path(paths().home))
        typed = coerce_parameters(nb, dict(parameters or {}), f"deployment {deployment.name!r}")
        now = time.time()
        run_id = new_run_id()
        if not records.claim_fire(
            deployment.id, now, run_id, "manual", typed, start=not queue_only
        ):
            from kernelflow.errors import KernelflowError

            raise KernelflowError("That run was claimed by another process; try again.")
        run = create_run(deployment, now, typed, run_id=run_id, message="Run on demand")
    except BaseException:
        standby.close()
        raise
    if queue_only:
        signal_change()
        return run
    execution = RunExecution(
        deployment, run, now, typed, on_final=after_hook, launcher=standby.launch
    )

    def execute() -> None:
        try:
            execution.execute()
        finally:
            standby.close()  # the worker of a run that never reached its try
        execution.wait_for_files()  # its worker exited: its journal is complete
        _fold_now()

    if timeout is None:
        execute()
        return run
    thread = threading.Thread(target=execute, name=f"kernelflow-run-{run.id[-8:]}")
    thread.start()
    thread.join(timeout)
    return run


def _fold_now() -> None:
    """Fold the store here, now: the run's events are in queries when ``run_deployment`` returns.

    This process has DuckDB loaded already (for the claims), so folding one
    run's events costs it ~0.2 s of CPU; left to exit, they would cost a
    process that loads DuckDB again (~0.4 s of CPU). A store busy for more than a
    moment (a scheduler folding a backlog) is not waited for: the events stay
    in the journals for the next fold, as they would at exit.
    """
    import logging

    from kernelflow.errors import StoreError
    from kernelflow.store import compact

    logger = logging.getLogger("kernelflow.deployments")
    try:
        compact(timeout=0.5)
    except StoreError as exc:  # busy or not writable: the next fold imports the events
        logger.debug("kernelflow: no fold after the run: %s", exc)
    except Exception as exc:  # the run is over and recorded: its fold failing must not fail it
        logger.warning("kernelflow: folding after the deployment run failed: %s", exc)
