"""``kernelflow runs``: list recorded flow runs and show one in detail.

Both commands read the store through :mod:`kernelflow.store.queries`, which
folds pending journal events in first, so a run that just finished (or one
whose process died, now marked Crashed) is already visible.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Group
from rich.table import Table
from rich.text import Text

from kernelflow.cli.render import (
    console,
    format_duration,
    format_timestamp,
    frame_table,
    is_missing,
    state_text,
)

__all__ = ["command"]

#: Columns of ``runs ls``, with their headers.
_LIST_COLUMNS = {
    "id": "id",
    "flow_name": "flow",
    "name": "name",
    "state_name": "state",
    "start_time": "started",
    "duration_s": "duration",
    "task_runs": "tasks",
}

#: Columns of the artifact table in ``runs show``.
_ARTIFACT_COLUMNS = {
    "key": "key",
    "type": "type",
    "summary": "summary",
    "description": "description",
    "created_by": "run",
}

#: Columns of the task-run table in ``runs show``.
_TASK_COLUMNS = {
    "name": "task run",
    "state_name": "state",
    "duration_s": "duration",
    "run_count": "tries",
    "cached": "cached",
    "state_message": "message",
}


def _state_choices() -> list[str]:
    """Prefect's state names (``Failed``, ``TimedOut``...) and state types (``completed``...)."""
    from kernelflow import states

    names = [name for name in states.__all__ if name not in ("State", "StateType")]
    types = [kind.value.lower() for kind in states.StateType]
    return sorted(names) + [t for t in types if t not in {n.lower() for n in names}]


@click.group("runs")
def command() -> None:
    """List recorded flow runs, or show one with its task runs and logs."""


@command.command("ls")
@click.option("--flow", "flow_name", metavar="NAME", help="Only runs of this flow.")
@click.option(
    "--state",
    type=click.Choice(_state_choices(), case_sensitive=False),
    metavar="STATE",
    help="Only runs in this state, by name (Failed, TimedOut) or type (completed); any case.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    default=20,
    show_default=True,
    help="Show at most this many runs, newest first.",
)
@click.option("--deployment", metavar="NAME", help="Only runs of this notebook deployment.")
def list_runs(
    flow_name: str | None, state: str | None, limit: int, deployment: str | None = None
) -> None:
    """List flow runs, newest first."""
    from kernelflow.store.queries import list_flow_runs, sql

    deployment_id = None
    if deployment is not None:
        from kernelflow.deployments import get

        deployment_id = get(deployment).id
    frame = list_flow_runs(flow=flow_name, state=state, limit=limit, deployment=deployment_id)
    out = console()
    if frame.empty:
        out.print(f"No flow runs{_filters_text(flow_name, state)}.", highlight=False)
        return
    counts = sql(
        "SELECT flow_run_id, count(*) AS n FROM task_runs "
        "WHERE list_contains(?, flow_run_id) GROUP BY flow_run_id",
        [list(frame["id"])],
    )
    per_run = dict(zip(counts["flow_run_id"], counts["n"], strict=True))
    frame = frame.assign(task_runs=[int(per_run.get(run_id, 0)) for run_id in frame["id"]])
    title = f"{len(frame)} most recent flow run{'' if len(frame) == 1 else 's'}"
    table = frame_table(
        frame,
        list(_LIST_COLUMNS),
        headers=_LIST_COLUMNS,
        title=title + _filters_text(flow_name, state),
        no_wrap=["id"],
    )
    out.print(table)
    out.print(Text("Details: kernelflow runs show <id or its first characters>", style="dim"))


