"""``from kernelflow import runtime``: Prefect's ``prefect.runtime`` in flows, tasks,
``%%task`` cells and deployment runs."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import nbformat
import pytest

from kernelflow import flow, runtime, task
from kernelflow.errors import ConfigurationError


class TestOutsideAnyRun:
    def test_every_attribute_is_empty(self, run_python):
        # A fresh process: nothing has registered a run or a notebook session.
        proc = run_python(
            """
            import datetime as dt, json
            from kernelflow import runtime
            f, t, d = runtime.flow_run, runtime.task_run, runtime.deployment
            start = f.scheduled_start_time
            assert start.tzinfo is not None
            assert abs((dt.datetime.now(dt.timezone.utc) - start).total_seconds()) < 5
            print(json.dumps({
                "flow_run": [f.id, f.name, f.flow_name, f.flow_version, f.parameters, f.tags,
                             f.run_count, f.parent_flow_run_id, f.parent_deployment_id],
                "task_run": [t.id, t.name, t.task_name, t.parameters, t.tags, t.run_count],
                "deployment": [d.id, d.name, d.version, d.parameters, d.flow_run_id],
            }))
            """
        )
        assert json.loads(proc.stdout) == {
            "flow_run": [None, None, None, None, {}, [], 0, None, None],
            "task_run": [None, None, None, {}, [], 0],
            "deployment": [None, None, None, {}, None],
        }

    def test_unknown_attribute_is_an_attribute_error(self):
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            runtime.flow_run.nope  # noqa: B018
        assert "name" in dir(runtime.task_run)


class TestInFlowsAndTasks:
    def test_flow_run_attributes(self):
        @flow(flow_run_name="report-{day}", version="2.1", retries=1)
        def report(day: str, limit: int = 3) -> dict:
            if runtime.flow_run.run_count == 1:
                raise RuntimeError("first try fails")
            return {
                "id": runtime.flow_run.id,
                "name": runtime.flow_run.name,
                "flow_name": runtime.flow_run.flow_name,
                "flow_version": runtime.flow_run.flow_version,
                "parameters": runtime.flow_run.parameters,
                "run_count": runtime.flow_run.run_count,
                "start": runtime.flow_run.scheduled_start_time,
                "deployment_flow_run_id": runtime.deployment.flow_run_id,
            }

        before = dt.datetime.now(dt.timezone.utc)
        state = report("mon", return_state=True)
        seen = state.result()
        assert seen["name"] == "report-mon"
        assert seen["flow_name"] == "report"
        assert seen["flow_version"] == "2.1"
        assert seen["parameters"] == {"day": "mon", "limit": 3}
        assert seen["run_count"] == 2
        assert seen["id"] == state.run_id
        # Outside a deployment, Prefect's deployment.flow_run_id is the current flow run's id.
        assert seen["deployment_flow_run_id"] == state.run_id
        assert before - dt.timedelta(seconds=1) <= seen["start"] <= dt.datetime.now(dt.timezone.utc)

    def test_task_run_attributes_and_its_flow_run(self):
        @task(task_run_name="fetch-{city}", retries=1, tags=["net"])
        def fetch(city: str, country: str = "no") -> dict:
            if runtime.task_run.run_count == 1:
                raise ConnectionError("flaky")
            return {
                "id": runtime.task_run.id,
                "name": runtime.task_run.name,
                "task_name": runtime.task_run.task_name,
                "parameters": runtime.task_run.parameters,
                "tags": runtime.task_run.tags,
                "run_count": runtime.task_run.run_count,
                "flow_run_name": runtime.flow_run.name,
            }

        @flow(flow_run_name="trip")
        def trip() -> tuple:
            state = fetch("oslo", return_state=True)
            return state.run_id, state.result()

        run_id, seen = trip()
        assert seen == {
            "id": run_id,
            "name": "fetch-oslo",
            "task_name": "fetch",
            "parameters": {"city": "oslo", "country": "no"},
            "tags": ["net"],
            "run_count": 2,
            "flow_run_name": "trip",
        }

    def test_a_task_sees_resolved_parameters_and_the_flow_sees_no_task(self):
        @task
        def one() -> int:
            return 1

        @task
        def add(x: int) -> dict:
            return runtime.task_run.parameters

        @flow
        def pipeline() -> tuple:
            return add(one.submit()), runtime.task_run.name

        assert pipeline() == ({"x": 1}, None)

    def test_a_subflow_sees_its_own_run_and_its_parent(self):
        @flow(flow_run_name="child")
        def child() -> tuple:
            return runtime.flow_run.name, runtime.flow_run.parent_flow_run_id

        @flow(flow_run_name="parent")
        def parent() -> tuple:
            return runtime.flow_run.id, child()

        parent_id, (name, parent_of_child) = parent()
        assert (name, parent_of_child) == ("child", parent_id)

    def test_a_task_on_a_process_runner_sees_its_run(self):
        from kernelflow.runners import ProcessPoolTaskRunner

        @flow(flow_run_name="remote", task_runner=ProcessPoolTaskRunner(max_workers=1))
        def remote() -> tuple:
            future = where.submit(7)
            return future.task_run_id, runtime.flow_run.id, future.result()

        run_id, flow_run_id, seen = remote()
        assert seen == (run_id, "where-0", {"n": 7}, flow_run_id)

    def test_values_are_read_when_asked_not_at_import(self):
        from kernelflow.runtime import flow_run

        @flow(flow_run_name="late-bound")
        def named() -> str:
            return flow_run.name

        assert named() == "late-bound"
        assert flow_run.name is None


@task
def where(n: int) -> tuple:
    """A module-level task, so a process runner can import it."""
    return (
        runtime.task_run.id,
        runtime.task_run.name,
        runtime.task_run.parameters,
        runtime.flow_run.id,
    )


class TestEnvironmentOverrides:
    def test_values_are_replaced_and_converted_to_their_type(self, monkeypatch):
        monkeypatch.setenv("KERNELFLOW__RUNTIME__FLOW_RUN__NAME", "mocked")
        monkeypatch.setenv("KERNELFLOW__RUNTIME__TASK_RUN__RUN_COUNT", "4")
        monkeypatch.setenv(
            "KERNELFLOW__RUNTIME__FLOW_RUN__SCHEDULED_START_TIME", "2024-05-01T06:00"
        )
        monkeypatch.setenv("KERNELFLOW__RUNTIME__DEPLOYMENT__NAME", "nightly")
        monkeypatch.setenv("KERNELFLOW__RUNTIME__FLOW_RUN__EXTRA", "anything")
        assert runtime.flow_run.name == "mocked"
        assert runtime.task_run.run_count == 4
        assert runtime.flow_run.scheduled_start_time == dt.datetime(
            2024, 5, 1, 6, tzinfo=dt.timezone.utc
        )
        assert runtime.deployment.name == "nightly"
        assert runtime.flow_run.extra == "anything"  # an unknown name, as in Prefect

    def test_a_collection_cannot_be_set_from_the_environment(self, monkeypatch):
        monkeypatch.setenv("KERNELFLOW__RUNTIME__FLOW_RUN__PARAMETERS", "{}")
        with pytest.raises(ConfigurationError, match="monkeypatch"):
            runtime.flow_run.parameters  # noqa: B018

    def test_a_value_of_the_wrong_type_is_one_clear_error(self, monkeypatch):
        monkeypatch.setenv("KERNELFLOW__RUNTIME__TASK_RUN__RUN_COUNT", "many")
        with pytest.raises(ConfigurationError, match="RUN_COUNT='many' is not a int"):
            runtime.task_run.run_count  # noqa: B018


@pytest.fixture
def ip():
    """IPython's test shell with kernelflow loaded; namespace and extension reset after."""
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    shell = globalipapp.get_ipython()
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "kernelflow")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "kernelflow")
        shell.reset(new_session=False)


