"""The notebook session: one flow run per kernel, the parent of everything run in it.

In a kernel started by Jupyter, ``JPY_SESSION_NAME`` holds the notebook's path;
the session's flow run is named after it. Every ``%%task`` cell, and every
``@task``/``@flow`` called at the top level of a cell (including
``.submit()``, which Prefect refuses outside a flow), is recorded under it.

The run is created lazily, on the first thing recorded under it, so loading
the extension costs nothing and writes nothing, and a kernel that runs no task
leaves no empty run behind. It ends Completed when the kernel shuts down
(an ``atexit`` hook, after waiting for tasks still submitted); a kernel killed
outright is marked Crashed by the store's next compaction, which sees its
process gone.

A scheduler that runs the notebook (papermill) may set
``KERNELFLOW_PARENT_FLOW_RUN_ID`` and ``KERNELFLOW_DEPLOYMENT_ID`` in the
kernel's environment: the session run is then recorded as a child of that run.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from kernelflow import context

if TYPE_CHECKING:
    from kernelflow.runs import FlowRun

__all__ = ["NotebookSession", "notebook_path"]

#: The flow name of sessions in a shell that Jupyter did not start (terminal IPython).
FALLBACK_NAME = "ipython-session"
_FLOW_RUN_SLOT = context.FlowRunContext.__dict__["flow_run"]


def notebook_path() -> str | None:
    """The notebook this kernel runs, from ``JPY_SESSION_NAME`` (None outside Jupyter)."""
    return os.environ.get("JPY_SESSION_NAME") or None


def _thread_pool() -> Any:
    """The session's task runner (for ``.submit()`` at the top level of a cell)."""
    from kernelflow.runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner()


class _SessionFlowContext(context.FlowRunContext):
    """A flow run context whose flow run is created on first use."""

    __slots__ = ("_session",)

    def __init__(self, session: NotebookSession) -> None:
        self._session = session
        super().__init__(None, None, _thread_pool, False)

    @property  # type: ignore[override]
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
        The flow (and run) name: the notebook path, or ``ipython-session``.
    context
        The flow run context registered with
        :func:`kernelflow.context.set_session_flow_context`.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path if path is not None else notebook_path()
        self.name = self.path or FALLBACK_NAME
        self.context = _SessionFlowContext(self)
        self._lock = threading.Lock()
        self._ended = False
        self._pid = os.getpid()

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
        from kernelflow.engine import set_state
        from kernelflow.logs import configure
        from kernelflow.runs import FlowRun
        from kernelflow.states import Pending, Running

        with self._lock:
            existing = self.context.started_run()
            if existing is not None:
                return existing
            configure()
            run = FlowRun(
                self.name,
                self.name,
                {},
                ["notebook"],
                parent_flow_run_id=os.environ.get("KERNELFLOW_PARENT_FLOW_RUN_ID") or None,
                deployment_id=os.environ.get("KERNELFLOW_DEPLOYMENT_ID") or None,
            )
            created = {
                "ev": "flow_run",
                "id": run.id,
                "flow_name": run.flow_name,
                "name": run.name,
                "version": None,
                "parent_flow_run_id": run.parent_flow_run_id,
                "parent_task_run_id": None,
                "deployment_id": run.deployment_id,
                "parameters": {},
                "tags": run.tags,
                "t": time.time(),
            }
            set_state("flow", run, Pending(), before=[created])
            run.run_count = 1
            run.start_time = time.time()
            set_state("flow", run, Running(message="Notebook session"))
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
        from kernelflow.engine import set_state
        from kernelflow.futures import wait
        from kernelflow.states import Completed

        wait(list(self.context.futures))  # never raises: each task's state says how it ended
        runner: Any = self.context.task_runner
        if runner is not None:
            runner.shutdown(wait=True)
            self.context.task_runner = None
        if run.state is None or not run.state.is_final():
            set_state("flow", run, Completed(message=message))
