"""The launching side of a deployment try: start a worker process, hand it the job, end it.

:func:`spawn` starts ``python -m kernelflow.deployments.runner FD`` (the
worker, :mod:`kernelflow.deployments.runner`) with one end of a socket pair;
:meth:`WorkerProcess.send` gives it the job as one JSON line and
:meth:`WorkerProcess.outcome` reads its outcome line. The launcher keeps its
end open for the life of the try, so the worker ends when the launcher dies.
:func:`kill_tree` ends a worker, its kernel and everything they started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

__all__ = ["STANDBY_FLAG", "WorkerProcess", "job_env", "kill_tree", "launch", "spawn"]

#: The argument that marks a worker started ahead of its job (it shows in ``ps``).
STANDBY_FLAG = "--standby"


class WorkerProcess:
    """A worker process and our end of its socket.

    Parameters
    ----------
    proc
        The worker process.
    sock
        Our end of the socket pair; closing it ends the worker.
    started
        When it was spawned (epoch seconds).
    """

    def __init__(self, proc: subprocess.Popen, sock: socket.socket, started: float) -> None:
        self.proc = proc
        self.sock = sock
        self.started = started
        self.sent: float | None = None  #: when its job was sent (epoch seconds)

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.proc.pid

    def send(self, job: dict[str, Any], env: dict[str, str] | None = None) -> None:
        """Give the worker its one job (see :func:`main`), with ``env`` as its environment.

        ``env`` (None: the one it was started with) replaces the worker's
        environment before the kernel starts, so a worker started earlier runs
        the job with the launcher's environment as it is now.
        """
        self.sent = time.time()
        message = {"job": job, "env": env}
        self.sock.sendall(json.dumps(message).encode() + b"\n")

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


def job_env(job: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a worker runs ``job`` with: ``env`` (default: ours) and its store."""
    child_env = dict(os.environ if env is None else env)
    child_env["KERNELFLOW_HOME"] = job["home"]
    return child_env


def spawn(
    env: dict[str, str] | None = None, cwd: str | None = None, standby: bool = False
) -> WorkerProcess:
    """Start a worker; it imports what a run needs and waits for :meth:`WorkerProcess.send`.

    ``standby`` marks a worker started ahead of any job in its command line
    (:data:`STANDBY_FLAG`), so ``ps`` tells it from one running a notebook.
    """
    ours, theirs = socket.socketpair()
    started = time.time()
    argv = [sys.executable, "-m", "kernelflow.deployments.runner"]
    proc = subprocess.Popen(
        [*argv, *([STANDBY_FLAG] if standby else []), str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
        env=dict(os.environ if env is None else env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        # Its own session: a Ctrl-C meant for the scheduler does not reach the notebook;
        # the scheduler ends it deliberately (cancel), or it ends itself when the
        # scheduler's end of the socket closes.
        start_new_session=True,
    )
    theirs.close()
    return WorkerProcess(proc, ours, started)


def launch(job: dict[str, Any], env: dict[str, str] | None = None) -> WorkerProcess:
    """Start a worker for ``job`` now (see :func:`main` for its keys): a cold start."""
    worker = spawn(job_env(job, env), job.get("cwd") or None)
    worker.send(job)
    return worker


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
