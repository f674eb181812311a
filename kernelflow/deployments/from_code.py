"""Deploying from inside code: ``Flow.serve()``, ``Flow.deploy()`` and ``%kf deploy``.

A flow defined in a notebook (its function lives in ``__main__`` of a
Jupyter kernel) deploys that notebook's saved file: the notebook is what
runs, as ``kernelflow deploy`` would run it. Prefect refuses this
(PrefectHQ/prefect#6568). A flow defined in a module is served as in
Prefect: :func:`serve_flow` blocks and runs it on its schedule in this
process.

Inside a deployment run (the kernel papermill started), all three are
skipped with one log line, so a notebook can carry its own deployment cell.
Re-running such a cell is harmless: an unchanged deployment is left as it
is (``update=True``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shlex
import time
from pathlib import Path
from typing import Any

from kernelflow.errors import ConfigurationError

__all__ = [
    "deploy_flow",
    "kf_deploy",
    "notebook_file",
    "notebook_path",
    "serve_flow",
    "skipped_in_run",
]

logger = logging.getLogger("kernelflow.deployments")


def skipped_in_run(what: str) -> bool:
    """True (after one log line) when this kernel is executing a deployment run."""
    from kernelflow.deployments import in_deployment_run

    run_id = in_deployment_run()
    if run_id is None:
        return False
    from kernelflow.logs import configure

    configure()
    logger.info("%s skipped: this notebook is running as deployment run %s", what, run_id)
    return True


def notebook_path() -> str | None:
    """The notebook this kernel runs, from ``JPY_SESSION_NAME`` (None outside Jupyter).

    Jupyter sets it in the kernels it starts; the kernel session
    (:mod:`kernelflow.kernel.session`) names its run after it too.
    """
    return os.environ.get("JPY_SESSION_NAME") or None


def notebook_file(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The saved notebook of this kernel (``JPY_SESSION_NAME``), or ``explicit``."""
    given = explicit or notebook_path()
    if not given:
        raise ConfigurationError(
            "Cannot tell which notebook this is (no JPY_SESSION_NAME: not a Jupyter kernel); "
            "pass notebook='path/to/it.ipynb'."
        )
    path = Path(given).expanduser()
    if not path.is_file() and Path(path.name).is_file():
        path = Path(path.name)  # a server-relative path; the kernel runs in the notebook's folder
    return path.resolve()


def _defined_in_notebook(flow: Any) -> bool:
    return getattr(flow.fn, "__module__", None) == "__main__" and "ipykernel" in _modules()


def _modules() -> set[str]:
    import sys

    return {name.split(".", 1)[0] for name in sys.modules}


def deploy_flow(
    flow: Any, name: str | None = None, notebook: str | None = None, **options: Any
) -> Any:
    """``flow.deploy(...)``: deploy the notebook that defines ``flow``; None inside a run."""
    if skipped_in_run(f"{flow.name}.deploy()"):
        return None
    if notebook is None and not _defined_in_notebook(flow):
        raise ConfigurationError(
            f"flow '{flow.name}' is defined in a module, not a notebook: use "
            f"{flow.fn.__name__}.serve(...) to run it on a schedule from this process, or "
            "deploy the notebook that calls it (kernelflow deploy NOTEBOOK ...)."
        )
    from kernelflow.deployments.registry import deploy

    deployment = deploy(notebook_file(notebook), name or flow.name, update=True, **options)
    print(
        f"Deployed notebook {Path(deployment.notebook).name!r} as {deployment.name!r} "
        f"({deployment.describe_schedule()}); run 'kernelflow scheduler' to start it."
    )
    return deployment


