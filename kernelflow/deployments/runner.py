"""One try of a deployment run: papermill in its own process, with a fresh kernel.

Two halves talk over a socket pair:

* :func:`~kernelflow.deployments.workers.spawn` /
  :func:`~kernelflow.deployments.workers.launch` (the scheduler's side, in
  :mod:`kernelflow.deployments.workers`) start ``python -m
  kernelflow.deployments.runner FD``; :meth:`WorkerProcess.send` gives it
  the job as one JSON line and :meth:`WorkerProcess.outcome` later reads the
  outcome as one JSON line. The launcher keeps its end open for the life of
  the try: if the scheduler dies, even by SIGKILL, the worker reads
  end-of-file, kills the kernel and its children, and exits — nothing keeps
  running for a scheduler that no longer exists.
* :func:`main` (the worker) first imports what a run needs (papermill,
  nbformat, nbclient: about 0.5 s of CPU, several seconds on a loaded
  machine), then waits for its one job, so a
  worker started ahead of the fire (:mod:`kernelflow.deployments.standby`)
  asks for the notebook's kernel within milliseconds of getting it. Each
  worker runs exactly one job and exits: user code never shares a process
  with another run. It runs papermill on the notebook snapshot. While
  cells run it appends log events for the deployment run to its journal
  (:mod:`kernelflow.deployments.run_log`):
  progress (``Progress 3/10: <the cell running>``, logger
  ``kernelflow.deployments.progress``) and each cell's stdout/stderr
  (loggers ``kernelflow.deployments.stdout`` / ``.stderr``). The
  whole-notebook timeout is enforced here: the kernel's process group and
  every descendant are killed, papermill saves the partial notebook, and the
  outcome is ``timed_out``.

The worker never sets states: the launching process owns the run's states
(:mod:`kernelflow.deployments.execution`), so a dead scheduler's run is
marked Crashed by the store's crash detection.

The kernel gets ``KERNELFLOW_DEPLOYMENT_RUN``, the run's id: its ``@task`` and
``@flow`` calls and ``%%task`` cells are recorded in the deployment run itself
(:mod:`kernelflow.kernel.session`), and ``Flow.serve()``, ``Flow.deploy()`` and
``%kf deploy`` inside the run are skipped; it also gets
``KERNELFLOW_DEPLOYMENT_RUN_INFO`` (JSON: the deployment and run that
:mod:`kernelflow.runtime` reports) and the store's ``KERNELFLOW_HOME``;
a startup line (``IPKernelApp.exec_lines``) loads the extension.

The outcome carries the worker's ``timings`` (epoch seconds): ``started``
(the process began), ``preloaded`` (its imports were done), ``received``
(it had the job), ``kernel_requested`` (papermill, having read and
parameterized the notebook and written the first output, asked
jupyter_client for the kernel: what the scheduler calls the run's start)
and ``kernel_ready`` (the kernel answered; the first cell runs next).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kernelflow import settings
from kernelflow.deployments.run_log import _RunLog, _StreamLog
from kernelflow.deployments.workers import (
    STANDBY_FLAG,
    WorkerProcess,
    job_env,
    kill_tree,
    launch,
    spawn,
)

# The launching side's names, imported from here before it had its own module.
__all__ = [
    "STANDBY_FLAG",
    "WorkerProcess",
    "job_env",
    "kill_tree",
    "launch",
    "main",
    "spawn",
]

#: The environment variable set in a kernel that runs a deployment (the run's id).
DEPLOYMENT_RUN_ENV = settings.DEPLOYMENT_RUN
#: What ``kernelflow.runtime.deployment`` reads in the kernel (see :func:`runtime_info`).
DEPLOYMENT_INFO_ENV = settings.DEPLOYMENT_RUN_INFO

#: What the kernel runs at startup, so its session and magics exist before the first cell.
_LOAD_KERNELFLOW = "import kernelflow as _kf; _kf.load_ipython_extension(get_ipython()); del _kf"


def _watch_parent(sock: socket.socket, stop: threading.Event) -> None:
    """End the try when the launching process goes away (its end of the socket closes)."""
    while not stop.is_set():
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            if not stop.is_set():
                kill_tree(os.getpid())
                os._exit(3)
            return


#: Modules this process never needs that its imports would load: jsonschema (through
#: nbformat) imports ``rfc3987_syntax`` for its "iri" format checks, which no notebook
#: schema uses, and that builds a parser at import: ~1.9 s of CPU, most of a worker's start.
_UNUSED_IMPORTS = ("rfc3987_syntax",)


def _preload() -> None:
    """Import and warm up what a run needs, before the job arrives (~0.5 s of CPU).

    nbformat builds its schema validator on first use: done here too.
    """
    for name in _UNUSED_IMPORTS:
        # None: "import name" raises ImportError (the import system's own convention,
        # which the stubs' dict[str, ModuleType] does not allow for).
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    import nbformat
    import papermill  # noqa: F401
    from jupyter_client.manager import AsyncKernelManager  # noqa: F401
    from nbclient.exceptions import CellTimeoutError  # noqa: F401
    from papermill.parameterize import parameterize_notebook  # noqa: F401

    import kernelflow.store.journal  # noqa: F401

    nbformat.validate(nbformat.v4.new_notebook())


def _stamping_kernel_manager(timings: dict[str, float]) -> type:
    """jupyter_client's kernel manager, noting in ``timings`` when the kernel is asked for."""
    from jupyter_client.manager import AsyncKernelManager

    class StampingKernelManager(AsyncKernelManager):
        # jupyter_client declares start_kernel a Callable attribute, which a method overrides.
        async def start_kernel(self, **kwargs: Any) -> None:  # type: ignore[override]
            timings.setdefault("kernel_requested", time.time())
            await super().start_kernel(**kwargs)

    return StampingKernelManager


