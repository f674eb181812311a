"""Run names from templates and from functions; task name and description.

Page: docs/v3/how-to-guides/workflows/write-and-run.mdx (PrefectHQ/prefect at
cf898f1f4c7f91fee66fe4b14a937817434fe2bf), "Configure flows and tasks".
Scenario: a task named "My Example Task" with a description names its runs
"hello-{name}-on-{date:%A}"; a copy names them with a function; the flow names
its run from its parameter (``flow_run_name``). Each prints the name it got
from ``prefect.runtime``.
Replaced: "now" with a fixed date (a Thursday), so the names do not change
from day to day.
Re-written for this test from the page's description, not copied.
"""

import datetime

from prefect import flow, task
from prefect.runtime import flow_run, task_run

THURSDAY = datetime.datetime(2024, 1, 4, tzinfo=datetime.timezone.utc)


@task(
    name="My Example Task",
    description="An example task for a tutorial.",
    task_run_name="hello-{name}-on-{date:%A}",
)
def my_task(name, date):
    print(f"task run name: {task_run.name}")


def generate_task_name():
    return f"{THURSDAY:%A}-is-a-lovely-day"


@flow(flow_run_name="names-for-{who}")
def my_flow(who: str):
    print(f"flow run name: {flow_run.name}")
    my_task(name=who, date=THURSDAY)
    my_task.with_options(task_run_name=generate_task_name)(name=who, date=THURSDAY)


if __name__ == "__main__":
    print(my_task.name, "|", my_task.description)
    my_flow("marvin")
