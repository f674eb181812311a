"""The deployment backends: which one runs a try, and what a bad one says.

End to end (a real scheduler, a real notebook) the default backend's two
paths are covered by ``test_runs.py`` (locally, and on a Dask cluster) and a
configured backend by ``tests/extension/test_extension_backend.py``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from kernelflow.deployments.backends import (
    DaskBackend,
    DefaultBackend,
    DeploymentBackend,
    LocalBackend,
    load_backend_class,
)
from kernelflow.errors import ConfigurationError
from kernelflow.states import Completed, State


@dataclass
class _Deployment:
    name: str = "daily"
    dask: str | None = None


@dataclass
class _Try:
    """A stand-in for the execution: the backends under test only read these."""

    deployment: _Deployment
    cancel: threading.Event = field(default_factory=threading.Event)
    local_jobs: list[dict[str, Any]] = field(default_factory=list)

    def run_locally(self, job: dict[str, Any]) -> State:
        self.local_jobs.append(job)
        return Completed(message="ran here")

    def state_of(self, outcome: dict[str, Any] | None, code: int | None = None) -> State:
        raise AssertionError("only a Dask try turns an outcome into a state here")


class _Recording(DeploymentBackend):
    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []

    def run(self, execution: Any, job: dict[str, Any]) -> State:
        self.jobs.append(job)
        return Completed()


class TestDefaultBackend:
    def test_a_deployment_with_a_dask_address_goes_to_dask_the_others_stay_local(self) -> None:
        backend = DefaultBackend()
        backend.local, backend.dask = _Recording(), _Recording()
        backend.run(_Try(_Deployment()), {"flow_run_id": "here"})
        backend.run(_Try(_Deployment(dask="tcp://127.0.0.1:8786")), {"flow_run_id": "there"})
        assert [job["flow_run_id"] for job in backend.local.jobs] == ["here"]
        assert [job["flow_run_id"] for job in backend.dask.jobs] == ["there"]

    def test_the_local_backend_runs_the_try_in_a_local_worker(self) -> None:
        execution = _Try(_Deployment())
        state = LocalBackend().run(execution, {"flow_run_id": "x"})
        assert state.is_completed() and execution.local_jobs == [{"flow_run_id": "x"}]

    def test_dask_without_an_address_says_what_to_do(self) -> None:
        with pytest.raises(ConfigurationError, match="deploy it with --dask ADDRESS"):
            DaskBackend().run(_Try(_Deployment()), {"flow_run_id": "x"})


class TestLoadBackendClass:
    @pytest.mark.parametrize(
        "value",
        [
            "kernelflow.deployments.backends:LocalBackend",
            "kernelflow.deployments.backends.LocalBackend",
            LocalBackend,
        ],
    )
    def test_module_colon_class_module_dot_class_or_the_class(self, value: Any) -> None:
        assert load_backend_class(value) is LocalBackend

    @pytest.mark.parametrize(
        ("value", "words"),
        [
            ("no_such_module_kf:Backend", "cannot import"),
            ("kernelflow.errors:ConfigurationError", "is not a backend class"),
            (":Backend", "cannot use"),
            (object, "is not a backend class"),
        ],
    )
    def test_a_bad_value_is_one_line_that_says_what_to_write(self, value: Any, words: str) -> None:
        with pytest.raises(ConfigurationError) as caught:
            load_backend_class(value, "--backend")
        message = str(caught.value)
        assert message.startswith("--backend: ") and words in message and "\n" not in message
        assert "subclass of kernelflow.deployments.backends.DeploymentBackend" in message

    def test_a_backend_must_implement_run(self) -> None:
        class Incomplete(DeploymentBackend):
            pass

        with pytest.raises(TypeError, match="run"):
            Incomplete()  # type: ignore[abstract]
