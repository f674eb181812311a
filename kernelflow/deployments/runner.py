"""One try of a deployment run: papermill in its own process, with a fresh kernel.

Two halves talk over a socket pair:

* :func:`launch` (the scheduler's side) starts ``python -m
  kernelflow.deployments.runner FD``, sends the job as one JSON line and
  later reads the outcome as one JSON line. It keeps its end open for the
  life of the try: if the scheduler dies, even by SIGKILL, the worker reads
  end-of-file, kills the kernel and its children, and exits — nothing keeps
  running for a scheduler that no longer exists.
* :func:`main` (the worker) runs papermill on the notebook snapshot. While
  cells run it appends log events for the deployment run to its journal:
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
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["WorkerProcess", "kill_tree", "launch", "main"]

#: The environment variable set in a kernel that runs a deployment (the run's id).
DEPLOYMENT_RUN_ENV = "KERNELFLOW_DEPLOYMENT_RUN"
#: What ``kernelflow.runtime.deployment`` reads in the kernel (see :func:`runtime_info`).
DEPLOYMENT_INFO_ENV = "KERNELFLOW_DEPLOYMENT_RUN_INFO"

_LOG_LIMIT = 4000
#: What the kernel runs at startup, so its session and magics exist before the first cell.
_LOAD_KERNELFLOW = "import kernelflow as _kf; _kf.load_ipython_extension(get_ipython()); del _kf"


# --- the launching side ---------------------------------------------------------------------
class WorkerProcess:
    """A running worker: its process and our end of the socket."""

    def __init__(self, proc: subprocess.Popen, sock: socket.socket, started: float) -> None:
        self.proc = proc
        self.sock = sock
        self.started = started

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.proc.pid

    def outcome(self, deadline: float | None = None) -> dict[str, Any] | None:
        """Wait for the worker's outcome line; None if it died or ``deadline`` passed first."""
        buffer = b""
        while b"\n" not in buffer:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            except OSError:
                return None
            if not chunk:
                return None
            buffer += chunk
        try:
            return json.loads(buffer.split(b"\n", 1)[0])
        except ValueError:
            return None

    def kill(self) -> None:
        """Kill the worker, its kernel and everything they started."""
        kill_tree(self.proc.pid, include_root=True)

    def close(self, wait: float = 30.0) -> int | None:
        """Close our end (the worker then exits) and reap it; its exit code."""
        self.sock.close()
        try:
            return self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait(5)


def launch(job: dict[str, Any], env: dict[str, str] | None = None) -> WorkerProcess:
    """Start a worker for ``job`` (see :func:`main` for its keys)."""
    ours, theirs = socket.socketpair()
    started = time.time()
    child_env = dict(os.environ if env is None else env)
    child_env["KERNELFLOW_HOME"] = job["home"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernelflow.deployments.runner", str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
        env=child_env,
        cwd=job.get("cwd") or None,
        stdin=subprocess.DEVNULL,
        # Its own session: a Ctrl-C meant for the scheduler does not reach the notebook;
        # the scheduler ends it deliberately (cancel), or it ends itself when the
        # scheduler's end of the socket closes.
        start_new_session=True,
    )
    theirs.close()
    ours.sendall(json.dumps(job).encode() + b"\n")
    return WorkerProcess(proc, ours, started)


def kill_tree(pid: int, include_root: bool = False) -> list[int]:
    """SIGKILL every descendant of ``pid`` (and their process groups); return the pids hit.

    A Jupyter kernel leads its own session, so killing its group also takes
    the processes it started that were re-parented away from it.
    """
    import psutil

    try:
        root = psutil.Process(pid)
        victims = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    groups = set()
    for proc in victims:
        try:
            if os.getpgid(proc.pid) == proc.pid:
                groups.add(proc.pid)
        except OSError:
            pass
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
    if include_root:
        victims.append(root)
    for proc in victims:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=5)
    return [p.pid for p in victims]


# --- the worker side --------------------------------------------------------------------------
class _RunLog:
    """Appends the deployment run's log and progress events to this process's journal."""

    def __init__(self, run_id: str, code_cells: int) -> None:
        from kernelflow.store.journal import current_journal

        self.run_id = run_id
        self.total = code_cells
        self.done = 0
        self.journal = current_journal()

    def log(
        self, message: str, level: int = logging.INFO, logger: str = "kernelflow.deployments.runner"
    ) -> None:
        if len(message) > _LOG_LIMIT:
            message = message[:_LOG_LIMIT] + "…"
        self.journal.write(
            {
                "ev": "log",
                "run_id": self.run_id,
                "kind": "flow",
                "level": level,
                "logger": logger,
                "message": message,
                "t": time.time(),
            }
        )

    def progress(self, current: str) -> None:
        self.log(
            f"Progress {self.done}/{self.total}: {current}",
            logger="kernelflow.deployments.progress",
        )

    def notebook_start(self, notebook: Any, **_: Any) -> None:
        # Counted again here: papermill has added its injected-parameters cell.
        self.total = sum(1 for c in notebook.cells if c.get("cell_type") == "code")

    def cell_start(self, cell: Any, cell_index: int, **_: Any) -> None:
        if cell.get("cell_type") == "code":
            first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
            self.progress(f"cell {cell_index} {first[:80]}".rstrip())

    def cell_executed(self, cell: Any, cell_index: int, **_: Any) -> None:
        if cell.get("cell_type") == "code":
            self.done = min(self.done + 1, self.total)