def execute(
    job: dict[str, Any], timed_out: threading.Event, timings: dict[str, float] | None = None
) -> dict[str, Any]:
    """Run papermill for ``job``; the outcome as a JSON-ready dict (never raises).

    ``timings`` gets ``kernel_requested`` and ``kernel_ready`` (epoch seconds)
    as the run reaches them.
    """
    timings = {} if timings is None else timings
    import nbformat
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from kernelflow import settings

    run_id = job["flow_run_id"]
    output = Path(job["output"])
    settings.paths().ensure(output.parent)
    # papermill rewrites the output in place, keeping the mode of a file that exists:
    # create it private first (an executed notebook holds the run's data).
    os.close(settings.open_private(output, os.O_WRONLY))
    nb = nbformat.read(job["snapshot"], as_version=4)
    log = _RunLog(run_id, sum(1 for c in nb.cells if c.cell_type == "code"))
    os.environ[DEPLOYMENT_RUN_ENV] = run_id
    os.environ.pop("KERNELFLOW_DEPLOYMENT_ID", None)
    os.environ[DEPLOYMENT_INFO_ENV] = json.dumps(runtime_info(job))
    log.log(
        f"Executing {job['deployment']!r} (try {job['attempt']}) with papermill; output {output}"
    )
    log.progress("starting the kernel")
    outcome: dict[str, Any] = {"status": "completed", "output": str(output), "message": None}

    def notebook_start(notebook: Any, **rest: Any) -> None:
        timings.setdefault("kernel_ready", time.time())
        log.notebook_start(notebook, **rest)

    kwargs: dict[str, Any] = {
        "kernel_manager_class": _stamping_kernel_manager(timings),
        "on_notebook_start": notebook_start,
        "on_cell_start": log.cell_start,
        "on_cell_executed": log.cell_executed,
        # Loaded by a startup line rather than ``--ext``: a notebook that says
        # ``%load_ext kernelflow`` itself then loads it silently (loading is idempotent),
        # instead of printing IPython's "extension is already loaded" into the run's log.
        "extra_arguments": [f"--IPKernelApp.exec_lines={_LOAD_KERNELFLOW}"],
    }
    try:
        papermill.execute_notebook(
            job["snapshot"],
            str(output),
            parameters=job.get("parameters") or {},
            kernel_name=job.get("kernel") or None,
            progress_bar=False,
            log_output=False,
            stdout_file=_StreamLog(log, "stdout", logging.INFO),
            stderr_file=_StreamLog(log, "stderr", logging.WARNING),
            execution_timeout=job.get("cell_timeout"),
            cwd=job.get("cwd") or None,
            **kwargs,
        )
        log.progress("")
    except PapermillExecutionError as exc:
        outcome["status"] = "failed"
        first = next((ln.strip() for ln in str(exc.source).splitlines() if ln.strip()), "")
        outcome["message"] = (
            f"Cell In [{exc.exec_count}] ({first[:60]!r}) failed: "
            f"{_error_text(exc, output)}; output notebook {output}"
        )
    except CellTimeoutError:
        outcome["status"] = "timed_out"
        outcome["message"] = (
            f"A cell exceeded --cell-timeout of {job.get('cell_timeout')} second(s); "
            f"partial output notebook {output}"
        )
    except BaseException as exc:
        if timed_out.is_set():
            outcome["status"] = "timed_out"
            outcome["message"] = (
                f"Notebook run exceeded timeout of {job.get('timeout')} second(s); kernel "
                f"killed; partial output notebook {output}"
            )
        else:
            outcome["status"] = "crashed" if isinstance(exc, DeadKernelError) else "failed"
            text = " ".join(str(exc).split())[:500] or type(exc).__name__
            outcome["message"] = f"{type(exc).__name__}: {text}; output notebook {output}"
    if timed_out.is_set() and outcome["status"] == "completed":
        outcome["status"] = "timed_out"
        outcome["message"] = f"Notebook run exceeded timeout of {job.get('timeout')} second(s)"
    if not output.exists() or output.stat().st_size == 0:
        output.unlink(missing_ok=True)  # created empty above, never written by papermill
        outcome["output"] = None
    return outcome


