"""Deployment runs with real kernels: states, outputs, progress, lineage, failures, retries,
timeouts, notifications, ``--after`` and Dask."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import nbformat
import psutil
import pytest
from deploy_helpers import kernels_of_run, wait_for

from kernelflow import settings
from kernelflow.deployments import Scheduler, deploy, run_deployment
from kernelflow.deployments.html_copy import html_copy, html_path
from kernelflow.deployments.notify import wait_for_deliveries
from kernelflow.errors import ConfigurationError
from kernelflow.store.journals import pending_bytes

pytestmark = pytest.mark.slow


def states_of(store, run_id: str) -> list[str]:
    frame = store.sql(
        "SELECT state_name FROM states WHERE run_id = ? ORDER BY timestamp, seq", [run_id]
    )
    return list(frame["state_name"])


def output_text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells])


class TestARun:
    def test_completed_with_outputs_progress_logs_and_lineage(self, make_notebook, store):
        nb = make_notebook(
            "report",
            "import sys\nprint('value', n * 2)\nprint('to stderr', file=sys.stderr)",
            "from kernelflow import task\n@task\ndef square(x):\n    return x * x\nsquare(n)",
            "%%task doubled\ndoubled = n * 2",
            parameters="n: int = 1",
        )
        deploy(nb, "report", interval=3600, parameters={"n": "3"})
        run = run_deployment("report", parameters={"n": "4"})
        assert run.state.name == "Completed", run.state.message
        output = store.home / "outputs" / "report" / f"{run.id}.ipynb"
        assert run.state.message == f"Output notebook {output}"
        assert "value 8" in output_text(output)
        # Folded before run_deployment returned: nothing of the run waits in a journal.
        assert pending_bytes(settings.paths()) == 0
        # The HTML copy is made when first asked for (the panel, ``GET runs/<id>/html``).
        assert not html_path(output).exists()
        assert "value 8" in html_copy(output).read_text()
        assert states_of(store, run.id) == ["Scheduled", "Pending", "Running", "Completed"]
        row = store.sql("SELECT * FROM flow_runs WHERE id = ?", [run.id]).iloc[0]
        assert row["deployment_id"] and json.loads(row["parameters"])["n"] == "4"
        logs = store.sql("SELECT logger, message FROM logs WHERE run_id = ?", [run.id])
        lines = set(zip(logs["logger"], logs["message"], strict=True))
        assert ("kernelflow.deployments.stdout", "value 8") in lines
        assert ("kernelflow.deployments.stderr", "to stderr") in lines
        progress = store.sql("SELECT * FROM deployment_progress WHERE flow_run_id = ?", [run.id])
        assert progress["cells_done"].iloc[0] == progress["cells_total"].iloc[0] == 5
        # The notebook's tasks are the deployment run's own: no session run in between.
        children = store.sql("SELECT id FROM flow_runs WHERE parent_flow_run_id = ?", [run.id])
        assert children.empty
        sessions = store.sql("SELECT id FROM flow_runs WHERE list_contains(tags, 'notebook')")
        assert sessions.empty
        tasks = store.sql(
            "SELECT name, state_name FROM task_runs WHERE flow_run_id = ? ORDER BY created",
            [run.id],
        )
        assert list(tasks["name"]) == ["square-0", "doubled-0"]
        assert set(tasks["state_name"]) == {"Completed"}

    def test_a_failing_cell_is_named_in_the_message(self, make_notebook, store):
        nb = make_notebook("fails", "x = 1", "raise ValueError('boom-42')", "print('never')")
        deploy(nb, "fails", interval=3600)
        run = run_deployment("fails")
        assert run.state.name == "Failed"
        output = store.home / "outputs" / "fails" / f"{run.id}.ipynb"
        assert "ValueError: boom-42" in run.state.message
        assert "Cell In [3] (\"raise ValueError('boom-42')\") failed" in run.state.message
        assert str(output) in run.state.message
        assert "boom-42" in output_text(output)

    def test_parameters_are_checked_again_when_run(self, make_notebook):
        nb = make_notebook("typed", "print(n)")
        deploy(nb, "typed", interval=3600)
        with pytest.raises(ConfigurationError, match="'n' of deployment 'typed' is an int"):
            run_deployment("typed", parameters={"n": "many"})
        with pytest.raises(ConfigurationError, match="has no parameter 'm'"):
            run_deployment("typed", parameters={"m": 1})

    def test_each_retry_is_a_fresh_kernel(self, make_notebook, store, tmp_path):
        nb = make_notebook(
            "flaky",
            "import os, pathlib\nmark = pathlib.Path('tries.txt')\n"
            "mark.write_text(mark.read_text() + f'{os.getpid()} ' if mark.exists() "
            "else f'{os.getpid()} ')\n"
            "if len(mark.read_text().split()) < 2:\n    raise RuntimeError('first try fails')",
        )
        deploy(nb, "flaky", interval=3600, retries=2, retry_delay=0.2)
        run = run_deployment("flaky")
        assert run.state.name == "Completed", run.state.message
        pids = (tmp_path / "tries.txt").read_text().split()
        assert len(pids) == 2 and pids[0] != pids[1]
        assert states_of(store, run.id) == [
            "Scheduled",
            "Pending",
            "Running",
            "AwaitingRetry",
            "Retrying",
            "Completed",
        ]
        assert store.sql("SELECT run_count FROM flow_runs WHERE id = ?", [run.id]).iloc[0, 0] == 2

    def test_timeout_kills_the_kernel_and_its_children(self, make_notebook, store):
        nb = make_notebook(
            "slow",
            "import subprocess\nchild = subprocess.Popen(['sleep', '300'])\n"
            "print('child', child.pid)",
            "import time\ntime.sleep(300)",
        )
        # Long enough for a kernel to start on a busy 2-core machine, short for a test.
        deploy(nb, "slow", interval=3600, timeout=20)
        run = run_deployment("slow")
        assert run.state.name == "TimedOut", run.state.message
        assert "exceeded timeout of 20" in run.state.message
        output = store.home / "outputs" / "slow" / f"{run.id}.ipynb"
        text = output_text(output)  # the partial notebook is kept
        child = int(text.split("child ")[1].split("\\n")[0])
        # SIGKILLed before the outcome was sent; give the OS a moment to tear them down.
        wait_for(lambda: kernels_of_run(run.id) == [], 10, "the kernel processes to be gone")

        def gone() -> bool:
            return not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"

        wait_for(gone, 10, "the kernel's child process to be gone")


class _Hooks(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_notifications_on_failure_and_a_failing_webhook(make_notebook, store):
    server = HTTPServer(("127.0.0.1", 0), _Hooks)
    _Hooks.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    dead = HTTPServer(("127.0.0.1", 0), _Hooks)
    dead_url = f"http://127.0.0.1:{dead.server_address[1]}/hook"
    dead.server_close()  # nothing listens there any more
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        nb = make_notebook("alerts", "raise KeyError('gone')")
        deploy(nb, "alerts", interval=3600, notify=[dead_url, url])
        run = run_deployment("alerts")
        # Webhooks are sent in the background; the run did not wait for them.
        assert wait_for_deliveries(timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert run.state.name == "Failed"
    assert len(_Hooks.received) == 1
    message = _Hooks.received[0]
    assert message["state"] == "Failed" and message["flow_run_id"] == run.id
    assert message["text"].startswith("kernelflow: deployment 'alerts' run")
    assert "KeyError" in message["text"] and message["output"].endswith(f"{run.id}.ipynb")
    logs = store.sql("SELECT message FROM logs WHERE run_id = ? AND level = 30", [run.id])
    assert f"Webhook to {dead_url} failed: connection refused" in " ".join(logs["message"])
    outcomes = store.sql("SELECT url, outcome FROM webhooks WHERE flow_run_id = ?", [run.id])
    assert sorted(zip(outcomes["url"], outcomes["outcome"], strict=True)) == sorted(
        [(dead_url, "failed"), (url, "sent")]
    )


def test_after_another_deployment(make_notebook, store):
    upstream = make_notebook("extract", "print('extracted')")
    downstream = make_notebook(
        "load", "print('upstream was', upstream_run_id)", parameters='upstream_run_id: str = ""'
    )
    deploy(upstream, "extract", interval=3600)
    deploy(downstream, "load", after="extract")
    first = run_deployment("extract")
    assert first.state.name == "Completed"
    queued = store.sql("SELECT * FROM deployment_fires WHERE kind = 'after'")
    assert len(queued) == 1
    Scheduler(slots=1).run(once=True)
    run_id = queued["flow_run_id"].iloc[0]
    row = store.sql("SELECT state_name, parameters FROM flow_runs WHERE id = ?", [run_id]).iloc[0]
    assert row["state_name"] == "Completed"
    assert json.loads(row["parameters"])["upstream_run_id"] == repr(first.id)
    output = store.home / "outputs" / "load" / f"{run_id}.ipynb"
    assert f"upstream was {first.id}" in output_text(output)


def test_runs_on_a_dask_cluster(make_notebook, store):
    from distributed import LocalCluster

    nb = make_notebook("remote", "import os\nprint('ran in', os.getpid())")
    with LocalCluster(
        n_workers=1, threads_per_worker=1, dashboard_address=None, processes=True
    ) as cluster:
        deploy(nb, "remote", interval=3600, dask=cluster.scheduler_address)
        run = run_deployment("remote")
    assert run.state.name == "Completed", run.state.message
    output = store.home / "outputs" / "remote" / f"{run.id}.ipynb"
    assert "ran in" in output_text(output) and "ran in" in html_copy(output).read_text()
    logs = store.sql("SELECT logger, message FROM logs WHERE run_id = ?", [run.id])
    assert any(m.startswith("ran in") for m in logs["message"])  # events came back
    children = store.sql("SELECT id FROM flow_runs WHERE parent_flow_run_id = ?", [run.id])
    assert len(children) <= 1
