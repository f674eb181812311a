"""The public surface: what ``kernelflow`` exports, documented, and cheap to import."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys

import pytest

import kernelflow

#: Everything ``from kernelflow import *`` gives. A change here is an API change.
TOP_LEVEL = {
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
    "unmapped",
    "unload_ipython_extension",
}

#: The modules a user imports (Prefect's module names, with ``prefect`` -> ``kernelflow``).
PUBLIC_MODULES = [
    "kernelflow",
    "kernelflow.flows",
    "kernelflow.tasks",
    "kernelflow.futures",
    "kernelflow.states",
    "kernelflow.cache_policies",
    "kernelflow.testing",
    "kernelflow.testing.utilities",
    "kernelflow.runtime",
    "kernelflow.runtime.flow_run",
    "kernelflow.runtime.task_run",
    "kernelflow.runtime.deployment",
    "kernelflow.logging",
    "kernelflow.logging.loggers",
    "kernelflow.exceptions",
    "kernelflow.utilities.annotations",
    "kernelflow.flow_runs",
    "kernelflow.input",
    "kernelflow.input.run_input",
    "kernelflow.artifacts",
    "kernelflow.variables",
    "kernelflow.blocks",
    "kernelflow.blocks.system",
    "kernelflow.events",
    "kernelflow.transactions",
    "kernelflow.errors",
]

#: Names a Prefect user imports from these modules; each must exist under the same name.
PREFECT_NAMES = {
    "kernelflow": [
        "flow",
        "task",
        "Flow",
        "Task",
        "State",
        "allow_failure",
        "unmapped",
        "get_run_logger",
        "tags",
        "runtime",
        "pause_flow_run",
        "suspend_flow_run",
        "resume_flow_run",
        "apause_flow_run",
        "asuspend_flow_run",
        "aresume_flow_run",
    ],
    "kernelflow.futures": ["wait", "as_completed", "PrefectFuture", "PrefectFutureList"],
    "kernelflow.tasks": ["task_input_hash", "exponential_backoff", "Task", "task"],
    "kernelflow.states": [
        "State",
        "StateType",
        "Completed",
        "Failed",
        "Crashed",
        "Cached",
        "Pending",
        "Running",
        "Retrying",
        "AwaitingRetry",
        "TimedOut",
        "Scheduled",
        "Late",
        "Paused",
        "Suspended",
        "Cancelling",
        "Cancelled",
    ],
    "kernelflow.cache_policies": [
        "INPUTS",
        "TASK_SOURCE",
        "NO_CACHE",
        "NONE",
        "RUN_ID",
        "FLOW_PARAMETERS",
        "DEFAULT",
        "CachePolicy",
    ],
    "kernelflow.testing.utilities": ["kernelflow_test_harness", "prefect_test_harness"],
    "kernelflow.flows": ["Flow", "flow"],
    "kernelflow.runtime": ["flow_run", "task_run", "deployment"],
    "kernelflow.runtime.flow_run": [
        "id",
        "name",
        "flow_name",
        "flow_version",
        "parameters",
        "tags",
        "run_count",
        "scheduled_start_time",
        "parent_flow_run_id",
        "parent_deployment_id",
    ],
    "kernelflow.runtime.task_run": ["id", "name", "task_name", "parameters", "tags", "run_count"],
    "kernelflow.runtime.deployment": ["id", "name", "version", "parameters", "flow_run_id"],
    "kernelflow.logging": ["get_run_logger", "get_logger", "disable_run_logger"],
    "kernelflow.logging.loggers": [
        "get_run_logger",
        "get_logger",
        "disable_run_logger",
        "flow_run_logger",
        "task_run_logger",
    ],
    "kernelflow.exceptions": [
        "PrefectException",
        "CrashedRun",
        "FailedRun",
        "CancelledRun",
        "UnfinishedRun",
        "MissingResult",
        "ParameterTypeError",
        "UpstreamTaskError",
        "MissingContextError",
        "MappingLengthMismatch",
        "MappingMissingIterable",
        "ConfigurationError",
        "FlowPauseTimeout",
        "NotPausedError",
    ],
    "kernelflow.utilities.annotations": ["quote", "opaque", "allow_failure", "unmapped"],
    "kernelflow.flow_runs": [
        "pause_flow_run",
        "suspend_flow_run",
        "resume_flow_run",
        "apause_flow_run",
        "asuspend_flow_run",
        "aresume_flow_run",
    ],
    "kernelflow.input": ["RunInput"],
    "kernelflow.input.run_input": ["RunInput", "AutomaticRunInput", "run_input_subclass_from_type"],
    "kernelflow.artifacts": [
        "Artifact",
        "create_markdown_artifact",
        "create_table_artifact",
        "create_link_artifact",
        "create_progress_artifact",
        "update_progress_artifact",
        "acreate_markdown_artifact",
        "acreate_table_artifact",
        "acreate_link_artifact",
        "acreate_progress_artifact",
        "aupdate_progress_artifact",
    ],
    "kernelflow.variables": ["Variable"],
    "kernelflow.blocks.system": ["Secret"],
    "kernelflow.events": ["emit_event", "Event", "Resource", "RelatedResource"],
    "kernelflow.transactions": [
        "transaction",
        "Transaction",
        "get_transaction",
        "IsolationLevel",
        "CommitMode",
        "TransactionState",
    ],
}

#: Modules whose names are values read from the current run (``runtime.flow_run.name``):
#: each is documented in its module's table, not by a docstring of its own.
VALUE_MODULES = {
    "kernelflow.runtime.flow_run",
    "kernelflow.runtime.task_run",
    "kernelflow.runtime.deployment",
}

HEAVY = ["duckdb", "pandas", "pyarrow", "ipywidgets", "papermill", "jupyter_server"]


def test_all_is_exactly_the_public_surface():
    assert set(kernelflow.__all__) == TOP_LEVEL
    assert len(kernelflow.__all__) == len(TOP_LEVEL), "a name is listed twice"
    assert dir(kernelflow) == sorted(TOP_LEVEL)


def test_every_exported_name_resolves():
    for name in kernelflow.__all__:
        assert getattr(kernelflow, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kernelflow.nope  # noqa: B018


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_module_exports_resolve(module_name):
    module = importlib.import_module(module_name)
    assert module.__doc__, f"{module_name} has no module docstring"
    exported = module.__all__
    assert len(set(exported)) == len(exported), f"{module_name}.__all__ lists a name twice"
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name!r}"
    for name in PREFECT_NAMES.get(module_name, []):
        assert name in exported, f"{module_name} does not export Prefect's {name!r}"


def test_errors_module_exports_every_exception_it_defines():
    # kernelflow.errors is how users catch what kernelflow raises: every exception class
    # defined there is in its __all__, and each is a KernelflowError (or, for CacheWarning,
    # a warning category), so one ``except KernelflowError`` catches them all.
    from kernelflow import errors

    assert kernelflow.errors is errors
    defined = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == errors.__name__
    }
    assert defined == set(errors.__all__)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), (errors.KernelflowError, Warning)), name


def _undocumented(owner: str, obj: object) -> list[str]:
    if isinstance(obj, str):  # __version__
        return []
    missing = [] if inspect.getdoc(obj) else [owner]
    if inspect.isclass(obj):
        for attr, member in vars(obj).items():
            if attr.startswith("_"):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if isinstance(member, property):
                member = member.fget
            if inspect.isfunction(member) and not inspect.getdoc(member):
                missing.append(f"{owner}.{attr}")
    return missing


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_object_has_a_docstring(module_name):
    module = importlib.import_module(module_name)
    if module_name in VALUE_MODULES:
        missing = [name for name in module.__all__ if f"``{name}``" not in module.__doc__]
        assert not missing, f"not in {module_name}'s table: {missing}"
        return
    missing = []
    for name in module.__all__:
        missing += _undocumented(f"{module_name}.{name}", getattr(module, name))
    assert not missing, f"no docstring: {missing}"


def _modules_loaded_by(code: str) -> list[str]:
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_kernelflow_loads_nothing_heavy():
    assert _modules_loaded_by("import kernelflow") == []


def test_decorating_and_running_a_flow_loads_nothing_heavy(tmp_path):
    # The hot path (a flow with a task, futures, logging) stays free of DuckDB and pandas:
    # runs are journalled and only queries open the database.
    code = f"""