def runtime_info(job: dict[str, Any]) -> dict[str, Any]:
    """The deployment run as :mod:`kernelflow.runtime` reports it inside the kernel."""
    return {
        "id": job.get("deployment_id"),
        "name": job.get("deployment"),
        "version": job.get("deployment_version"),
        "flow_run_id": job.get("flow_run_id"),
        "flow_run_name": job.get("flow_run_name"),
        "parameters": job.get("parameters") or {},
        "scheduled_start_time": job.get("scheduled_time"),
        "attempt": job.get("attempt"),
    }


def _error_text(exc: Any, output: Path) -> str:
    """``ename: evalue`` of a failed cell; for errors IPython prints (a UsageError), its text."""
    evalue = " ".join(str(exc.evalue).split())
    if evalue:
        return f"{exc.ename}: {evalue[:500]}"
    try:
        import nbformat

        cell = nbformat.read(output, as_version=4).cells[exc.cell_index]
        printed = [
            o.get("text", "")
            for o in cell.get("outputs", [])
            if o.get("output_type") == "stream" and o.get("name") == "stderr"
        ]
        first = "".join(printed).strip().splitlines()
    except (OSError, IndexError, ValueError):
        first = []
    return first[0][:500] if first else exc.ename


def main(argv: list[str] | None = None) -> int:
    """The worker: ``python -m kernelflow.deployments.runner [--standby] FD``.

    Imports what a run needs, then reads one JSON line from the socket
    ``FD``: ``job`` and ``env`` (None, or the environment to run it with).
    The job's keys: ``flow_run_id``, ``deployment``, ``attempt``,
    ``snapshot``, ``output``, ``parameters``, ``kernel``,
    ``timeout``, ``cell_timeout``, ``cwd``, ``home``. Writes one JSON outcome
    line: ``status`` (``completed``, ``failed``, ``timed_out`` or
    ``crashed``), ``message``, ``output``, ``pid``, ``started`` (when this
    process began) and ``timings`` (see the module's docstring). No HTML copy:
    it is made when first asked for (:mod:`kernelflow.deployments.html_copy`).
    End-of-file instead of a job (a standby no longer needed): exit 0.
    """
    timings: dict[str, float] = {"started": time.time()}
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[-1]))
    try:
        _preload()
    except Exception:
        # Not lost: execute() imports the same modules and turns the error into the outcome.
        pass
    timings["preloaded"] = time.time()
    line = sock.makefile("rb").readline()
    if not line:
        return 0
    timings["received"] = time.time()
    message = json.loads(line)
    job = message["job"]
    if message.get("env") is not None:
        # A worker started ahead of its job runs it with the launcher's environment of now.
        os.environ.clear()
        os.environ.update(message["env"])
    if job.get("cwd"):
        try:
            os.chdir(job["cwd"])
        except OSError:
            pass  # paths in the job are absolute; papermill starts the kernel in ``cwd`` itself
    stop = threading.Event()
    threading.Thread(
        target=_watch_parent, args=(sock, stop), daemon=True, name="kernelflow-parent-watch"
    ).start()
    timed_out = threading.Event()
    finished = threading.Event()
    if job.get("timeout"):

        def expire() -> None:
            if finished.wait(float(job["timeout"])):
                return
            timed_out.set()
            # Again until papermill gives up: a kernel being launched right now is
            # not a child yet, and must not survive either.
            while not finished.is_set():
                kill_tree(os.getpid())
                finished.wait(0.5)

        threading.Thread(target=expire, daemon=True, name="kernelflow-timeout").start()
    try:
        outcome = execute(job, timed_out, timings)
    finally:
        finished.set()
    kill_tree(os.getpid())  # a kernel must never outlive its try
    outcome["started"] = timings["started"]
    outcome["timings"] = timings
    outcome["pid"] = os.getpid()
    stop.set()
    sock.sendall(json.dumps(outcome).encode() + b"\n")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Without atexit hooks: they would fold this process's journal into the database,
    # taking the store's lock while the scheduler claims its next fire. The events are
    # already written (the OS has them); the scheduler's own compaction imports them.
    os._exit(code)
