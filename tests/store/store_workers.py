"""Event builders and child-process bodies for the store tests.

A module of its own (not a test module) so that ``multiprocessing`` children
started with "spawn" can import these functions by name.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

from kernelflow.settings import use_home
from kernelflow.store.journal import Journal, ProcessIdentity, read_boot_id, record


def new_id() -> str:
    return str(uuid.uuid4())


def flow_run(run_id: str, flow_name: str = "etl", t: float | None = None, **extra) -> dict:
    event = {
        "ev": "flow_run",
        "id": run_id,
        "flow_name": flow_name,
        "name": f"{flow_name}-run",
        "version": "1.0",
        "parent_flow_run_id": None,
        "parent_task_run_id": None,
        "deployment_id": None,
        "parameters": {"n": "3"},
        "tags": ["nightly"],
        "t": time.time() if t is None else t,
    }
    event.update(extra)
    return event


def task_run(run_id: str, flow_run_id: str | None = None, t: float | None = None, **extra) -> dict:
    event = {
        "ev": "task_run",
        "id": run_id,
        "flow_run_id": flow_run_id,
        "task_name": "load",
        "name": "load-0",
        "tags": [],
        "cache_key": None,
        "inputs": {"x": {"hash": "abc", "upstream": None}},
        "t": time.time() if t is None else t,
    }
    event.update(extra)
    return event


def state(
    run_id: str,
    name: str,
    kind: str = "task",
    t: float | None = None,
    start: float | None = None,
    end: float | None = None,
    **extra,
) -> dict:
    types = {
        "Pending": "PENDING",
        "NotReady": "PENDING",
        "Running": "RUNNING",
        "Completed": "COMPLETED",
        "Cached": "COMPLETED",
        "Failed": "FAILED",
        "Scheduled": "SCHEDULED",
        "Crashed": "CRASHED",
    }
    event = {
        "ev": "state",
        "run_id": run_id,
        "kind": kind,
        "type": types[name],
        "name": name,
        "message": None,
        "t": time.time() if t is None else t,
        "run_count": 1,
        "start_time": start,
        "end_time": end,
        "result": None,
    }
    event.update(extra)
    return event


def log(run_id: str | None, message: str, kind: str = "task", level: int = 20) -> dict:
    return {
        "ev": "log",
        "run_id": run_id,
        "kind": kind,
        "level": level,
        "logger": "kernelflow.task_runs",
        "message": message,
        "t": time.time(),
    }


def dead_journal(directory: Path, pid: int | None = None) -> Journal:
    """A journal that looks written by a process of this host that has exited.

    Our own pid with an impossible start time: ``process_is_alive`` says False.
    """
    journal = Journal(directory)
    journal.identity = ProcessIdentity(socket.gethostname(), pid or os.getpid(), 1, read_boot_id())
    journal.path = directory / journal.identity.file_name
    return journal


def foreign_journal(directory: Path) -> Journal:
    """A journal that looks written by a process on another host."""
    journal = Journal(directory)
    journal.identity = ProcessIdentity("elsewhere.example", 4242, 7, "other-boot")
    journal.path = directory / journal.identity.file_name
    return journal


# -- bodies of child processes -----------------------------------------------------------------


def record_runs(home: str, count: int, compact_every: int, results) -> None:
    """Record ``count`` completed task runs, compacting now and then; put their ids."""
    from kernelflow.store import compact

    use_home(home)
    ids = []
    for i in range(count):
        run_id = new_id()
        ids.append(run_id)
        t = time.time()
        record(task_run(run_id, name=f"load-{i}", t=t))
        record(state(run_id, "Running", t=t, start=t))
        record(state(run_id, "Completed", t=t + 1e-6, start=t, end=t + 1e-6))
        if (i + 1) % compact_every == 0:
            compact()
    compact()
    results.put(ids)


def record_then_hang(home: str, ids: dict, ready) -> None:
    """Finish one task run, start another inside a running flow, then wait to be killed."""
    use_home(home)
    t = time.time()
    record(flow_run(ids["flow"], t=t))
    record(state(ids["flow"], "Running", kind="flow", t=t, start=t))
    record(task_run(ids["done"], ids["flow"], t=t))
    record(state(ids["done"], "Running", t=t, start=t))
    record(log(ids["done"], "working"))
    record(state(ids["done"], "Completed", t=t + 0.001, start=t, end=t + 0.001))
    record(task_run(ids["busy"], ids["flow"], t=t + 0.002))
    record(state(ids["busy"], "Running", t=t + 0.002, start=t + 0.002))
    record(log(ids["busy"], "about to be killed"))
    ready.set()
    time.sleep(120)
