"""What the REST write endpoints do: deploy, change, run, cancel, rerun, resume, preview.

Each function takes plain values (the request's JSON body already parsed,
the server's root directory, this server's scheduler or None), does the
blocking work, and returns the JSON-ready answer. Bad input raises one of
our errors with one line (mapped to 400 / 404 / 409 by
:data:`kernelflow.extension.handlers.ERROR_STATUS`); nothing here answers
HTTP itself. Deployments change through :mod:`kernelflow.deployments.registry`
and runs through the engine's state transitions (via the scheduler, the
deployment run's execution or :func:`kernelflow.flow_runs.resume_flow_run`).

Notebook paths in requests are relative to the server's root directory and
refused when they lead outside it. Executed notebooks and their HTML copies
are read from the store's ``outputs`` folder, wherever the store is.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernelflow.errors import ConfigurationError, KernelflowError
from kernelflow.extension.run_files import NotebookNotFoundError, _run_row

if TYPE_CHECKING:
    from kernelflow.deployments.scheduler.loop import Scheduler

__all__ = [
    "ActionConflictError",
    "cancel_run",
    "create_deployment",
    "delete_deployment",
    "notebook_parameters",
    "parse_body",
    "rerun",
    "resolve_notebook",
    "resume_run",
    "run_now",
    "schedule_preview",
    "scheduler_status",
    "update_deployment",
]


class ActionConflictError(KernelflowError):
    """The run or deployment is in a state that does not allow this action (a 409)."""


#: Final state types: a run in one of them cannot be cancelled.
_FINAL_TYPES = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")


# --- request bodies --------------------------------------------------------------------------
def parse_body(raw: bytes | None) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); anything else is a 400."""
    if not raw or not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ConfigurationError(
            'The request body is not JSON; send a JSON object such as {"name": "daily"}.'
        ) from None
    if not isinstance(body, dict):
        raise ConfigurationError(
            f"The request body must be a JSON object, got {type(body).__name__}."
        )
    return body


