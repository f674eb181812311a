"""Deployment backends: where one try of a deployment run executes.

A backend runs one try's job (the dict :meth:`RunExecution.job
<kernelflow.deployments.execution.RunExecution.job>` builds: snapshot,
output paths, parameters, kernel, timeouts) and returns the state it ended
in. It must stop early when the try's ``cancel`` event is set (the run then
ends Cancelled). The run's states around the try (Pending, Running,
AwaitingRetry, the final one) are set by the execution, never by a backend.

Design
------
The backend is a class chosen by configuration, as Jupyter projects do it
(``KernelflowApp.backend_class`` in the server, ``kernelflow scheduler
--backend module:Class`` on the command line); the scheduler makes one
instance and every run it starts uses it. The default,
:class:`DefaultBackend`, keeps the per-deployment choice kernelflow always
made: a deployment deployed with ``--dask ADDRESS`` runs on that Dask
cluster (:class:`DaskBackend`), any other locally in a worker process with
papermill (:class:`LocalBackend`). A custom backend subclasses
:class:`DeploymentBackend` (or one of these) and overrides :meth:`run
<DeploymentBackend.run>`.

This module imports nothing of the execution it serves: a backend sees it
through :class:`DeploymentTry`, so the execution may import the backends
without an import cycle.
"""

from __future__ import annotations

import abc
import importlib
import threading
from typing import TYPE_CHECKING, Any, Protocol

from kernelflow.errors import ConfigurationError

if TYPE_CHECKING:
    from kernelflow.deployments.models import Deployment
    from kernelflow.states import State

__all__ = [
    "DaskBackend",
    "DefaultBackend",
    "DeploymentBackend",
    "DeploymentTry",
    "LocalBackend",
    "load_backend_class",
]


class DeploymentTry(Protocol):
    """What a backend uses of the run execution whose try it runs.

    :class:`~kernelflow.deployments.execution.RunExecution` is the one
    implementation.
    """

    deployment: Deployment  #: the deployment being run
    cancel: threading.Event  #: set: stop the try (kill what runs it) and return

    def run_locally(self, job: dict[str, Any]) -> State:
        """Run ``job`` in a worker process on this machine; the state it ended in."""
        ...

    def state_of(self, outcome: dict[str, Any] | None, code: int | None = None) -> State:
        """The state a worker's ``outcome`` means (None: it ended without one, exit ``code``)."""
        ...


class DeploymentBackend(abc.ABC):
    """Where a deployment try runs: subclass it and override :meth:`run`.

    Examples
    --------
    A backend that records which runs it started, then runs them locally::

        class Audited(LocalBackend):
            def run(self, execution, job):
                print("starting", job["flow_run_id"])
                return super().run(execution, job)

    configured with ``c.KernelflowApp.backend_class = "mymodule.Audited"``.
    """

    @abc.abstractmethod
    def run(self, execution: DeploymentTry, job: dict[str, Any]) -> State:
        """Run one try of a deployment run and return the state it ended in.

        Parameters
        ----------
        execution
            The run's execution: its ``deployment``, its ``cancel`` event
            (when set, stop the try and return promptly; the run then ends
            Cancelled), and helpers to run locally or turn a worker's
            outcome into a state.
        job
            The try's job (``flow_run_id``, ``snapshot``, ``output``,
            ``parameters``, ``kernel``, ``timeout``...).
        """


class LocalBackend(DeploymentBackend):
    """Runs each try with papermill in a worker process on this machine (a fresh kernel)."""

    def run(self, execution: DeploymentTry, job: dict[str, Any]) -> State:
        """Run the try in a local worker (a pre-started one when the scheduler has one)."""
        return execution.run_locally(job)


class DaskBackend(DeploymentBackend):
    """Runs each try on the Dask cluster at the deployment's ``dask`` address.

    See :mod:`kernelflow.deployments.scaleout`: the worker process runs on a
    Dask worker and its output and journals come back when the try ends.
    """

    def run(self, execution: DeploymentTry, job: dict[str, Any]) -> State:
        """Submit the try to the deployment's Dask cluster and wait for it (cancellable)."""
        from kernelflow.deployments.scaleout import run_on_dask

        address = execution.deployment.dask
        if not address:
            raise ConfigurationError(
                f"Deployment {execution.deployment.name!r} has no Dask address; deploy it "
                "with --dask ADDRESS, or use a backend that runs it locally"
            )
        outcome = run_on_dask(address, job, execution.cancel)
        return execution.state_of(outcome, None)


class DefaultBackend(DeploymentBackend):
    """Dask for a deployment deployed with a Dask address, locally for any other.

    The choice kernelflow has always made; ``local`` and ``dask`` are the
    backends it hands each try to.
    """

    def __init__(self) -> None:
        self.local: DeploymentBackend = LocalBackend()
        self.dask: DeploymentBackend = DaskBackend()

    def run(self, execution: DeploymentTry, job: dict[str, Any]) -> State:
        """Run the try on Dask when the deployment names a cluster, else locally."""
        backend = self.dask if execution.deployment.dask else self.local
        return backend.run(execution, job)


#: What a backend setting should look like, for error messages.
_HOW = (
    "give a subclass of kernelflow.deployments.backends.DeploymentBackend as "
    "'module:Class' (or 'module.Class'), e.g. "
    "'kernelflow.deployments.backends:DefaultBackend'"
)


def load_backend_class(value: str | type, setting: str = "the backend") -> type[DeploymentBackend]:
    """The backend class named by ``value`` (``module:Class``, ``module.Class`` or a class).

    Raises
    ------
    ConfigurationError
        ``value`` cannot be imported or is not a :class:`DeploymentBackend`
        subclass; the message says what to write instead.
    """
    found: Any = value
    if isinstance(value, str):
        module_name, sep, name = value.strip().partition(":")
        if not sep:
            module_name, _, name = value.strip().rpartition(".")
        if not module_name or not name:
            raise ConfigurationError(f"{setting}: cannot use {value!r}; {_HOW}")
        try:
            found = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as exc:
            reason = " ".join(str(exc).split())
            raise ConfigurationError(
                f"{setting}: cannot import {value!r} ({reason}); {_HOW}"
            ) from None
    if not (isinstance(found, type) and issubclass(found, DeploymentBackend)):
        raise ConfigurationError(f"{setting}: {value!r} is not a backend class; {_HOW}")
    return found
