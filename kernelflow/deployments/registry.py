"""Deploy, update, pause, resume and delete notebook deployments.

:func:`deploy` checks everything a run will need *before* anything is
scheduled — the schedule, the time zone, the notebook, its typed parameters,
the kernel, ``--after`` and a Dask address — and refuses bad input with one
line. It then snapshots the notebook under ``<home>/deployments/<name>/``
(named by its content hash, so later edits change nothing until the next
deploy), records the deployment in the store, and wakes a running scheduler
(:func:`signal_change`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelflow import settings
from kernelflow._durations import check_seconds
from kernelflow.deployments import records
from kernelflow.deployments.models import (
    CATCHUP_POLICIES,
    DEPLOYMENT_OPTIONS,
    Deployment,
    check_count,
    check_name,
)
from kernelflow.deployments.parameters import coerce_parameters, read_notebook
from kernelflow.deployments.schedules import CronSchedule, IntervalSchedule, parse_timezone
from kernelflow.deployments.wake import deployments_dir, signal_change
from kernelflow.errors import ConfigurationError, DeploymentNotFoundError

__all__ = [
    "Planned",
    "delete",
    "deploy",
    "deployments_dir",
    "get",
    "list_deployments",
    "notebook_path",
    "pause",
    "plan",
    "resume",
    "save",
    "signal_change",
    "update",
]


def deploy(
    notebook: str | os.PathLike[str],
    name: str,
    *,
    cron: str | None = None,
    interval: float | None = None,
    timezone: str | None = None,
    parameters: dict[str, Any] | None = None,
    timeout: float | None = None,
    cell_timeout: float | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    catchup: str = "skip",
    max_catchup: int = 10,
    limit: int | None = None,
    grace: float = 60.0,
    kernel: str | None = None,
    tags: Iterable[str] = (),
    paused: bool = False,
    after: str | None = None,
    notify: Iterable[str] = (),
    dask: str | None = None,
    update: bool = False,
) -> Deployment:
    """Deploy ``notebook`` as ``name``; see ``kernelflow deploy --help`` for each option.

    Returns
    -------
    Deployment
        The stored deployment.

    Raises
    ------
    ConfigurationError
        For any bad input (one line, naming what to change); nothing is
        stored then.

    Examples
    --------
    >>> from kernelflow.deployments import deploy
    >>> deploy("report.ipynb", "daily", cron="0 6 * * *",
    ...        timezone="Europe/Berlin", parameters={"n": "5"})  # doctest: +SKIP
    """
    planned = plan(
        notebook,
        name,
        cron=cron,
        interval=interval,
        timezone=timezone,
        parameters=parameters,
        timeout=timeout,
        cell_timeout=cell_timeout,
        retries=retries,
        retry_delay=retry_delay,
        catchup=catchup,
        max_catchup=max_catchup,
        limit=limit,
        grace=grace,
        kernel=kernel,
        tags=tags,
        paused=paused,
        after=after,
        notify=notify,
        dask=dask,
    )
    return save(planned, update=update)


@dataclass(frozen=True)
class Planned:
    """A checked deployment, not yet stored: what :func:`save` stores.

    Attributes
    ----------
    deployment
        The deployment as it will be stored.
    data
        The notebook's bytes when it was checked: the snapshot to write.
    """

    deployment: Deployment
    data: bytes


def plan(
    notebook: str | os.PathLike[str],
    name: str,
    *,
    cron: str | None = None,
    interval: float | None = None,
    timezone: str | None = None,
    parameters: dict[str, Any] | None = None,
    timeout: float | None = None,
    cell_timeout: float | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    catchup: str = "skip",
    max_catchup: int = 10,
    limit: int | None = None,
    grace: float = 60.0,
    kernel: str | None = None,
    tags: Iterable[str] = (),
    paused: bool = False,
    after: str | None = None,
    notify: Iterable[str] = (),
    dask: str | None = None,
    pending: Mapping[str, Deployment] | None = None,
) -> Planned:
    """Check everything :func:`deploy` checks, and write nothing.

    ``kernelflow deploy --all`` plans every entry of ``kernelflow.yaml``
    before it saves any, so a bad entry leaves the store as it was.

    Parameters
    ----------
    notebook, name, cron, ...
        As for :func:`deploy`.
    pending
        Deployments planned but not yet saved, by name: ``after`` may name them.

    Raises
    ------
    ConfigurationError
        As :func:`deploy` does.
    """
    check_name(name)
    if cron is not None and interval is not None:
        raise ConfigurationError("Give --cron or --interval, not both.")
    if timezone is not None and not isinstance(timezone, str):
        raise ConfigurationError(
            f"--timezone must be an IANA name such as 'UTC', got {timezone!r}."
        )
    tz = timezone or "UTC"
    parse_timezone(tz)
    if cron is not None:
        if not isinstance(cron, str):
            raise ConfigurationError(f"--cron must be text such as '0 6 * * *', got {cron!r}.")
        CronSchedule(cron, tz)
    anchor = None
    # Every duration through the one check (finite, in range): a NaN stored here
    # would break every listing and the scheduler later.
    if interval is not None:
        interval = check_seconds(interval, "--interval")
        IntervalSchedule(interval, None, tz)
        anchor = time.time()
    if catchup not in CATCHUP_POLICIES:
        raise ConfigurationError(
            f"--catchup must be one of {', '.join(CATCHUP_POLICIES)}, got {catchup!r}."
        )
    check_count(retries, "--retries", 0)
    check_count(max_catchup, "--max-catchup", 0)
    if limit is not None:
        check_count(limit, "--limit", 1)
    if timeout is not None:
        timeout = check_seconds(timeout, "--timeout")
    if cell_timeout is not None:
        cell_timeout = check_seconds(cell_timeout, "--cell-timeout")
    retry_delay = check_seconds(retry_delay, "--retry-delay", allow_zero=True)
    grace = check_seconds(grace, "--grace", allow_zero=True)
    if parameters is not None and not isinstance(parameters, dict):
        raise ConfigurationError(
            f"parameters must be a mapping of names to values, got {parameters!r}."
        )
    for value, what in ((kernel, "--kernel"), (after, "--after"), (dask, "--dask")):
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{what} must be text, got {value!r}.")
    if not isinstance(paused, bool):
        raise ConfigurationError(f"paused must be true or false, got {paused!r}.")
    tags = _strings(tags, "tags")
    notify = _strings([notify] if isinstance(notify, str) else notify, "--notify")

    source = notebook_path(notebook)
    nb = read_notebook(source)
    where = f"notebook {source.name!r}"
    typed = coerce_parameters(nb, dict(parameters or {}), where)
    kernel_name = kernel or nb.metadata.get("kernelspec", {}).get("name")
    check_kernel(kernel_name)
    urls = [str(u) for u in notify]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"--notify needs an http(s) URL, got {url!r}.")
    if after is not None:
        _check_after(name, after, pending or {})
    if dask is not None:
        check_dask(dask)

    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"Notebook {str(source)!r} cannot be read ({exc.strerror}); check the path."
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    home = settings.paths().home
    deployment = Deployment(
        name=name,
        notebook=str(source),
        snapshot=str((deployments_dir() / name / f"{digest[:16]}.ipynb").relative_to(home)),
        content_hash=digest,
        cron=cron,
        interval=float(interval) if interval is not None else None,
        timezone=tz,
        anchor=anchor,
        parameters=typed,
        timeout=timeout,
        cell_timeout=cell_timeout,
        retries=int(retries),
        retry_delay=float(retry_delay),
        catchup=catchup,
        max_catchup=int(max_catchup),
        limit=limit,
        grace=float(grace),
        kernel=kernel,
        tags=sorted(set(tags)),
        paused=paused,
        after=after,
        notify=urls,
        dask=dask,
    )
    deployment.validate()  # the same check the scheduler applies when it reads it back
    return Planned(deployment, data)


def save(planned: Planned, *, update: bool = False) -> Deployment:
    """Store a :func:`plan`: write its notebook snapshot, record it, wake a scheduler.

    With ``update``, a deployment of that name is replaced (one unchanged but
    for bookkeeping is kept as it is); without, an existing name is an error.
    """
    deployment = planned.deployment
    snapshot = settings.paths().home / deployment.snapshot
    settings.paths().ensure(snapshot.parent)
    if not snapshot.exists():
        # Atomic, under a random temporary name: a scheduler never reads half a snapshot.
        settings.write_private(snapshot, planned.data)
    if update:
        previous = None
        with contextlib.suppress(DeploymentNotFoundError):
            previous = records.get_deployment(deployment.name)
        if previous is not None:
            if previous.interval == deployment.interval:
                deployment.anchor = previous.anchor  # the same interval keeps its slots
            if _same(previous, deployment):
                return previous  # idempotent: nothing changed, nothing rescheduled
    saved = records.save_deployment(deployment, update=update)
    signal_change()
    return saved


_BOOKKEEPING = ("id", "created", "updated")


def _same(old: Deployment, new: Deployment) -> bool:
    """Whether two definitions differ only in bookkeeping fields."""
    a, b = old.definition(), new.definition()
    return all(a.get(k) == b.get(k) for k in a if k not in _BOOKKEEPING)


def _strings(values: Any, what: str) -> list[str]:
    """``values`` as a list of text, or a one-line error (a YAML file may hold anything)."""
    try:
        found = list(values) if not isinstance(values, (str, bytes, dict)) else None
    except TypeError:
        found = None
    if found is None or not all(isinstance(v, str) for v in found):
        raise ConfigurationError(f"{what} must be a list of text values, got {values!r}.")
    return found


def notebook_path(notebook: Any) -> Path:
    """``notebook`` as an absolute path, or a one-line error for what cannot be a path."""
    if not isinstance(notebook, (str, os.PathLike)):
        raise ConfigurationError(f"The notebook must be a path, got {notebook!r}.")
    try:
        return Path(notebook).expanduser().resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a loop of links ...
        raise ConfigurationError(
            f"{str(notebook)[:200]!r} cannot be a notebook path ({exc}); check the path."
        ) from None


def check_kernel(name: str | None) -> None:
    """Refuse a kernel name that is not installed, listing the installed ones."""
    if not name:
        raise ConfigurationError(
            "The notebook names no kernel; pass --kernel NAME (see 'jupyter kernelspec list')."
        )
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(name)
    except NoSuchKernel:
        installed = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        raise ConfigurationError(
            f"Kernel {name!r} is not installed (installed: {installed}); pass --kernel with "
            "one of those, or install it (python -m ipykernel install --user --name NAME)."
        ) from None


def _check_after(name: str, after: str, pending: Mapping[str, Deployment]) -> None:
    known = {d.name: d for d in records.load_deployments()}
    known.update(pending)
    if after not in known:
        raise ConfigurationError(
            f"--after {after!r} names no deployment; deploy it first "
            "('kernelflow deployment ls' lists them)."
        )
    seen = [name]
    current: str | None = after
    while current is not None:
        if current in seen:
            chain = " -> ".join([*seen, current])
            raise ConfigurationError(f"--after {after!r} makes a cycle ({chain}); break it.")
        seen.append(current)
        upstream = known.get(current)
        current = upstream.after if upstream is not None else None


def check_dask(address: str) -> None:
    """Refuse a Dask scheduler address that does not answer within a few seconds."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigurationError(
            "--dask needs dask.distributed; pip install 'kernelflow[dask]'."
        ) from None
    try:
        client = Client(address, timeout=5, set_as_default=False)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ConfigurationError(
            f"No Dask scheduler answers at {address!r} ({reason}); start one or fix --dask."
        ) from None
    client.close()