# A line the kernelflow console handler wrote in the kernel: ``HH:MM:SS.mmm | LEVEL | ...``.
_CONSOLE_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (DEBUG|INFO|WARNING|ERROR|CRITICAL) *\| ")
# The kernel's own chatter, never the notebook's: ipykernel's log lines (``[IPKernelApp]
# WARNING | ...``, which reach a cell's stderr once ipykernel captures its file descriptors)
# and its message for a SIGINT that arrived between cells (the kernel being shut down).
_KERNEL_NOISE = re.compile(
    r"^(\[(IPKernelApp|IPKernel|KernelApp|ipykernel)[^\]]*\] "
    r"|KeyboardInterrupt caught in kernel\.?$)"
)


class _StreamLog:
    """A file-like object papermill writes a cell's stdout or stderr to.

    The notebook's output becomes log lines at ``level``, one record a write;
    within a write, a line the kernelflow logger printed keeps its own level
    (an INFO line on stderr is not a warning) and the kernel's own chatter
    (see ``_KERNEL_NOISE``) is dropped.
    """

    def __init__(self, log: _RunLog, name: str, level: int) -> None:
        self.log, self.name, self.level = log, name, level

    def write(self, text: str) -> int:
        pending: list[str] = []
        for line in text.rstrip("\n").split("\n"):
            if _KERNEL_NOISE.match(line):
                continue
            console = _CONSOLE_LINE.match(line)
            if console is None:
                pending.append(line)
                continue
            self._emit(pending, self.level)
            pending = []
            self._emit([line], logging.getLevelName(console.group(1)))
        self._emit(pending, self.level)
        return len(text)

    def _emit(self, lines: list[str], level: int) -> None:
        message = "\n".join(lines).strip("\n")
        if message.strip():
            self.log.log(message, level, f"kernelflow.deployments.{self.name}")

    def flush(self) -> None:
        pass


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


def execute(job: dict[str, Any], timed_out: threading.Event) -> dict[str, Any]:
    """Run papermill for ``job``; the outcome as a JSON-ready dict (never raises)."""
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
    kwargs: dict[str, Any] = {
        "on_notebook_start": log.notebook_start,
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


def export_html(output: str | None, html: str) -> str | None:
    """Write the executed notebook as HTML (nbconvert); its path, or None."""
    if not output:
        return None
    import nbformat
    from nbconvert import HTMLExporter

    from kernelflow import settings

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(output, as_version=4))
    settings.write_private(html, body.encode("utf-8"))
    return html


def main(argv: list[str] | None = None) -> int:
    """The worker: ``python -m kernelflow.deployments.runner FD``.

    Reads one JSON job line from the socket ``FD``: ``flow_run_id``,
    ``deployment``, ``attempt``, ``snapshot``, ``output``, ``html``,
    ``parameters``, ``kernel``, ``timeout``, ``cell_timeout``, ``cwd``,
    ``home``. Writes one JSON outcome line: ``status`` (``completed``,
    ``failed``, ``timed_out`` or ``crashed``), ``message``, ``output``,
    ``html``, ``started`` (when this process began). The HTML copy is written
    after the outcome is sent, before the process exits.
    """
    started = time.time()
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    reader = sock.makefile("rb")
    job = json.loads(reader.readline())
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
        outcome = execute(job, timed_out)
    finally:
        finished.set()
    kill_tree(os.getpid())  # a kernel must never outlive its try
    outcome["started"] = started
    html = job.get("html") if outcome.get("output") else None
    outcome["html"] = html
    stop.set()
    # The outcome first, so the run's final state does not wait for nbconvert
    # (seconds); the HTML copy follows before this process exits.
    sock.sendall(json.dumps(outcome).encode() + b"\n")
    if html:
        try:
            export_html(outcome["output"], html)
        except Exception as exc:  # the run's outcome stands; the missing HTML is logged
            _RunLog(job["flow_run_id"], 0).log(
                f"No HTML copy of the output notebook: {type(exc).__name__}: {exc}", logging.WARNING
            )
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Without atexit hooks: they would fold this process's journal into the database,
    # taking the store's lock while the scheduler claims its next fire. The events are
    # already written (the OS has them); the scheduler's own compaction imports them.
    os._exit(code)