class TestInANotebook:
    def test_top_level_is_the_session_run_and_a_task_cell_is_a_task_run(self, ip):
        ip.run_cell("from kernelflow import runtime, tags", store_history=True)
        ip.run_cell("session = (runtime.flow_run.id, runtime.flow_run.name, runtime.task_run.id)")
        session_id, session_name, no_task = ip.user_ns["session"]
        assert session_id is not None and no_task is None
        path = os.environ.get("JPY_SESSION_NAME")
        assert session_name == (os.path.basename(path) if path else "ipython-session")
        ip.run_cell_magic(
            "task",
            "scores --tags nightly --no-cache",
            "seen = (runtime.task_run.name, runtime.task_run.task_name, runtime.task_run.tags,\n"
            "        runtime.task_run.parameters, runtime.flow_run.id)",
        )
        name, task_name, cell_tags, parameters, flow_run_id = ip.user_ns["seen"]
        assert (name, task_name, cell_tags, parameters) == ("scores-0", "scores", ["nightly"], {})
        assert flow_run_id == session_id


def _notebook(path: Path, kernel: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("region: str = 'eu'\nlimit: int = 1")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
class TestInADeploymentRun:
    def test_the_notebook_sees_its_deployment_and_run(
        self, tmp_path, kernel_name, monkeypatch, store
    ):
        from kernelspecs import checkout_pythonpath

        from kernelflow.deployments import deploy, run_deployment

        monkeypatch.setenv("PYTHONPATH", checkout_pythonpath())
        probe = (
            "import json\n"
            "from kernelflow import runtime, flow, task\n"
            "d, f = runtime.deployment, runtime.flow_run\n"
            "@task\n"
            "def in_task():\n"
            "    return runtime.deployment.name, runtime.deployment.flow_run_id\n"
            "@flow\n"
            "def in_flow():\n"
            "    return runtime.deployment.id, runtime.flow_run.parent_deployment_id, in_task()\n"
            "print('RUNTIME', json.dumps({\n"
            "    'id': d.id, 'name': d.name, 'version': d.version, 'parameters': d.parameters,\n"
            "    'flow_run_id': d.flow_run_id, 'this_run': f.id, 'parent': f.parent_flow_run_id,\n"
            "    'parent_deployment_id': f.parent_deployment_id,\n"
            "    'scheduled': f.scheduled_start_time.timestamp(), 'in_flow': in_flow()}))"
        )
        nb = _notebook(
            tmp_path / "report.ipynb",
            kernel_name,
            probe,
            "%%task cell\nx = runtime.deployment.name",
        )
        deployment = deploy(nb, "nightly-report", interval=3600, parameters={"region": "us"})
        asked = time.time()
        run = run_deployment("nightly-report", parameters={"limit": 5})
        assert run.state.name == "Completed", run.state.message
        output = nbformat.read(store.home / "outputs" / "nightly-report" / f"{run.id}.ipynb", 4)
        text = "".join(o.get("text", "") for c in output.cells for o in c.get("outputs", []))
        line = next(ln for ln in text.splitlines() if ln.startswith("RUNTIME "))
        seen = json.loads(line.removeprefix("RUNTIME "))
        assert seen == {
            "id": deployment.id,
            "name": "nightly-report",
            "version": deployment.content_hash,
            "parameters": {"region": "us", "limit": 5},
            "flow_run_id": run.id,
            # The notebook's flow run is the deployment run itself, as in Prefect.
            "this_run": run.id,
            "parent": None,
            "parent_deployment_id": None,
            "scheduled": pytest.approx(asked, abs=5),
            # A flow called in it is its subflow.
            "in_flow": [deployment.id, deployment.id, ["nightly-report", run.id]],
        }