import os
os.environ["KERNELFLOW_HOME"] = {str(tmp_path / "home")!r}
from kernelflow import flow, task, allow_failure, unmapped, get_run_logger
from kernelflow.futures import wait, as_completed
from kernelflow.states import Completed, Failed
from kernelflow.tasks import task_input_hash, exponential_backoff
from kernelflow.cache_policies import INPUTS, TASK_SOURCE

@task(retries=1)
def double(x):
    get_run_logger().info("doubling %s", x)
    return 2 * x

@flow(log_prints=True)
def pipeline():
    futures = double.map([1, 2, 3])
    wait(futures)
    print("done")
    return double(futures[0].result())

assert pipeline() == 4
"""
    assert _modules_loaded_by(code) == []


def test_prefect_parity_names_load_nothing_heavy(tmp_path):
    code = f"""
import os
os.environ["KERNELFLOW_HOME"] = {str(tmp_path / "home")!r}
from kernelflow import flow, runtime, tags, task
from kernelflow.exceptions import CrashedRun
from kernelflow.logging import disable_run_logger, get_run_logger
from kernelflow.logging.loggers import task_run_logger
from kernelflow.utilities.annotations import opaque, quote

@task
def named(data):
    get_run_logger().info("in %s", runtime.task_run.name)
    return runtime.flow_run.name, len(data)

@flow(flow_run_name="light")
def pipeline():
    with tags("a"):
        return named(quote({{1: 2}}))

assert pipeline() == ("light", 1)
"""
    assert _modules_loaded_by(code) == []


def test_transactions_load_nothing_heavy(tmp_path):
    # A transaction (keyed, SERIALIZABLE: a lock and a record) with hooks stays on the hot path's
    # imports: records go through the cache index, never the database.
    code = f"""
import os
os.environ["KERNELFLOW_HOME"] = {str(tmp_path / "home")!r}
from kernelflow import flow, task
from kernelflow.transactions import IsolationLevel, get_transaction, transaction

@task
def named(x):
    get_transaction().set("seen", x)
    return x

@named.on_commit
def committed(txn):
    assert txn.get("seen") == 1

@flow
def pipeline():
    with transaction(key="k", isolation_level=IsolationLevel.SERIALIZABLE):
        return named(1)

assert pipeline() == 1
"""
    assert _modules_loaded_by(code) == []
