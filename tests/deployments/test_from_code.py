"""Deploying from code: ``%kf deploy``, ``Flow.deploy()``/``serve()`` in a notebook and in a
module, skipped inside a deployment run; and the example notebook on a short schedule."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from deploy_helpers import wait_for

from kernelflow.deployments import Scheduler, deploy, get, list_deployments, run_deployment
from kernelflow.deployments.html_copy import html_copy
from kernelflow.errors import ConfigurationError

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "notebooks" / "04-scheduled-report.ipynb"


def execute_in_kernel(path: Path, kernel: str, monkeypatch) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    monkeypatch.setenv("JPY_SESSION_NAME", str(path))  # as Jupyter tells a kernel its notebook
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return nb


def test_kf_deploy_and_flow_deploy_in_a_notebook_deploy_its_saved_file(
    make_notebook, kernel, monkeypatch
):
    nb = make_notebook(
        "self_deploying",
        "%load_ext kernelflow",
        "%kf deploy --name from-magic --interval 60 -p n=2",
        "from kernelflow import flow\n@flow\ndef nightly():\n    return 1\n"
        "nightly.deploy(name='from-flow', cron='0 6 * * *', timezone='Europe/Berlin')",
        "nightly.serve(name='from-serve', interval=30)",
        "%kf deploy --name again --interval 60 -p n=2",
        "%kf deploy --name again --interval 60 -p n=2",  # re-running the cell is harmless
    )
    executed = execute_in_kernel(nb, kernel, monkeypatch)
    printed = json.dumps([c.get("outputs", []) for c in executed.cells])
    assert "Deployed this notebook (self_deploying.ipynb) as 'from-magic'" in printed
    names = {d.name: d for d in list_deployments()}
    assert set(names) == {"from-magic", "from-flow", "from-serve", "again"}
    assert names["from-magic"].notebook == str(nb) and names["from-magic"].parameters == {"n": 2}
    assert names["from-flow"].cron == "0 6 * * *" and names["from-serve"].interval == 30


def test_a_bad_magic_flag_is_one_usage_line(make_notebook, kernel, monkeypatch):
    nb = make_notebook("bad_flag", "%load_ext kernelflow", "%kf deploy --interval 60")
    from nbclient.exceptions import CellExecutionError

    with pytest.raises(CellExecutionError, match=r"%kf deploy: .*--name"):
        execute_in_kernel(nb, kernel, monkeypatch)


def test_inside_a_deployment_run_the_deploy_calls_are_skipped(make_notebook, store):
    nb = make_notebook(
        "carries_its_deployment",
        "%kf deploy --name inner --interval 60",
        "from kernelflow import flow\n@flow\ndef job():\n    return 1\n"
        "job.serve(name='inner-serve', interval=30)\njob.deploy(name='inner-deploy', interval=30)",
    )
    deploy(nb, "outer", interval=3600)
    run = run_deployment("outer")
    assert run.state.name == "Completed", run.state.message
    assert [d.name for d in list_deployments()] == ["outer"]
    logs = store.sql("SELECT message FROM logs WHERE run_id = ?", [run.id])
    skipped = [
        m for m in logs["message"] if "skipped: this notebook is running as deployment run" in m
    ]
    assert len(skipped) == 3, list(logs["message"])


def test_a_module_flow_deploy_says_to_serve(tmp_path, monkeypatch):
    from kernelflow import flow

    @flow
    def in_module():
        return 1

    in_module.fn.__module__ = "pipelines"
    with pytest.raises(ConfigurationError, match=r"defined in a module.*in_module.serve"):
        in_module.deploy(name="x", interval=5)


def test_a_module_flow_serve_blocks_and_runs_on_schedule(tmp_path, store):
    (tmp_path / "pipelines.py").write_text(
        textwrap.dedent("""
        from kernelflow import flow

        @flow
        def heartbeat():
            return "beat"
    """)
    )
    (tmp_path / "serve.py").write_text(
        "from pipelines import heartbeat\nheartbeat.serve(name='beats', interval=1)\n"
    )
    env = dict(__import__("os").environ)
    env["PYTHONPATH"] = f"{Path(__file__).resolve().parents[2]}:{tmp_path}"
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "serve.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def beats():
            return (
                store.sql(
                    "SELECT count(*) FROM flow_runs WHERE flow_name = 'heartbeat' "
                    "AND state_name = 'Completed'"
                ).iloc[0, 0]
                >= 2
            )

        wait_for(beats, 60, "two served runs", every=0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert b"Serving flow 'heartbeat' as 'beats' (every 1 s)" in out


def test_the_example_notebook_on_a_short_schedule(kernel, store, tmp_path):
    notebook = tmp_path / EXAMPLE.name
    notebook.write_bytes(EXAMPLE.read_bytes())
    deployment = deploy(
        notebook, "report", interval=3, kernel=kernel, parameters={"n": "4", "day": "2026-02-01"}
    )
    scheduler = Scheduler(slots=2)
    started = time.time()
    scheduler.run(duration=7)
    assert not scheduler.running_runs and scheduler.error is None
    runs = store.sql(
        "SELECT id, state_name, parameters FROM flow_runs WHERE deployment_id = ? ORDER BY created",
        [deployment.id],
    )
    assert 1 <= len(runs) <= 4 and set(runs["state_name"]) == {"Completed"}, runs
    assert time.time() - started < 240
    for run_id in runs["id"]:
        output = store.home / "outputs" / "report" / f"{run_id}.ipynb"
        text = json.dumps([c.get("outputs", []) for c in nbformat.read(output, 4).cells])
        assert "Report for 2026-02-01: 4 values, total 3.000, mean 0.750" in text
        assert "Report for 2026-02-01" in html_copy(output).read_text()
    assert get("report").parameters == {"n": 4, "day": "2026-02-01"}
