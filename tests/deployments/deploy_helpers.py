"""Helpers of the deployment tests: waiting on other processes, finding kernels of a run."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy (an outside process's progress)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def kernels_of_run(run_id: str) -> list[int]:
    """Pids of live processes whose environment says they execute deployment run ``run_id``."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if (
                proc.environ().get("KERNELFLOW_DEPLOYMENT_RUN") == run_id
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc.pid)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            pass
    return found
