"""``kernelflow deploy``, ``kernelflow deployment ...`` and ``kernelflow scheduler``.

Bad input raises :class:`~kernelflow.errors.ConfigurationError` from
:mod:`kernelflow.deployments`, which the CLI's group prints as one line.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
from pathlib import Path
from typing import Any

import click

from kernelflow.errors import ConfigurationError

__all__ = [
    "SECONDS",
    "SECONDS_OR_ZERO",
    "Seconds",
    "commands",
    "deploy_command",
    "deployment_group",
    "scheduler_command",
]


class Seconds(click.ParamType):
    """A click option type for a duration (``90``, ``2.5``, ``30s``, ``5m``, ``1h30m``).

    Text goes through :func:`kernelflow._durations.parse_duration`, the parser
    every entry point shares, so ``nan``, ``inf`` or ``-1`` are a one-line
    usage error here as they are in ``kernelflow.yaml`` or the Python API.
    """

    name = "seconds"

    def __init__(self, allow_zero: bool = False) -> None:
        self.allow_zero = allow_zero

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        """The option's text as seconds, or a one-line usage error saying what to write."""
        from kernelflow._durations import check_seconds

        if isinstance(value, float):
            return value
        try:
            what = param.opts[0] if param is not None else "the value"
            return check_seconds(str(value), what, allow_zero=self.allow_zero)
        except ConfigurationError as exc:
            self.fail(str(exc), param, ctx)


#: The shared instances: ``click.option("--timeout", type=SECONDS)`` (> 0), and >= 0.
SECONDS = Seconds()
SECONDS_OR_ZERO = Seconds(allow_zero=True)


