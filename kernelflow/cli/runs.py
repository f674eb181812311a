"""``kernelflow runs``: list recorded flow runs and show one in detail.

Both commands read the store through the row queries of
:mod:`kernelflow.store.queries` (no pandas on this path: a fresh ``kernelflow
runs ls`` answers in a fraction of a second). A small backlog of journal
events is folded in first, so a run that just finished (or one whose process
died, now marked Crashed) is already visible; a big one is folded by a
separate process while the command answers, with one line saying how far
behind the answer is.
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
    from kernelflow.store.queries import recent_flow_runs

    deployment_id = None
    if deployment is not None:
        from kernelflow.deployments import get

        deployment_id = get(deployment).id
    runs = recent_flow_runs(flow=flow_name, state=state, limit=limit, deployment=deployment_id)
    out = console()
    if not runs:
        out.print(f"No flow runs{_filters_text(flow_name, state)}.", highlight=False)
        return
    title = f"{len(runs)} most recent flow run{'' if len(runs) == 1 else 's'}"
    table = frame_table(
        runs,
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
        artifact_rows,
        find_flow_run,
        log_rows,
        session,
        subflow_rows,
        task_run_rows,
        webhook_rows,
    )

    with session():  # one connection for every question of the page
        run = find_flow_run(run_id)
        tasks = task_run_rows(run["id"])
        subflows = subflow_rows(run["id"])
        webhooks = webhook_rows(run["id"])
        artifacts = artifact_rows(run["id"])
        logs = [] if no_logs else log_rows(run["id"])
    out = console()
    out.print(_header(run))
    if tasks:
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
    if subflows:
        out.print(
            frame_table(
                subflows,
                ["id", "flow_name", "name", "state_name", "duration_s"],
                headers=_LIST_COLUMNS,
                title=f"Subflow runs ({len(subflows)})",
                no_wrap=["id"],
            )
        )
    if webhooks:
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
    if artifacts:
        out.print(_artifact_table(artifacts, tasks))
    if no_logs:
        return
    if not logs:
        out.print(Text("No log lines.", style="dim"))
        return
    names = {task["id"]: task["name"] for task in tasks}
    names[run["id"]] = run["name"]
    out.print(Text(f"Logs ({len(logs)})", style="bold"))
    for line in logs:
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


def _artifact_table(artifacts: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> Table:
    """The run's artifacts: key, type, a one-line summary of the data, who made it."""
    from kernelflow.artifacts import summarize

    names = {task["id"]: task["name"] for task in tasks}
    rows = [
        {
            **artifact,
            "summary": summarize(artifact["type"], artifact["data"]),
            "created_by": "flow"
            if artifact["task_run_id"] is None
            else names.get(artifact["task_run_id"], artifact["task_run_id"]),
        }
        for artifact in artifacts
    ]
    return frame_table(
        rows,
        list(_ARTIFACT_COLUMNS),
        headers=_ARTIFACT_COLUMNS,
        title=f"Artifacts ({len(rows)})",
    )


def _log_line(line: dict[str, Any], names: dict[str, str]) -> Text:
    when = format_timestamp(line["timestamp"])[11:]  # the time of day; the date is in the header
    level = str(line["level_name"] or "")
    style = {"ERROR": "red", "CRITICAL": "bold red", "WARNING": "yellow", "DEBUG": "dim"}
    text = Text(f"{when} ")
    text.append(f"{level:<8}", style=style.get(level, ""))
    who = names.get(line["run_id"], "")
    if who:
        text.append(f" {who}", style="cyan")
    text.append(f" - {line['message']}")
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