def list_deployments() -> list[Deployment]:
    """Every deployment, by name."""
    return records.load_deployments()


def get(name: str) -> Deployment:
    """The deployment called ``name`` (:class:`DeploymentNotFoundError` if none)."""
    return records.get_deployment(name)


def update(name: str, **changes: Any) -> Deployment:
    """Change some fields of deployment ``name``, checked as :func:`deploy` checks them.

    Fields not given keep their stored values; giving ``cron`` drops the
    interval and giving ``interval`` drops the cron expression. Without a
    new ``notebook`` the deployment is planned again from its notebook, or
    from its snapshot when that notebook is gone (its recorded path is kept).

    Raises
    ------
    DeploymentNotFoundError
        No deployment has that name.
    ConfigurationError
        An unknown field or a bad value (nothing is changed then).
    """
    unknown = sorted(set(changes) - set(DEPLOYMENT_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"Cannot change {', '.join(unknown)} of a deployment; changeable: "
            f"{', '.join(DEPLOYMENT_OPTIONS)}."
        )
    current = get(name)
    if current.problem is not None:
        raise ConfigurationError(current.problem)
    fields: dict[str, Any] = {k: getattr(current, k) for k in DEPLOYMENT_OPTIONS}
    if changes.get("cron") is not None:
        fields["interval"] = None
    if changes.get("interval") is not None:
        fields["cron"] = None
    fields.update(changes)
    source = fields.pop("notebook")
    keep_path = None
    if "notebook" not in changes and not notebook_path(source).is_file():
        keep_path = current.notebook
        source = current.snapshot_path(settings.paths().home)
    planned = plan(source, name, **fields)
    if keep_path is not None:
        planned.deployment.notebook = keep_path
    return save(planned, update=True)


def pause(name: str) -> Deployment:
    """Stop ``name`` from firing until :func:`resume`."""
    deployment = records.set_paused(name, True)
    signal_change()
    return deployment


def resume(name: str) -> Deployment:
    """Let ``name`` fire again, from now on (slots during the pause are not caught up)."""
    deployment = records.set_paused(name, False)
    signal_change()
    return deployment


def delete(name: str) -> Deployment:
    """Delete ``name`` and its snapshots; its runs stay in the history."""
    deployment = records.delete_deployment(name)
    shutil.rmtree(deployments_dir() / name, ignore_errors=True)
    signal_change()
    return deployment
