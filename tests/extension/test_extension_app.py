"""``KernelflowApp``: the scheduler inside a real ``jupyter lab``, no scheduler process beside it.

One lab runs a deployment run that is due, serves its executed notebook, and
stops cleanly, releasing the lease. Two labs on one store: one holds the
lease and runs everything (also what the other queues, and a cancel the
other asks for); when it stops, the standby takes over. Each run is tried
exactly once. The traits are checked on the class.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from lab_helpers import Lab, make_dirs, python_env, running_lab
from lab_helpers import lab_env as isolated_env

from kernelflow import settings

pytestmark = pytest.mark.timeout(600)

FINAL = ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut")


@pytest.fixture
def jp_asyncio_loop() -> None:
    """Off: this module starts no in-process Jupyter server."""


@pytest.fixture
def jp_server_cleanup() -> None:
    """Off: this module starts no in-process Jupyter server."""


def wait_for(what: str, check: Callable[[], Any], timeout: float = 180.0) -> Any:
    """Poll ``check`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def run_state(lab: Lab, run_id: str) -> dict[str, Any]:
    code, detail = lab.api("GET", f"runs/{run_id}")
    assert code == 200, detail
    return detail["run"]


def final_state(lab: Lab, run_id: str, timeout: float = 240.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run = run_state(lab, run_id)
        return run if run["state_name"] in FINAL else None

    try:
        return wait_for(f"run {run_id} to end", done, timeout)
    except AssertionError:
        raise AssertionError(lab.log_tail()) from None


def write_notebook(folder: Path) -> None:
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    nb.cells = [
        nbformat.v4.new_code_cell("n: int = 2\nnap = 0.0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import time\ntime.sleep(nap)\nprint('result', n * 2)"),
    ]
    nbformat.write(nb, folder / "job.ipynb")


@pytest.fixture
def labs(tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """Start labs on one store (this test's) and one root; each stopped at the end."""
    home = settings.paths().home
    opened: list[Any] = []

    def start(name: str) -> Any:
        dirs = make_dirs(tmp_path / name)
        write_notebook(dirs["notebooks"])
        env = isolated_env(dirs, python_env(KERNELFLOW_HOME=str(home)))
        context = running_lab(dirs, env)
        lab = context.__enter__()
        opened.append(context)
        return lab

    yield start
    for context in reversed(opened):
        context.__exit__(None, None, None)


def holder_is(lab: Lab, pid: int) -> bool:
    code, answer = lab.api("GET", "scheduler")
    assert code == 200, answer
    return answer["here"] and answer["holder"]["pid"] == pid


def states_of(run_id: str) -> list[str]:
    from kernelflow.store.queries import sql

    found = sql("SELECT state_name FROM states WHERE run_id = ? ORDER BY timestamp", [run_id])
    return list(found["state_name"])


def notebook_processes(lab: Lab) -> list[Any]:
    """The lab's deployment workers and their kernels still alive (not an idle standby)."""
    import psutil

    try:
        children = psutil.Process(lab.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            line = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "--standby" in line and not child.children():
            continue  # the scheduler's pre-started worker, waiting for the next run
        if "kernelflow.deployments.runner" in line or "ipykernel" in line:
            found.append(child)
    return found


def attempts(run_id: str) -> int:
    from kernelflow.store.queries import sql

    found = sql("SELECT count(*) AS n FROM deployment_attempts WHERE flow_run_id = ?", [run_id])
    return int(found["n"].iloc[0])


@pytest.mark.slow
def test_a_lab_alone_runs_what_is_due_and_stops_cleanly(labs: Callable[[str], Any]) -> None:
    from kernelflow.deployments import deploy, run_deployment
    from kernelflow.deployments.scheduler import lease_holder

    lab = labs("one")
    notebook = lab.dirs["notebooks"] / "job.ipynb"
    code, created = lab.api(
        "POST", "deployments", {"notebook": "job.ipynb", "name": "job", "cron": "0 6 * * *"}
    )
    assert code == 201, created
    wait_for("the lab's scheduler", lambda: holder_is(lab, lab.process.pid))
    code, answer = lab.api("GET", "scheduler")
    assert answer["holder"]["process"].startswith("jupyter server") and answer["warning"] is None

    code, queued = lab.api("POST", "deployments/job/runs", {"parameters": {"n": 5}})
    assert code == 202 and queued["state"] == "Scheduled", queued
    run = final_state(lab, queued["run_id"])
    assert run["state_name"] == "Completed", (run, lab.log_tail())
    assert attempts(queued["run_id"]) == 1

    code, executed = lab.api("GET", f"runs/{queued['run_id']}/notebook")
    assert code == 200
    texts = [o.get("text", "") for o in executed["cells"][-1]["outputs"]]
    printed = "".join("".join(t) if isinstance(t, list) else t for t in texts)  # as on disk
    assert "result 10" in printed  # n=5 reached the notebook
    assert str(notebook.parent) not in str(settings.paths().outputs)  # served from outside

    # Due before the lab starts again: the next lab runs it with nothing else running.
    lab.process.send_signal(signal.SIGTERM)
    assert lab.process.wait(60) == 0, lab.log_tail()
    assert lease_holder() is None
    deploy(notebook, "later", interval=3600)
    due = run_deployment("later", parameters={"n": 1}, timeout=0)
    second = labs("two")
    run = final_state(second, due.id)
    assert run["state_name"] == "Completed", second.log_tail()
    assert attempts(due.id) == 1


@pytest.mark.slow
def test_two_labs_share_one_store_and_the_standby_takes_over(
    labs: Callable[[str], Any],
) -> None:
    first = labs("first")
    wait_for("the first lab's scheduler", lambda: holder_is(first, first.process.pid))
    second = labs("second")
    code, answer = second.api("GET", "scheduler")
    assert code == 200 and answer["here"] is False
    assert answer["holder"]["pid"] == first.process.pid and answer["warning"] is None

    code, _ = second.api("POST", "deployments", {"notebook": "job.ipynb", "name": "job"})
    assert code == 201
    # Queued through the standby, run by the holder.
    code, queued = second.api("POST", "deployments/job/runs", {"parameters": {"n": 3}})
    assert code == 202, queued
    run = final_state(second, queued["run_id"])
    assert run["state_name"] == "Completed", (run, first.log_tail())
    assert str(first.process.pid) in run["process"]

    # A cancel asked through the standby reaches the holder; the kernel is killed.
    code, queued = second.api("POST", "deployments/job/runs", {"parameters": {"nap": 600}})
    wait_for(
        "the long run to start",
        lambda: run_state(second, queued["run_id"])["state_name"] == "Running",
    )
    code, cancelling = second.api("POST", f"runs/{queued['run_id']}/cancel")
    assert (code, cancelling["state"]) == (202, "Cancelling")
    run = final_state(second, queued["run_id"], timeout=60)
    assert run["state_name"] == "Cancelled", run
    assert run["state_message"] == "Cancelled on request"
    assert states_of(queued["run_id"])[-2:] == ["Cancelling", "Cancelled"]
    wait_for("the notebook's processes to be gone", lambda: not notebook_processes(first), 30)
    code, answer = second.api("POST", f"runs/{queued['run_id']}/cancel")
    assert code == 409

    # The holder stops; the standby takes the lease over and runs from then on.
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(60) == 0, first.log_tail()
    wait_for("the standby to take over", lambda: holder_is(second, second.process.pid), 60)
    code, queued = second.api("POST", "deployments/job/runs", {})
    run = final_state(second, queued["run_id"])
    assert run["state_name"] == "Completed" and str(second.process.pid) in run["process"]

    # Cancelled directly by the holder this time.
    code, queued = second.api("POST", "deployments/job/runs", {"parameters": {"nap": 600}})
    wait_for(
        "the long run to start",
        lambda: run_state(second, queued["run_id"])["state_name"] == "Running",
    )
    code, cancelling = second.api("POST", f"runs/{queued['run_id']}/cancel")
    assert (code, cancelling["state"]) == (202, "Cancelling")
    assert final_state(second, queued["run_id"], timeout=60)["state_name"] == "Cancelled"
    assert states_of(queued["run_id"])[-2:] == ["Cancelling", "Cancelled"]
    wait_for("the notebook's processes to be gone", lambda: not notebook_processes(second), 30)

    from kernelflow.store.queries import sql

    runs = sql("SELECT id FROM flow_runs WHERE deployment_id IS NOT NULL")["id"]
    assert len(runs) == 4
    assert all(attempts(run_id) == 1 for run_id in runs)  # each tried exactly once


def test_the_traits_are_configurable_and_documented() -> None:
    from traitlets.config import Config

    from kernelflow.extension.app import KernelflowApp

    app = KernelflowApp(config=Config({"KernelflowApp": {"slots": 2, "run_scheduler": False}}))
    assert (app.slots, app.run_scheduler) == (2, False)
    assert app.store_home == str(settings.home())
    for name in ("run_scheduler", "slots", "store_home"):
        trait = KernelflowApp.class_traits()[name]
        assert trait.metadata.get("config") and trait.help
    from traitlets import TraitError

    with pytest.raises(TraitError, match="at least 1"):
        KernelflowApp(config=Config({"KernelflowApp": {"slots": 0}}))
    assert json.loads(
        (Path(__file__).parents[2] / "jupyter-config/server-config/kernelflow.json").read_text()
    ) == {"ServerApp": {"jpserver_extensions": {"kernelflow": True}}}
