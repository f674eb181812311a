"""Workers started ahead of the fires, so a fire starts papermill at once.

A cold worker spends about 0.5 s of CPU importing papermill before it can
ask for the notebook's kernel (seconds when the machine is busy).
:class:`StandbyWorkers` keeps ``count`` workers that have done so already
(:func:`kernelflow.deployments.workers.spawn`), each waiting for one job:

* :meth:`StandbyWorkers.launch` hands a job to the oldest one (one still
  importing is still ahead of a cold start) and starts its replacement;
  with none left (or after :meth:`StandbyWorkers.close`) it starts a cold
  worker. Each worker runs one job and exits, so no run shares a process
  with the one before it.
* A standby holds nothing: no store lock, no journal, no kernel. It ends
  when its launcher's end of the socket closes (the scheduler stopped or
  died) or when :meth:`StandbyWorkers.close` kills it.

The scheduler owns one (see :class:`kernelflow.deployments.scheduler.Scheduler`,
``warm_workers``); a standby that took a job is a running try like any other,
counted in the scheduler's slots and cancelled the same way.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from kernelflow.deployments.workers import WorkerProcess, job_env, launch, spawn

__all__ = ["StandbyWorkers"]

logger = logging.getLogger("kernelflow.deployments.standby")


class StandbyWorkers:
    """Pre-started deployment workers for the store at ``home``.

    Parameters
    ----------
    count
        How many workers to keep waiting (0: every launch is a cold start).
    home
        The store home the jobs run against (a standby starts in it).
    refill
        Start a replacement for each worker that takes a job (False: once the
        waiting ones are taken, launches start cold workers).

    Examples
    --------
    >>> standby = StandbyWorkers(1, home)  # doctest: +SKIP
    >>> standby.start()                    # one worker imports papermill meanwhile
    >>> worker = standby.launch(job)       # at the fire: it asks for the kernel at once
    >>> standby.close()                    # the waiting ones are killed
    """

    def __init__(self, count: int, home: str | os.PathLike[str], refill: bool = True) -> None:
        self.count = count
        self.home = Path(home)
        self.refill = refill
        self._lock = threading.Lock()
        self._waiting: list[WorkerProcess] = []
        self._closed = False

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers waiting for a job."""
        with self._lock:
            return [w.pid for w in self._waiting]

    def start(self) -> None:
        """Start workers until ``count`` are waiting."""
        while True:
            with self._lock:
                if self._closed or len(self._waiting) >= self.count:
                    return
                env = dict(os.environ, KERNELFLOW_HOME=str(self.home))
                # Started under the lock: close() never misses one being started.
                self._waiting.append(spawn(env, str(self.home), standby=True))

    def launch(self, job: dict[str, Any]) -> WorkerProcess:
        """Start ``job`` in a waiting worker (a cold one if none is left); start a replacement.

        Without ``refill``, no replacement: a later launch starts a cold worker.
        """
        env = job_env(job)
        worker = self._take()
        if worker is None:
            return launch(job)
        try:
            worker.send(job, env)
        except OSError:
            # It died before the job reached it (killed from outside): start cold.
            self._discard(worker)
            return launch(job)
        if self.refill:
            self.start()
        return worker

    def close(self) -> None:
        """Kill the waiting workers and start no more; later launches are cold starts."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = self._waiting, []
        for worker in waiting:
            self._discard(worker)

    def _take(self) -> WorkerProcess | None:
        """The oldest waiting worker that is alive; the dead ones are reaped."""
        while True:
            with self._lock:
                if not self._waiting:
                    return None
                worker = self._waiting.pop(0)
            if worker.proc.poll() is None:
                return worker
            logger.warning(
                "kernelflow: a pre-started deployment worker exited with code %s before its job",
                worker.proc.returncode,
            )
            self._discard(worker)

    @staticmethod
    def _discard(worker: WorkerProcess) -> None:
        """Kill a worker that holds no job (nothing to lose) and reap it."""
        worker.kill()
        worker.close(wait=5.0)
