"""Running a deployment's notebook on a Dask cluster's worker (``--dask ADDRESS``).

The Dask task runs the same worker process as a local try
(:func:`kernelflow.deployments.workers.launch`), on the Dask worker's
machine, against a temporary store home there. When it ends, the output
notebook and the journals written there (the worker's log and
progress events, the kernel's task runs) come back as the task's result;
the scheduler writes the notebooks under ``outputs/`` and drops the journals
into the store's journal folder, where compaction imports them like any
other process's events. Progress is therefore seen when the try ends, not
while it runs; the run's states are set by the scheduler as usual.

:class:`~kernelflow.deployments.backends.DaskBackend` sends a try here.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kernelflow import settings

__all__ = ["remote_execute", "run_on_dask"]

#: Seconds a remote try may run past its notebook timeout before it is abandoned.
_BACKSTOP_S = 30.0


def remote_execute(job: dict[str, Any], notebook: bytes) -> dict[str, Any]:
    """On a Dask worker: run one try in a worker process; return outcome, files, journals."""
    from kernelflow.deployments.workers import launch

    home = Path(tempfile.mkdtemp(prefix="kernelflow-dask-"))  # mode 0700
    try:
        snapshot = home / "snapshot.ipynb"
        settings.write_private(snapshot, notebook)
        local = dict(
            job,
            home=str(home),
            snapshot=str(snapshot),
            output=str(home / "out.ipynb"),
        )
        if not Path(job.get("cwd") or "").is_dir():
            local["cwd"] = str(home)
        worker = launch(local)
        deadline = None
        if job.get("timeout"):
            deadline = time.monotonic() + float(job["timeout"]) + _BACKSTOP_S
        outcome = worker.outcome(deadline)
        if outcome is None:
            worker.kill()
        worker.close()
        output = Path(local["output"])
        files = {"output": output.read_bytes() if output.exists() else None}
        journals = {}
        for path in sorted((home / "journal").glob("*.jsonl")):
            journals[path.name] = path.read_bytes()
        return {"outcome": outcome, "files": files, "journals": journals}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_on_dask(
    address: str, job: dict[str, Any], cancel: threading.Event
) -> dict[str, Any] | None:
    """Run ``job`` on the Dask cluster at ``address``; the worker's outcome (None if lost)."""
    from distributed import Client

    notebook = Path(job["snapshot"]).read_bytes()
    with Client(address, timeout=10, set_as_default=False) as client:
        future = client.submit(remote_execute, job, notebook, pure=False)
        while not future.done():
            if cancel.wait(0.2):
                future.cancel()
                return None
        try:
            result = future.result()
        except Exception as exc:
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            return {
                "status": "crashed",
                "message": f"The Dask task failed: {reason}",
                "output": None,
            }
    paths = settings.paths()
    data = result["files"].get("output")
    if data is not None:
        paths.ensure(Path(job["output"]).parent)
        settings.write_private(job["output"], data)
    paths.ensure(paths.journal)
    for name, data in result["journals"].items():
        target = paths.journal / name
        if not target.exists():  # a dead process's journal, complete: compaction imports it
            settings.write_private(target, data)  # atomic: compaction never sees half of it
    outcome = result["outcome"]
    if outcome is not None:
        if outcome.get("output"):
            outcome["output"] = job["output"]
        if outcome.get("message"):
            outcome["message"] = _point_at_local(outcome["message"], job)
    return outcome


def _point_at_local(message: str, job: dict[str, Any]) -> str:
    """Say where the output notebook is here, not where it was on the worker."""
    marker = "output notebook "
    if marker in message:
        head = message.split(marker, 1)[0]
        return f"{head}{marker}{job['output']}"
    return message
