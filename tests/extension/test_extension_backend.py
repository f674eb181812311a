"""``KernelflowApp.backend_class``: the configured deployment backend is the one that runs.

A real in-process Jupyter server with its scheduler on and a backend class
given as ``module:Class`` in the server's config: a deployment run asked for
through the REST API executes a real notebook through that backend. A bad
value is a one-line error that says what to write, in the server's config,
on the ``Scheduler`` and on ``kernelflow scheduler --backend``.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from kernelflow.deployments.backends import DeploymentTry, LocalBackend
from kernelflow.states import State

pytestmark = pytest.mark.timeout(300)

FINAL = ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut")


class RecordingBackend(LocalBackend):
    """Runs each try locally, and records the jobs it was handed."""

    #: Class-wide on purpose: the server makes the instance.
    jobs: list[dict[str, Any]] = []

    def run(self, execution: DeploymentTry, job: dict[str, Any]) -> State:
        """Record ``job``, then run it as the local backend does."""
        type(self).jobs.append(job)
        return super().run(execution, job)


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    """The extension with its scheduler, on the recording backend (named as in a config file)."""
    RecordingBackend.jobs = []
    return {
        "ServerApp": {"jpserver_extensions": {"kernelflow": True}},
        "KernelflowApp": {
            "run_scheduler": True,
            "slots": 1,
            "backend_class": f"{__name__}:RecordingBackend",
        },
    }


def write_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    nb.cells = [
        nbformat.v4.new_code_cell("n: int = 2", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print('result', n * 2)"),
    ]
    nbformat.write(nb, path)


async def call(jp_fetch: Any, method: str, endpoint: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"method": method}
    if method != "GET":
        kwargs["body"] = json.dumps(body or {})
    response = await jp_fetch("kernelflow", "api", *endpoint.split("/"), **kwargs)
    return response.code, json.loads(response.body)


def extension_app(serverapp: Any) -> Any:
    """The server's ``KernelflowApp``."""
    from kernelflow.extension.app import KernelflowApp

    for extension in serverapp.extension_manager.extensions.values():
        for point in extension.extension_points.values():
            if isinstance(point.app, KernelflowApp):
                return point.app
    raise AssertionError("the kernelflow extension is not loaded")


@pytest.mark.slow
async def test_the_configured_backend_runs_the_deployment(
    jp_fetch: Any, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    app = extension_app(jp_serverapp)
    assert app.backend_class is RecordingBackend
    # What a real server does once its loop runs (pytest-jupyter's server stops short of it).
    await jp_serverapp.extension_manager.start_extension("kernelflow")
    assert isinstance(app.scheduler.backend, RecordingBackend)
    write_notebook(jp_root_dir / "job.ipynb")
    # A yearly schedule: the only run is the one asked for below.
    body = {"notebook": "job.ipynb", "name": "daily", "cron": "0 0 1 1 *"}
    code, answer = await call(jp_fetch, "POST", "deployments", body)
    assert code == 201, answer
    code, queued = await call(jp_fetch, "POST", "deployments/daily/runs", {"parameters": {"n": 5}})
    assert code == 202, queued
    run_id = queued["run_id"]

    deadline = time.monotonic() + 240
    while True:
        code, detail = await call(jp_fetch, "GET", f"runs/{run_id}")
        assert code == 200, detail
        if detail["run"]["state_name"] in FINAL:
            break
        assert time.monotonic() < deadline, f"run {run_id} did not end: {detail['run']}"
        await asyncio.sleep(0.25)  # the run ends in the scheduler's thread; we read the store

    assert detail["run"]["state_name"] == "Completed", detail["run"]
    ours = [job for job in RecordingBackend.jobs if job["flow_run_id"] == run_id]
    assert [job["parameters"] for job in ours] == [{"n": 5}]  # one try, through the backend
    executed = nbformat.read(ours[0]["output"], as_version=4)
    printed = [out.get("text", "") for cell in executed.cells for out in cell.get("outputs", [])]
    assert "result 10\n" in printed  # the parameter given reached the notebook


class TestBadBackend:
    @pytest.mark.parametrize(
        ("value", "words"),
        [
            ("no_such_module_kf:Backend", "cannot import 'no_such_module_kf:Backend'"),
            ("kernelflow.deployments.backends:Nope", "has no attribute 'Nope'"),
            ("builtins:int", "'builtins:int' is not a backend class"),
            ("Backend", "cannot use 'Backend'"),
        ],
    )
    def test_the_traitlet_says_what_to_write(self, value: str, words: str) -> None:
        from traitlets import TraitError
        from traitlets.config import Config

        from kernelflow.extension.app import KernelflowApp

        with pytest.raises(TraitError) as caught:
            KernelflowApp(config=Config({"KernelflowApp": {"backend_class": value}}))
        message = str(caught.value)
        assert message.startswith("KernelflowApp.backend_class: ") and words in message
        assert "\n" not in message and "'module:Class'" in message

    def test_the_trait_is_documented_and_defaults_to_dask_or_local(self) -> None:
        from kernelflow.deployments.backends import DefaultBackend
        from kernelflow.extension.app import KernelflowApp

        trait = KernelflowApp.class_traits()["backend_class"]
        assert trait.metadata.get("config") and "DeploymentBackend" in trait.help
        assert KernelflowApp().backend_class is DefaultBackend

    def test_the_scheduler_wants_a_backend_instance(self) -> None:
        from kernelflow.deployments.scheduler import Scheduler
        from kernelflow.errors import ConfigurationError

        with pytest.raises(ConfigurationError, match="is not a DeploymentBackend"):
            Scheduler(backend=LocalBackend)  # type: ignore[arg-type]  (the class, not one)

    def test_the_cli_says_what_to_write(self) -> None:
        from click.testing import CliRunner

        from kernelflow.cli.deployments import scheduler_command

        result = CliRunner().invoke(scheduler_command, ["--once", "--backend", "builtins:int"])
        assert result.exit_code != 0
        assert "--backend: 'builtins:int' is not a backend class" in str(result.exception or "")
