"""kernelflow: Jupyter-native workflow orchestration with Prefect's vocabulary.

>>> from kernelflow import flow, task
>>> @task
... def double(x): return 2 * x
>>> @flow
... def pipeline(): return double(21)
>>> pipeline()
42

Every run is recorded in a DuckDB store (``~/.kernelflow``, or
``KERNELFLOW_HOME``); query it with :func:`sql`. Names load on first use, so
``import kernelflow`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from kernelflow._version import __version__

if TYPE_CHECKING:
    from kernelflow import errors, runtime
    from kernelflow.context import tags
    from kernelflow.flow_runs import (
        apause_flow_run,
        aresume_flow_run,
        asuspend_flow_run,
        pause_flow_run,
        resume_flow_run,
        suspend_flow_run,
    )
    from kernelflow.flows import Flow, flow
    from kernelflow.logs import get_run_logger
    from kernelflow.states import State
    from kernelflow.store.queries import sql
    from kernelflow.tasks import Task, task
    from kernelflow.utilities.annotations import allow_failure, unmapped

__all__ = [
    "Flow",
    "State",
    "Task",
    "__version__",
    "allow_failure",
    "apause_flow_run",
    "aresume_flow_run",
    "asuspend_flow_run",
    "errors",
    "flow",
    "get_run_logger",
    "load_ipython_extension",
    "pause_flow_run",
    "resume_flow_run",
    "runtime",
    "sql",
    "suspend_flow_run",
    "tags",
    "task",
    "unload_ipython_extension",
    "unmapped",
]

_LAZY = {
    "Flow": "kernelflow.flows",
    "flow": "kernelflow.flows",
    "Task": "kernelflow.tasks",
    "task": "kernelflow.tasks",
    "State": "kernelflow.states",
    "allow_failure": "kernelflow.utilities.annotations",
    "unmapped": "kernelflow.utilities.annotations",
    "get_run_logger": "kernelflow.logs",
    "sql": "kernelflow.store.queries",
    "tags": "kernelflow.context",
    "runtime": "kernelflow.runtime",  # a module: kernelflow.runtime.flow_run.name, ...
    "errors": "kernelflow.errors",  # a module: every exception kernelflow raises
    "pause_flow_run": "kernelflow.flow_runs",
    "suspend_flow_run": "kernelflow.flow_runs",
    "resume_flow_run": "kernelflow.flow_runs",
    "apause_flow_run": "kernelflow.flow_runs",
    "asuspend_flow_run": "kernelflow.flow_runs",
    "aresume_flow_run": "kernelflow.flow_runs",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kernelflow' has no attribute {name!r}")
    imported = import_module(module)
    value = imported if module == f"{__name__}.{name}" else getattr(imported, name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext kernelflow``: register the ``%%task`` and ``%kf`` magics."""
    from kernelflow.kernel import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext kernelflow``: remove what :func:`load_ipython_extension` added."""
    from kernelflow.kernel import unload

    unload(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    # The JupyterLab panel, built into kernelflow/labextension (see labextension/).
    return [{"src": "labextension", "dest": "kernelflow"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    # The REST API the panel reads and the scheduler: the ExtensionApp KernelflowApp. Only
    # the Jupyter server calls this; the app is built lazily, so jupyter_server is not
    # imported here (jupyter_server calls ``metadata["app"]()`` to get the app instance).
    return [{"module": "kernelflow.extension", "app": _server_extension_app}]


def _server_extension_app() -> Any:
    from kernelflow.extension.app import KernelflowApp

    return KernelflowApp()


def __dir__() -> list[str]:
    return sorted(__all__)