@command.command("show")
@click.argument("run_id")
@click.option("--no-logs", is_flag=True, help="Leave out the log lines.")
def show_run(run_id: str, no_logs: bool) -> None:
    """Show flow run RUN_ID (or a unique prefix): task runs, subflows, webhooks, artifacts, logs."""
    from kernelflow.store.queries import (
        artifacts_of,
        get_flow_run,
        logs_of,
        subflows_of,
        task_runs_of,
        webhooks_of,
    )

    run = get_flow_run(run_id).iloc[0]
    tasks = task_runs_of(run["id"])
    subflows = subflows_of(run["id"])
    webhooks = webhooks_of(run["id"])
    artifacts = artifacts_of(run["id"])
    out = console()
    out.print(_header(run))
    if not tasks.empty:
        out.print(
            frame_table(
                tasks,
                list(_TASK_COLUMNS),
                headers=_TASK_COLUMNS,
                title=f"Task runs ({len(tasks)})",
            )
        )
    else:
        out.print(Text("No task runs.", style="dim"))
    if not subflows.empty:
        out.print(
            frame_table(
                subflows,
                ["id", "flow_name", "name", "state_name", "duration_s"],
                headers=_LIST_COLUMNS,
                title=f"Subflow runs ({len(subflows)})",
                no_wrap=["id"],
            )
        )
    if not webhooks.empty:
        out.print(
            frame_table(
                webhooks,
                ["url", "outcome", "detail", "timestamp"],
                headers={
                    "url": "webhook",
                    "outcome": "outcome",
                    "detail": "why",
                    "timestamp": "at",
                },
                title=f"Webhooks ({len(webhooks)})",
            )
        )
    if not artifacts.empty:
        out.print(_artifact_table(artifacts, tasks))
    if no_logs:
        return
    logs = logs_of(run["id"])
    if logs.empty:
        out.print(Text("No log lines.", style="dim"))
        return
    names = dict(zip(tasks["id"], tasks["name"], strict=True))
    names[run["id"]] = run["name"]
    out.print(Text(f"Logs ({len(logs)})", style="bold"))
    for line in logs.itertuples(index=False):
        out.print(_log_line(line, names))


def _header(run: Any) -> Group:
    """The flow run's identity, state, timings and parameters as a two-column grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    state = state_text(run["state_name"], run["state_type"])
    if _present(run["state_message"]):
        state.append(f"  {run['state_message']}")
    rows: list[tuple[str, Any]] = [
        ("id", run["id"]),
        ("flow", run["flow_name"]),
        ("state", state),
        ("started", format_timestamp(run["start_time"])),
        ("ended", format_timestamp(run["end_time"])),
        ("duration", format_duration(run["duration_s"])),
        ("tries", run["run_count"]),
        ("parameters", run["parameters"]),
        ("tags", ", ".join(run["tags"]) if _present(run["tags"]) else None),
        ("parent run", run["parent_flow_run_id"]),
        ("deployment", run["deployment_id"]),
        ("process", f"{run['host']} pid {run['pid']}" if _present(run["host"]) else None),
    ]
    for label, value in rows:
        if not _present(value) or value in ("", "{}"):
            continue
        grid.add_row(label, value if isinstance(value, Text) else Text(str(value)))
    title = Text.assemble(("Flow run ", "bold"), (str(run["name"]), "bold cyan"))
    return Group(title, grid, Text(""))


def _artifact_table(artifacts: Any, tasks: Any) -> Table:
    """The run's artifacts: key, type, a one-line summary of the data, who made it."""
    from kernelflow.artifacts import summarize

    names = dict(zip(tasks["id"], tasks["name"], strict=True))
    frame = artifacts.assign(
        summary=[
            summarize(None if is_missing(kind) else kind, None if is_missing(data) else data)
            for kind, data in zip(artifacts["type"], artifacts["data"], strict=True)
        ],
        created_by=[
            "flow" if is_missing(task_run) else names.get(task_run, task_run)
            for task_run in artifacts["task_run_id"]
        ],
    )
    return frame_table(
        frame,
        list(_ARTIFACT_COLUMNS),
        headers=_ARTIFACT_COLUMNS,
        title=f"Artifacts ({len(frame)})",
    )


def _log_line(line: Any, names: dict[str, str]) -> Text:
    when = format_timestamp(line.timestamp)[11:]  # the time of day; the date is in the header
    level = str(line.level_name or "")
    style = {"ERROR": "red", "CRITICAL": "bold red", "WARNING": "yellow", "DEBUG": "dim"}
    text = Text(f"{when} ")
    text.append(f"{level:<8}", style=style.get(level, ""))
    who = names.get(line.run_id, "")
    if who:
        text.append(f" {who}", style="cyan")
    text.append(f" - {line.message}")
    return text


def _filters_text(flow_name: str | None, state: str | None) -> str:
    parts = []
    if flow_name is not None:
        parts.append(f"of flow {flow_name!r}")
    if state is not None:
        parts.append(f"in state {state!r}")
    return (" " + " ".join(parts)) if parts else ""


def _present(value: Any) -> bool:
    return not is_missing(value)