def _parse_parameters(pairs: tuple[str, ...], params_file: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if params_file is not None:
        import yaml

        try:
            loaded = yaml.safe_load(Path(params_file).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ConfigurationError(
                f"Cannot read --params-file {params_file!r} ({reason})."
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigurationError(
                f"--params-file {params_file!r} must hold a mapping of parameter names to values."
            )
        values.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"-p {pair!r} is not KEY=VALUE; write e.g. -p n=5.")
        values[key.strip()] = value
    return values


@click.command("deploy")
@click.argument("notebook", required=False, type=click.Path(dir_okay=False))
@click.option("--name", help="The deployment's name (letters, digits, - _ .).")
@click.option("--cron", metavar="EXPR", help="Cron expression: 5 fields, or 6 with seconds first.")
@click.option(
    "--interval",
    type=SECONDS,
    metavar="SECONDS",
    help="Run every SECONDS (or 30s, 5m, 1h) instead.",
)
@click.option("--timezone", metavar="TZ", help="IANA time zone of the schedule (default UTC).")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter value, converted to its type in the parameters cell.",
)
@click.option(
    "--params-file",
    type=click.Path(dir_okay=False),
    metavar="FILE.yaml",
    help="Parameter values from a YAML mapping (-p wins).",
)
@click.option(
    "--timeout",
    type=SECONDS,
    metavar="SECONDS",
    help="Whole-notebook limit: the kernel is killed, the run TimedOut.",
)
@click.option("--cell-timeout", type=SECONDS, metavar="SECONDS", help="Per-cell limit (nbclient).")
@click.option("--retries", type=int, default=0, show_default=True, help="Further tries.")
@click.option(
    "--retry-delay", type=SECONDS_OR_ZERO, default=0.0, show_default=True, metavar="SECONDS"
)
@click.option(
    "--catchup",
    type=click.Choice(["skip", "latest", "all"]),
    default="skip",
    show_default=True,
    help="Slots missed while no scheduler ran.",
)
@click.option(
    "--max-catchup",
    type=int,
    default=10,
    show_default=True,
    metavar="N",
    help="With --catchup all: run at most N missed slots.",
)
@click.option("--limit", type=int, metavar="N", help="At most N runs of it at once.")
@click.option(
    "--grace",
    type=SECONDS_OR_ZERO,
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="A run not started this long after its time is Late.",
)
@click.option("--kernel", metavar="NAME", help="Kernelspec to run with (default: the notebook's).")
@click.option("--tags", default="", metavar="a,b", help="Comma-separated tags.")
@click.option("--paused", is_flag=True, help="Deploy without firing until resumed.")
@click.option("--update", is_flag=True, help="Replace an existing deployment of that name.")
@click.option("--after", metavar="OTHER", help="Run when a run of deployment OTHER completes.")
@click.option(
    "--notify",
    multiple=True,
    metavar="URL",
    help="POST a JSON message here on Failed, TimedOut or Crashed.",
)
@click.option("--dask", metavar="ADDRESS", help="Run the notebook on this Dask cluster.")
@click.option(
    "--all",
    "apply_all",
    is_flag=True,
    help="Deploy every entry of the project file (kernelflow.yaml).",
)
@click.option(
    "--file",
    "project_file",
    default="kernelflow.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The project file for --all.",
)
def deploy_command(
    notebook: str | None,
    name: str | None,
    cron: str | None,
    interval: float | None,
    timezone: str | None,
    params: tuple[str, ...],
    params_file: str | None,
    timeout: float | None,
    cell_timeout: float | None,
    retries: int,
    retry_delay: float,
    catchup: str,
    max_catchup: int,
    limit: int | None,
    grace: float,
    kernel: str | None,
    tags: str,
    paused: bool,
    update: bool,
    after: str | None,
    notify: tuple[str, ...],
    dask: str | None,
    apply_all: bool,
    project_file: str,
) -> None:
    """Deploy NOTEBOOK on a schedule (or every deployment of kernelflow.yaml with --all).

    \b
    kernelflow deploy report.ipynb --name daily --cron "0 6 * * *" -p n=5
    kernelflow scheduler
    """
    if apply_all:
        if notebook is not None:
            raise ConfigurationError("Give a NOTEBOOK or --all, not both.")
        from kernelflow.deployments.project import apply_project

        for dep_name, status in apply_project(project_file):
            click.echo(f"{dep_name}: {status}")
        return
    if notebook is None or not name:
        raise ConfigurationError("Give a NOTEBOOK and --name NAME (or --all for kernelflow.yaml).")
    from kernelflow.deployments import deploy

    deployment = deploy(
        notebook,
        name,
        cron=cron,
        interval=interval,
        timezone=timezone,
        parameters=_parse_parameters(params, params_file),
        timeout=timeout,
        cell_timeout=cell_timeout,
        retries=retries,
        retry_delay=retry_delay,
        catchup=catchup,
        max_catchup=max_catchup,
        limit=limit,
        grace=grace,
        kernel=kernel,
        tags=[t.strip() for t in tags.split(",") if t.strip()],
        paused=paused,
        after=after,
        notify=notify,
        dask=dask,
        update=update,
    )
    state = "paused" if deployment.paused else "active"
    click.echo(
        f"Deployed {deployment.name!r} ({deployment.describe_schedule()}, {state}); "
        f"snapshot {deployment.content_hash[:12]}. Start `kernelflow scheduler` to run it."
    )


@click.group("deployment")
def deployment_group() -> None:
    """List, inspect, run, pause, resume and delete notebook deployments."""


def _next_fire(deployment: Any) -> str:
    if deployment.problem is not None or deployment.paused:
        return "-"
    try:
        schedule = deployment.schedule()
        if schedule is None:
            return "-"
        when = schedule.next_after(dt.datetime.now(dt.timezone.utc)).astimezone()
    except ConfigurationError:
        return "-"  # e.g. a schedule whose dates ran out
    return when.strftime("%Y-%m-%d %H:%M:%S")


@deployment_group.command("ls")
def list_command() -> None:
    """List deployments with their schedule, next fire and last run."""
    from rich.table import Table

    from kernelflow.cli.render import console, state_text
    from kernelflow.deployments import list_deployments
    from kernelflow.store.queries import last_deployment_run_rows

    deployments = list_deployments()
    out = console()
    if not deployments:
        out.print("No deployments. Create one with `kernelflow deploy NOTEBOOK --name NAME`.")
        return
    states = {
        r["deployment_id"]: (r["state_name"], r["state_type"]) for r in last_deployment_run_rows()
    }
    table = Table(title=f"{len(deployments)} deployment{'s' * (len(deployments) != 1)}")
    # The problem column appears when a deployment cannot run: it says why and how to fix it.
    problems = any(d.problem for d in deployments)
    headers = ("name", "schedule", "status", "next fire", "last run", "notebook")
    for header in (*headers, "problem") if problems else headers:
        table.add_column(header)
    for d in deployments:
        name, kind = states.get(d.id, (None, None))
        row = [
            d.name,
            d.describe_schedule(),
            "broken" if d.problem else "paused" if d.paused else "active",
            _next_fire(d),
            state_text(name, kind) if name else "-",
            Path(d.notebook).name,
        ]
        table.add_row(*row, *([d.problem or ""] if problems else []))
    out.print(table)


@deployment_group.command("inspect")
@click.argument("name")
def inspect_command(name: str) -> None:
    """Show deployment NAME: its settings, typed parameters and recent runs."""
    from rich.table import Table

    from kernelflow.cli.render import console, frame_table
    from kernelflow.deployments import get
    from kernelflow.deployments.parameters import notebook_parameters, read_snapshot
    from kernelflow.settings import paths
    from kernelflow.store.queries import recent_flow_runs

    d = get(name)
    out = console()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows = [
        ("name", d.name),
        ("problem", d.problem),
        ("id", d.id),
        ("notebook", d.notebook),
        ("snapshot", f"{d.snapshot} (sha256 {d.content_hash[:16]})"),
        ("schedule", d.describe_schedule()),
        ("status", "broken" if d.problem else "paused" if d.paused else "active"),
        ("next fire", _next_fire(d)),
        ("kernel", d.kernel or "(the notebook's)"),
        ("timeout", d.timeout),
        ("cell timeout", d.cell_timeout),
        ("retries", f"{d.retries} (delay {d.retry_delay!r} s)"),
        ("catch-up", f"{d.catchup} (max {d.max_catchup})"),
        ("limit", d.limit),
        ("grace", f"{d.grace!r} s"),
        ("after", d.after),
        ("tags", ", ".join(d.tags) or None),
        ("notify", ", ".join(d.notify) or None),
        ("dask", d.dask),
    ]
    for label, value in rows:
        if value is not None:
            grid.add_row(label, str(value))
    out.print(grid)
    unknown = False
    try:
        declared = notebook_parameters(read_snapshot(d.snapshot_path(paths().home)))
    except ConfigurationError as exc:
        # A broken deployment is still shown (with its runs); the reason is one line.
        out.print(f"Parameters unknown: {exc}")
        declared, unknown = None, True
    params = Table(title="Parameters")
    for header in ("name", "type", "default", "deployed value"):
        params.add_column(header)
    for p in (declared or {}).values():
        value = repr(d.parameters[p.name]) if p.name in d.parameters else ""
        params.add_row(p.name, p.type, repr(p.default) if p.has_default else "", value)
    if declared is not None:
        out.print(params)
    elif not unknown:
        out.print("The notebook has no cell tagged 'parameters'.")
    runs = recent_flow_runs(deployment=d.id, limit=10)
    if len(runs):
        out.print(
            frame_table(
                runs,
                ["id", "name", "state_name", "start_time", "duration_s"],
                headers={"state_name": "state", "start_time": "started", "duration_s": "duration"},
                title="Recent runs",
            )
        )


@deployment_group.command("run")
@click.argument("name")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE")
@click.option(
    "--wait",
    is_flag=True,
    help="Run it here and wait for its final state (default: queue it for the running scheduler).",
)
def run_command(name: str, params: tuple[str, ...], wait: bool) -> None:
    """Run deployment NAME now."""
    from kernelflow.deployments import run_deployment

    run = run_deployment(name, _parse_parameters(params, None), timeout=None if wait else 0)
    if wait:
        from kernelflow.settings import paths
        from kernelflow.store.journals import pending_bytes

        if pending_bytes(paths()) == 0:
            # run_deployment folded the run's events: this process's exit has nothing
            # to fold, which it checks itself (milliseconds), where a detached fold
            # would start a process that loads DuckDB again (~0.4 s of CPU). A value
            # the user set wins.
            os.environ.setdefault("KERNELFLOW_COMPACT_AT_EXIT", "inline")
    else:
        click.echo(f"Queued run {run.id} ({run.name}); a running `kernelflow scheduler` starts it.")
        return
    state = run.state
    click.echo(
        f"Run {run.id} ({run.name}) ended {state.name}"
        f"{': ' + state.message if state.message else ''}"
    )
    if not state.is_completed():
        raise SystemExit(1)


def _simple(action: str, verb: str) -> click.Command:
    @click.command(action)
    @click.argument("name")
    def command(name: str) -> None:
        from kernelflow.deployments import registry

        deployment = getattr(registry, action)(name)
        click.echo(f"{verb} {deployment.name!r}.")

    command.help = f"{verb.capitalize()} deployment NAME."
    return command


for _action, _verb in (("pause", "Paused"), ("resume", "Resumed"), ("delete", "Deleted")):
    deployment_group.add_command(_simple(_action, _verb))


@click.command("scheduler")
@click.option(
    "--for",
    "duration",
    type=SECONDS,
    metavar="SECONDS",
    help="Stop after this long (runs in progress finish first).",
)
@click.option("--once", is_flag=True, help="Do what is due now, wait for it, and exit.")
@click.option(
    "--slots",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="At most this many notebook runs at once.",
)
@click.option(
    "--backend",
    "backend_name",
    metavar="MODULE:CLASS",
    help=(
        "Where runs execute: a kernelflow.deployments.backends.DeploymentBackend subclass "
        "(default: DefaultBackend: on Dask for a deployment deployed with --dask, else locally)."
    ),
)
def scheduler_command(
    duration: float | None, once: bool, slots: int, backend_name: str | None
) -> None:
    """Run every active deployment on its schedule (one active scheduler per store).

    Start as many as you like: one holds the lease, the others stand by and take
    over within a second when it dies. Ctrl-C stops; runs in progress are cancelled.
    """
    from kernelflow.deployments import Scheduler
    from kernelflow.logs import configure

    configure()
    backend = None
    if backend_name is not None:
        from kernelflow.deployments.backends import load_backend_class

        backend = load_backend_class(backend_name, "--backend")()
    scheduler = Scheduler(slots=slots, backend=backend)
    if once:
        try:
            scheduler.run(once=True)
        except Exception:
            raise SystemExit(1) from None  # the scheduler logged why, in one line
        return
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()
        scheduler.stop(cancel_running=True, wait=False)  # the main thread waits below

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        click.echo(f"Scheduler started (pid {os.getpid()}, {slots} slots).")
        scheduler.start()
        # Returns when --for elapses, a signal stops it, or the scheduler's loop dies:
        # a dead loop never leaves this process running and doing nothing.
        scheduler.wait(duration)
        scheduler.stop(cancel_running=stop.is_set())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if scheduler.error is not None:
        raise SystemExit(1)  # the scheduler logged why, in one line


commands = [deploy_command, deployment_group, scheduler_command]
command = deployment_group
