"""A pool of worker processes that run one task try at a time, and can be killed one by one.

Why not ``concurrent.futures.ProcessPoolExecutor``: a try over its timeout
must be stopped for real, which means killing the process running it; the
executor can only be broken as a whole, failing every other running try. Here
each worker is its own process with its own socket, so a timeout kills that
worker alone and a new one takes its place.

Workers are started with ``subprocess`` running ``python -c`` (a fresh
interpreter, never a fork): the flow's process has threads and may hold
``flock`` slots, neither of which may leak into a child, and the user's
``__main__`` (a script without an ``if __name__ == "__main__"`` guard, or a
notebook) is not re-imported, since cloudpickle ships functions from it by
value. The child gets the parent's ``sys.path``.

Messages on a worker's socket (``multiprocessing.connection`` framing), each
a one-letter kind followed by a payload: ``Q`` request (flow → worker); ``S``
started (the task's timeout counts from here), ``L`` a log record and ``O``
printed text (as they happen), ``R`` the reply (worker → flow). An empty
message tells the worker to exit.
"""

from __future__ import annotations

import json
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from kernelflow.errors import TaskRunnerError, WorkerLostError

__all__ = ["ProcessPool", "WorkerProcess", "main"]

#: Seconds a worker gets to exit after being asked, before it is killed.
_EXIT_GRACE = 2.0


class WorkerProcess:
    """One worker interpreter and the flow-side end of its socket."""

    def __init__(self) -> None:
        parent_end, child_end = socket.socketpair()
        bootstrap = (
            "import sys; sys.path[:0] = " + json.dumps([p for p in sys.path if p]) + "; "
            "from kernelflow._process_pool import main; main(int(sys.argv[1]))"
        )
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", bootstrap, str(child_end.fileno())],
                pass_fds=[child_end.fileno()],
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError as exc:
            parent_end.close()
            raise TaskRunnerError(
                f"Cannot start a worker process ({exc.strerror or exc}); check that "
                f"{sys.executable} can run, or use ThreadPoolTaskRunner."
            ) from None
        finally:
            child_end.close()
        self.connection = Connection(parent_end.detach())
        self._killed = False
        self._close_lock = threading.Lock()

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def alive(self) -> bool:
        """True while the worker process runs."""
        return self.process.poll() is None

    def run(
        self, request: bytes, timeout: float | None, on_event: Callable[[str, Any], None]
    ) -> bytes | None:
        """Send one request and wait for its reply; None when ``timeout`` passed first.

        Events (logs, output) the worker sends meanwhile go to ``on_event``.

        Raises
        ------
        WorkerLostError
            The worker died before replying.
        """
        # The timeout counts from when the worker starts the try, not from when
        # it was sent: a worker still booting must not eat into it.
        deadline = None
        try:
            self.connection.send_bytes(b"Q" + request)
        except OSError:
            raise self._lost() from None
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            if not self.connection.poll(remaining):
                continue
            try:
                message = self.connection.recv_bytes()
            except (EOFError, OSError):
                raise self._lost() from None
            kind, payload = message[:1], message[1:]
            if kind == b"S":
                if timeout is not None:
                    deadline = time.monotonic() + timeout
            elif kind == b"R":
                return payload
            if kind == b"L":
                on_event("log", pickle.loads(payload))
            elif kind == b"O":
                on_event("out", pickle.loads(payload))

    def _lost(self) -> WorkerLostError:
        if self._killed:
            return WorkerLostError(
                f"The flow run ended while this try ran; its worker process (pid {self.pid}) "
                "was stopped."
            )
        try:
            code = self.process.wait(timeout=_EXIT_GRACE)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        elif code is not None:
            how = f"exited with code {code}"
        else:
            how = "stopped answering"
        return WorkerLostError(
            f"The worker process (pid {self.pid}) running this try {how}; the try failed "
            "(it is retried if the task has retries). If it ran out of memory, give it less "
            "work per task."
        )

    def kill(self, close: bool = True) -> None:
        """Stop the worker now (SIGKILL) and reap it.

        With ``close=False`` the socket stays open: a thread waiting on it
        (the try's engine thread) then sees the end of the stream and closes
        it itself, instead of finding its descriptor closed under it.
        """
        self._killed = True
        if self.alive():
            self.process.kill()
        self.process.wait()
        if close:
            self.close()

    def close(self) -> None:
        """Close the flow's end of the socket (once)."""
        with self._close_lock:
            if not self.connection.closed:
                self.connection.close()

    def stop(self) -> None:
        """Ask the worker to exit; kill it if it does not within a grace period."""
        try:
            self.connection.send_bytes(b"")
        except OSError:
            pass
        try:
            self.process.wait(timeout=_EXIT_GRACE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.close()


class ProcessPool:
    """Up to ``size`` worker processes, each lent to one try at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: list[WorkerProcess] = []
        self._busy: set[WorkerProcess] = set()
        self._condition = threading.Condition()
        self._closed = False

    def prestart(self) -> None:
        """Start every worker now, so their interpreters boot while the flow goes on."""
        with self._condition:
            while len(self._idle) + len(self._busy) < self.size:
                self._idle.append(WorkerProcess())

    def run(
        self, request: bytes, timeout: float | None, on_event: Callable[[str, Any], None]
    ) -> bytes | None:
        """Run ``request`` on an idle worker (waiting for one); see :meth:`WorkerProcess.run`.

        A worker whose try timed out is killed and replaced; one that died is replaced.
        """
        worker = self._checkout()
        healthy = False
        try:
            reply = worker.run(request, timeout, on_event)
            healthy = reply is not None
            return reply
        finally:
            self._checkin(worker, healthy)

    def _checkout(self) -> WorkerProcess:
        with self._condition:
            while True:
                if self._closed:
                    raise TaskRunnerError("The process pool was shut down; the flow run ended.")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        self._busy.add(worker)
                        return worker
                    worker.close()
                if len(self._busy) < self.size:
                    break
                self._condition.wait()
        worker = WorkerProcess()
        with self._condition:
            self._busy.add(worker)
        return worker

    def _checkin(self, worker: WorkerProcess, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self._condition:
            self._busy.discard(worker)
            if healthy and not self._closed:
                self._idle.append(worker)
            elif healthy:
                threading.Thread(target=worker.stop, daemon=True).start()
            self._condition.notify()

    def shutdown(self, wait: bool = True) -> None:
        """Stop idle workers; with ``wait=False`` also kill the busy ones."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy)
            self._condition.notify_all()
        for worker in idle:
            worker.stop()
        if not wait:
            for worker in busy:
                # Their engine threads see the end of the socket and check them in.
                worker.kill(close=False)


# --- the worker side -----------------------------------------------------------------
def main(fd: int) -> None:
    """The worker loop: run requests from the socket ``fd`` until told to exit."""
    # The flow's process owns Ctrl-C; a worker ends when its socket closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from kernelflow._remote import execute

    connection = Connection(fd)
    lock = threading.Lock()

    def sink(kind: str, data: Any) -> None:
        message = (b"L" if kind == "log" else b"O") + pickle.dumps(data)
        with lock:
            connection.send_bytes(message)

    while True:
        try:
            message = connection.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        with lock:
            connection.send_bytes(b"S")
        reply = execute(message[1:], sink)
        with lock:
            connection.send_bytes(b"R" + reply)
