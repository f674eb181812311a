"""The notebook session: one flow run per kernel, the parent of everything run in it.

In a kernel started by Jupyter, ``JPY_SESSION_NAME`` holds the notebook's path;
the session's flow is named by that path and its flow run by the file name.
Every ``%%task`` cell, and every ``@task``/``@flow`` called at the top level
of a cell (including ``.submit()``, which Prefect refuses outside a flow), is
recorded under it.

The run is created lazily, on the first thing recorded under it, so loading
the extension costs nothing and writes nothing, and a kernel that runs no task
leaves no empty run behind. It ends Completed when the kernel shuts down
(an ``atexit`` hook, after waiting for tasks still submitted); a kernel killed
outright is marked Crashed by the store's next compaction, which sees its
process gone.

In a kernel that executes a deployment run (``KERNELFLOW_DEPLOYMENT_RUN`` set
by :mod:`kernelflow.deployments.runner`) there is no session run: the
deployment run itself is the flow run of the notebook's cells, so its task
runs and ``%%task`` cells are its own. The scheduler that launched the kernel
owns that run's states; the session only mirrors it as Running in memory.
Elsewhere, ``KERNELFLOW_PARENT_FLOW_RUN_ID`` and ``KERNELFLOW_DEPLOYMENT_ID``
in the kernel's environment make the session run a child of that run.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import TYPE_CHECKING, Any

from kernelflow import context
from kernelflow.deployments.from_code import notebook_path
from kernelflow.settings import DEPLOYMENT_RUN_INFO, internal

if TYPE_CHECKING:
    from kernelflow.runs import FlowRun

__all__ = ["NotebookSession", "notebook_path"]

#: The flow name of sessions in a shell that Jupyter did not start (terminal IPython).
FALLBACK_NAME = "ipython-session"
_FLOW_RUN_SLOT = context.FlowRunContext.__dict__["flow_run"]


def _thread_pool() -> Any:
    """The session's task runner (for ``.submit()`` at the top level of a cell)."""
    from kernelflow.runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner()


def _deployment_run() -> FlowRun | None:
    """The deployment run this kernel executes, as a flow run object, or None."""
    import json

    from kernelflow.deployments import in_deployment_run
    from kernelflow.engine.lifecycle import adopt_running
    from kernelflow.runs import FlowRun

    run_id = in_deployment_run()
    if run_id is None:
        return None
    try:
        info = json.loads(internal(DEPLOYMENT_RUN_INFO) or "{}")
    except ValueError:
        info = {}
    name = info.get("name") or FALLBACK_NAME
    run = FlowRun(
        name,
        info.get("flow_run_name") or name,
        dict(info.get("parameters") or {}),
        ["deployment"],
        deployment_id=info.get("id"),
    )
    run.id = run_id
    # In memory only: the launching scheduler has recorded this run Running and owns its
    # states (kernelflow.deployments.execution); tasks only need to see a running flow.
    adopt_running(run, "Deployment run")
    return run


class _SessionFlowContext(context.FlowRunContext):
    """A flow run context whose flow run is created on first use."""

    __slots__ = ("_session",)

    def __init__(self, session: NotebookSession) -> None:
        self._session = session
        # No run yet: the flow_run property below makes it on first use.
        super().__init__(None, None, _thread_pool, False)  # type: ignore[arg-type]

    @property
    def flow_run(self) -> FlowRun:
        run = _FLOW_RUN_SLOT.__get__(self)
        if run is None:
            run = self._session.start()
            _FLOW_RUN_SLOT.__set__(self, run)
        return run

    @flow_run.setter
    def flow_run(self, value: FlowRun | None) -> None:
        _FLOW_RUN_SLOT.__set__(self, value)

    def started_run(self) -> FlowRun | None:
        """The flow run if it was created, without creating it."""
        return _FLOW_RUN_SLOT.__get__(self)


class NotebookSession:
    """The flow run of one kernel session.

    Parameters
    ----------
    path
        The notebook path (default: from ``JPY_SESSION_NAME``).

    Attributes
    ----------
    name
        The flow name: the notebook's path, or ``ipython-session``. Cell
        history and lineage are keyed by it (two ``report.ipynb`` in different
        folders stay apart).
    run_name
        The flow run's name: the notebook's file name (``report.ipynb``); its
        path is also the run's ``notebook_path`` parameter.
    context
        The flow run context registered with
        :func:`kernelflow.context.set_session_flow_context`.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path if path is not None else notebook_path()
        self.name = self.path or FALLBACK_NAME
        # The file name reads well in lists at any width; the path stays the flow's name.
        self.run_name = os.path.basename(self.path) if self.path else FALLBACK_NAME
        self.context = _SessionFlowContext(self)
        self._lock = threading.Lock()
        self._ended = False
        self._pid = os.getpid()
        #: Whether the flow run is a deployment run this kernel executes (not ours to end).
        self.adopted = False

    @property
    def flow_run(self) -> FlowRun:
        """The session's flow run (created now if needed)."""
        return self.context.flow_run

    @property
    def started(self) -> bool:
        """Whether the flow run exists yet."""
        return self.context.started_run() is not None

    def start(self) -> FlowRun:
        """Create and record the flow run, in state Running."""
        from kernelflow.engine.lifecycle import enter_try, record_flow_run
        from kernelflow.logs import configure
        from kernelflow.runs import FlowRun
        from kernelflow.states import Pending

        with self._lock:
            existing = self.context.started_run()
            if existing is not None:
                return existing
            configure()
            adopted = _deployment_run()
            if adopted is not None:
                self.adopted = True
                self.context.flow_run = adopted
                return adopted
            parameters = {"notebook_path": self.path} if self.path else {}
            run = FlowRun(
                self.name,
                self.run_name,
                parameters,
                ["notebook"],
                parent_flow_run_id=internal("KERNELFLOW_PARENT_FLOW_RUN_ID") or None,
                deployment_id=internal("KERNELFLOW_DEPLOYMENT_ID") or None,
            )
            record_flow_run(run, Pending(), parameters)
            enter_try("flow", run, 1, False, "Notebook session")
            self.context.flow_run = run
            return run

    def install(self) -> None:
        """Make this session the flow run of top-level code, and end it at exit."""
        context.set_session_flow_context(self.context)
        atexit.register(self.end)

    def uninstall(self) -> None:
        """Unregister (``%unload_ext``); the run, if started, ends now."""
        if context.session_flow_context() is self.context:
            context.set_session_flow_context(None)
        atexit.unregister(self.end)
        self.end()

    def end(self, message: str = "Notebook session ended") -> None:
        """Wait for tasks still submitted, then put the run in a final state (once)."""
        if self._ended or os.getpid() != self._pid:
            return
        self._ended = True
        run = self.context.started_run()
        if run is None:
            return
        from kernelflow.engine.transitions import set_state
        from kernelflow.futures import wait
        from kernelflow.states import Completed

        wait(list(self.context.futures))  # never raises: each task's state says how it ended
        runner: Any = self.context.task_runner
        if runner is not None:
            runner.shutdown(wait=True)
            self.context.task_runner = None
        if self.adopted:
            return  # the scheduler that launched this kernel ends the deployment run
        if run.state is None or not run.state.is_final():
            set_state("flow", run, Completed(message=message))