def _only(body: dict[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(str(k) for k in body if k not in allowed)
    if unknown:
        raise ConfigurationError(
            f"{what} takes no {', '.join(repr(k) for k in unknown)}; it takes {', '.join(allowed)}."
        )


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"{key!r} must be text, got {value!r}.")
    return value


def _duration(value: Any, key: str) -> float | str | None:
    """A number of seconds or text such as ``"10m"`` (checked later by the registry)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigurationError(f"{key!r} must be seconds or text such as '10m', got {value!r}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigurationError(f"{key!r} must be a finite number of seconds, got {value!r}.")
    return value


def _seconds(value: Any, key: str) -> float | None:
    from kernelflow._durations import check_seconds

    value = _duration(value, key)
    return None if value is None else check_seconds(value, key)


# --- the scheduler ---------------------------------------------------------------------------
def scheduler_status(scheduler: Scheduler | None) -> dict[str, Any]:
    """``GET scheduler``: who holds the store's scheduler lease, and a warning when nobody does."""
    from kernelflow.deployments.scheduler.lease import lease_holder

    home = scheduler.home.home if scheduler is not None else None
    holder = lease_holder(home)
    here = scheduler is not None and scheduler.active.is_set()
    warning = None
    if holder is None:
        warning = (
            "No scheduler runs for this store: deployments will not fire. Start Jupyter with "
            "KernelflowApp.run_scheduler enabled (the default), or run 'kernelflow scheduler'."
        )
        if scheduler is not None and scheduler.error is not None:
            warning = f"This server's scheduler stopped: {scheduler.error}"
    return {"here": here, "holder": holder, "warning": warning}


def schedule_preview(body: dict[str, Any]) -> dict[str, Any]:
    """``POST schedule/preview``: the schedule in words and its next fire times."""
    from kernelflow.deployments.schedules import (
        CronSchedule,
        IntervalSchedule,
        describe_plainly,
        parse_timezone,
        preview,
    )

    _only(body, ("cron", "interval", "timezone", "count"), "A schedule preview")
    cron = _text(body, "cron")
    timezone = _text(body, "timezone") or "UTC"
    parse_timezone(timezone)
    count = body.get("count", 5)
    if isinstance(count, bool) or not isinstance(count, int):
        raise ConfigurationError(f"'count' must be a whole number from 1 to 20, got {count!r}.")
    interval = body.get("interval")
    if (cron is None) == (interval is None):
        raise ConfigurationError("Give 'cron' or 'interval' (not both) to preview a schedule.")
    schedule = (
        CronSchedule(cron, timezone)
        if cron is not None
        else IntervalSchedule(_seconds(interval, "interval") or 0.0, None, timezone)
    )
    if isinstance(schedule, IntervalSchedule):
        import datetime as dt

        # A new interval deployment is anchored when it is deployed: now.
        schedule.anchor = dt.datetime.now(dt.timezone.utc)
    times = preview(schedule, count)
    return {
        "description": describe_plainly(schedule),
        "timezone": timezone,
        "next": [t.isoformat() for t in times],
    }


# --- notebooks -------------------------------------------------------------------------------
def resolve_notebook(root_dir: str | Path, path: Any, must_exist: bool = True) -> Path:
    """``path`` (relative to the server's root) as an absolute path inside the root.

    Raises
    ------
    ConfigurationError
        The path is not text, leads outside the root, or is not a ``.ipynb`` file.
    NotebookNotFoundError
        No file is there (with ``must_exist``).
    """
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise ConfigurationError(
            f"Give the notebook's path relative to the server's root, got {path!r}."
        )
    root = Path(root_dir).expanduser().resolve()
    try:
        found = (root / path.lstrip("/")).resolve()
    except (OSError, RuntimeError, ValueError):
        raise ConfigurationError(f"{path[:200]!r} cannot be a notebook path.") from None
    if found != root and root not in found.parents:
        raise ConfigurationError(
            f"{path[:200]!r} is outside the server's root directory; give a path inside it."
        )
    if found.suffix != ".ipynb":
        raise ConfigurationError(f"{path[:200]!r} is not a notebook (.ipynb); give a notebook.")
    if must_exist and not found.is_file():
        raise NotebookNotFoundError(f"No notebook at {path[:200]!r}; check the path.")
    return found


def notebook_parameters(root_dir: str | Path, path: Any) -> dict[str, Any]:
    """``GET notebooks/parameters``: the notebook's ``parameters`` cell, typed."""
    from kernelflow.deployments.parameters import notebook_parameters as declared_in
    from kernelflow.deployments.parameters import read_notebook

    source = resolve_notebook(root_dir, path)
    found = declared_in(read_notebook(source)) or {}
    parameters = []
    for param in found.values():
        default = param.default
        try:
            json.dumps(default)
        except (TypeError, ValueError):
            default = repr(default)
        parameters.append(
            {
                "name": param.name,
                "type": param.type,
                "default": default,
                "default_text": repr(param.default) if param.has_default else "",
            }
        )
    return {"path": path, "parameters": parameters}


# --- deployments -----------------------------------------------------------------------------
def _deployment_payload(name: str) -> dict[str, Any]:
    """The deployment as an item of ``GET deployments`` shows it."""
    from kernelflow.extension.deployment_payloads import deployments_overview

    for item in deployments_overview()["deployments"]:
        if item["name"] == name:
            return item
    from kernelflow.errors import DeploymentNotFoundError

    raise DeploymentNotFoundError(f"No deployment is called {name!r}.")


def _fields(root_dir: str | Path, body: dict[str, Any]) -> dict[str, Any]:
    """The registry's keyword arguments for the deployment fields in ``body``."""
    fields: dict[str, Any] = {}
    if "notebook" in body:
        try:
            fields["notebook"] = resolve_notebook(root_dir, body["notebook"])
        except NotebookNotFoundError as exc:  # in a request body: bad input, a 400
            raise ConfigurationError(str(exc)) from None
    for key in ("cron", "timezone", "catchup"):
        if key in body:
            fields[key] = _text(body, key)
    for key in ("interval", "timeout"):
        if key in body:
            fields[key] = _duration(body[key], key)
    if "retry_delay" in body:
        fields["retry_delay"] = _duration(body["retry_delay"], "retry_delay") or 0.0
    if "retries" in body:
        retries = body["retries"]
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise ConfigurationError(f"'retries' must be a whole number >= 0, got {retries!r}.")
        fields["retries"] = retries
    if "parameters" in body:
        parameters = body["parameters"]
        if parameters is not None and not isinstance(parameters, dict):
            raise ConfigurationError(
                f"'parameters' must be an object of names to values, got {parameters!r}."
            )
        fields["parameters"] = parameters or {}
    if "notify" in body:
        notify = body["notify"]
        if notify is None:
            notify = []
        if not isinstance(notify, list) or not all(isinstance(u, str) for u in notify):
            raise ConfigurationError(f"'notify' must be a list of URLs, got {notify!r}.")
        fields["notify"] = notify
    if "paused" in body:
        if not isinstance(body["paused"], bool):
            raise ConfigurationError(f"'paused' must be true or false, got {body['paused']!r}.")
        fields["paused"] = body["paused"]
    return fields


def create_deployment(root_dir: str | Path, body: dict[str, Any]) -> dict[str, Any]:
    """``POST deployments``: deploy a notebook under the root; 409 if the name exists."""
    from kernelflow.deployments import registry
    from kernelflow.deployments.models import API_DEPLOYMENT_OPTIONS, check_name
    from kernelflow.errors import DeploymentNotFoundError

    _only(body, ("name", *API_DEPLOYMENT_OPTIONS), "A new deployment")
    name = body.get("name")
    if not isinstance(name, str):
        raise ConfigurationError(f"Give the deployment a 'name' (text), got {name!r}.")
    check_name(name)
    if "notebook" not in body:
        raise ConfigurationError("Give the 'notebook' to deploy, relative to the server's root.")
    fields = _fields(root_dir, body)
    notebook = fields.pop("notebook")
    try:
        registry.get(name)
    except DeploymentNotFoundError:
        pass
    else:
        raise ActionConflictError(
            f"A deployment is called {name!r} already; choose another name, or edit that one."
        )
    registry.save(registry.plan(notebook, name, **fields))
    return _deployment_payload(name)


def update_deployment(root_dir: str | Path, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """``PATCH deployments/<name>``: change the fields given (``paused`` pauses or resumes)."""
    from kernelflow.deployments import registry
    from kernelflow.deployments.models import API_DEPLOYMENT_OPTIONS

    _only(body, API_DEPLOYMENT_OPTIONS, "A deployment change")
    fields = _fields(root_dir, body)
    registry.get(name)  # 404 before anything else
    paused = fields.pop("paused", None)
    if fields:
        registry.update(name, **fields)
    if paused is True:
        registry.pause(name)
    elif paused is False:
        registry.resume(name)
    return _deployment_payload(name)


def delete_deployment(name: str) -> dict[str, Any]:
    """``DELETE deployments/<name>``: delete it and its snapshots; its runs stay."""
    from kernelflow.deployments import registry

    registry.delete(name)
    return {"deleted": name}


# --- runs --------------------------------------------------------------------------------------
def run_now(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """``POST deployments/<name>/runs``: queue a run for the lease holder (it starts at once).

    The run is claimed and recorded Scheduled here, then the FIFO wakes the
    scheduler holding the lease (this server's own, or another process).
    """
    _only(body, ("parameters",), "A run of a deployment")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ConfigurationError(
            f"'parameters' must be an object of names to values, got {parameters!r}."
        )
    return _queue_run(name, parameters)


def _queue_run(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    from kernelflow.deployments import run_deployment

    try:
        run = run_deployment(name, parameters=parameters, timeout=0)
    except KernelflowError as exc:
        if type(exc) is KernelflowError:  # the fire was claimed by another process
            raise ActionConflictError(str(exc)) from None
        raise
    return {"run_id": run.id, "name": run.name, "state": run.state.name}


def _deployment_of(row: dict[str, Any], action: str) -> Any:
    from kernelflow.deployments import records

    dep_id = row.get("deployment_id")
    if not isinstance(dep_id, str) or not dep_id:
        raise ActionConflictError(
            f"Run {row['id']} is not a deployment run; only deployment runs can be {action} "
            "here (interrupt the kernel of a notebook run)."
        )
    for deployment in records.load_deployments():
        if deployment.id == dep_id:
            return deployment
    return None


def cancel_run(run_id: str, scheduler: Scheduler | None) -> dict[str, Any]:
    """``POST runs/<id>/cancel``: Cancelling, then Cancelled with the kernel killed.

    This server's scheduler cancels a run it executes or queues directly. A run
    nobody has started is claimed here (so nobody starts it) and Cancelled.
    Otherwise the lease holder is asked (:func:`request_cancel`).
    """
    from kernelflow.deployments import records
    from kernelflow.deployments.scheduler.slots import request_cancel

    row = _run_row(run_id)
    run_id = row["id"]
    _deployment_of(row, "cancelled")
    if row.get("state_type") in _FINAL_TYPES:
        raise ActionConflictError(
            f"Run {run_id} is already {row.get('state_name')}; there is nothing to cancel."
        )
    if scheduler is not None and scheduler.cancel(run_id):
        return {"run_id": run_id, "state": "Cancelling"}
    if row.get("state_type") == "SCHEDULED" or row.get("state_name") == "AwaitingRetry":
        # Not running: claiming its next try keeps every scheduler from starting it.
        if records.claim_attempt(run_id, _count(row.get("run_count")) + 1):
            _cancel_unstarted(row)
            return {"run_id": run_id, "state": "Cancelled"}
    request_cancel(run_id)
    return {"run_id": run_id, "state": "Cancelling"}


def _count(value: Any) -> int:
    """A count column's value (None or NaN: 0)."""
    try:
        return 0 if value is None or value != value else int(value)
    except (TypeError, ValueError):
        return 0


def _cancel_unstarted(row: dict[str, Any]) -> None:
    """Record Cancelled for a run whose next try this process claimed (so nobody starts it)."""
    from kernelflow.engine import set_state
    from kernelflow.runs import FlowRun
    from kernelflow.states import Cancelled

    run = FlowRun(
        row.get("flow_name") or "deployment",
        row.get("name") or "",
        {},
        [],
        deployment_id=row.get("deployment_id"),
    )
    run.id = row["id"]
    run.run_count = _count(row.get("run_count"))
    set_state("flow", run, Cancelled(message="Cancelled on request before it started"))


def rerun(run_id: str) -> dict[str, Any]:
    """``POST runs/<id>/rerun``: a new run of the same deployment with the same parameters."""
    from kernelflow.deployments.models import UPSTREAM_PARAMETER
    from kernelflow.store.fires import fire_parameters

    row = _run_row(run_id)
    deployment = _deployment_of(row, "rerun")
    if deployment is None:
        raise ActionConflictError(
            f"The deployment of run {row['id']} was deleted; deploy the notebook again."
        )
    parameters = dict(fire_parameters(row["id"]) or {})
    parameters.pop(UPSTREAM_PARAMETER, None)  # a rerun is not triggered by that upstream run
    answer = _queue_run(deployment.name, parameters)
    answer["rerun_of"] = row["id"]
    answer["deployment"] = deployment.name
    return answer


def resume_run(run_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """``POST runs/<id>/resume``: resume a flow run paused awaiting input."""
    from kernelflow.flow_runs import resume_flow_run

    _only(body, ("input",), "Resuming a run")
    run_input = body.get("input")
    if run_input is not None and not isinstance(run_input, dict):
        raise ConfigurationError(
            f"'input' must be an object of field names to values, got {run_input!r}."
        )
    row = _run_row(run_id)
    resume_flow_run(row["id"], run_input)
    return {"run_id": row["id"], "state": "Running"}