def serve_flow(
    flow: Any,
    name: str | None = None,
    cron: str | None = None,
    interval: float | None = None,
    timezone: str | None = None,
    parameters: dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    """``flow.serve(...)``: deploy a notebook flow's notebook, or run a module flow on schedule.

    For a flow defined in a module this blocks, as Prefect's ``serve`` does:
    each fire calls the flow in this process (Ctrl-C stops). ``parameters``
    are checked against the flow's signature and annotations first
    (:class:`~kernelflow.errors.ParameterTypeError`, ``TypeError``).
    """
    if skipped_in_run(f"{flow.name}.serve()"):
        return None
    if options.get("notebook") is not None or _defined_in_notebook(flow):
        return deploy_flow(
            flow,
            name,
            cron=cron,
            interval=interval,
            timezone=timezone,
            parameters=parameters,
            **options,
        )
    from kernelflow.deployments.schedules import CronSchedule, IntervalSchedule

    if options:
        raise ConfigurationError(
            f"serve() of a module flow takes name, cron, interval, timezone and parameters; "
            f"got also {sorted(options)}."
        )
    schedule: CronSchedule | IntervalSchedule
    if cron is not None and interval is None:
        schedule = CronSchedule(cron, timezone)
    elif interval is not None and cron is None:
        schedule = IntervalSchedule(interval, None, timezone)
    else:
        raise ConfigurationError("serve() needs cron=... or interval=..., one of them.")
    kwargs = dict(parameters or {})
    # Bad parameters fail here, once, rather than at every fire (each call validates again).
    flow.validate_parameters(flow._bind((), kwargs))
    from kernelflow.logs import configure

    configure()
    logger.info(
        "Serving flow '%s' as %r (%s); Ctrl-C stops",
        flow.name,
        name or flow.name,
        schedule.describe(),
    )
    last = dt.datetime.now(dt.timezone.utc)
    try:
        while True:
            when = schedule.next_after(last)
            time.sleep(max(0.0, when.timestamp() - time.time()))
            last = when
            flow(**kwargs, return_state=True)
    except KeyboardInterrupt:
        logger.info("Stopped serving flow '%s'", flow.name)
    return None


def _seconds(allow_zero: bool = False) -> Any:
    """An argparse type for a duration, through the parser every entry point shares."""
    from kernelflow._durations import check_seconds

    def convert(text: str) -> float:
        try:
            return check_seconds(text, "the value", allow_zero=allow_zero)
        except ConfigurationError as exc:
            raise argparse.ArgumentTypeError(str(exc).replace("the value ", "", 1)) from None

    convert.__name__ = "seconds"
    return convert


def _magic_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%kf deploy", add_help=False, exit_on_error=False)
    parser.add_argument("--name", required=True)
    parser.add_argument("--cron")
    parser.add_argument("--interval", type=_seconds())
    parser.add_argument("--timezone")
    parser.add_argument("-p", "--param", action="append", default=[])
    parser.add_argument("--timeout", type=_seconds())
    parser.add_argument("--cell-timeout", type=_seconds())
    parser.add_argument("--retries", type=int, default=0)
    parser.add_argument("--retry-delay", type=_seconds(allow_zero=True), default=0.0)
    parser.add_argument("--catchup", default="skip")
    parser.add_argument("--max-catchup", type=int, default=10)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--kernel")
    parser.add_argument("--tags", default="")
    parser.add_argument("--paused", action="store_true")
    parser.add_argument("--after")
    parser.add_argument("--notify", action="append", default=[])
    parser.add_argument("--notebook")
    return parser


KF_DEPLOY_USAGE = (
    "%kf deploy --name NAME (--cron EXPR | --interval SECONDS) [--timezone TZ] [-p K=V ...] "
    "[--timeout S] [--retries N] [--catchup skip|latest|all] [--kernel NAME] [--paused]"
)


def kf_deploy(runner: Any, rest: str) -> Any:
    """``%kf deploy ...``: deploy the notebook this kernel runs (its saved file)."""
    from IPython.core.error import UsageError

    if skipped_in_run("%kf deploy"):
        return None
    try:
        args = _magic_parser().parse_args(shlex.split(rest))
    except (argparse.ArgumentError, ValueError, SystemExit) as exc:
        raise UsageError(f"%kf deploy: {exc}\nusage: {KF_DEPLOY_USAGE}") from None
    parameters = {}
    for pair in args.param:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"%kf deploy: -p {pair!r} is not KEY=VALUE\nusage: {KF_DEPLOY_USAGE}")
        parameters[key] = value
    path = getattr(getattr(runner, "session", None), "path", None)
    from kernelflow.deployments.registry import deploy

    deployment = deploy(
        notebook_file(args.notebook or path),
        args.name,
        cron=args.cron,
        interval=args.interval,
        timezone=args.timezone,
        parameters=parameters,
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        retries=args.retries,
        retry_delay=args.retry_delay,
        catchup=args.catchup,
        max_catchup=args.max_catchup,
        limit=args.limit,
        kernel=args.kernel,
        tags=[t for t in args.tags.split(",") if t],
        paused=args.paused,
        after=args.after,
        notify=args.notify,
        update=True,
    )
    print(
        f"Deployed this notebook ({Path(deployment.notebook).name}) as {deployment.name!r}: "
        f"{deployment.describe_schedule()}, parameters {deployment.parameters}. "
        "Saved edits are picked up by running this again."
    )
    return None
