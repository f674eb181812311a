"""Nested flows: a child flow receives resolved data and blocks its parent.

Page: docs/v3/concepts/flows.mdx (PrefectHQ/prefect at
201c2ef8835a9c20e31fec21b30293ce892a7828), "Organize flows with subflows and
tasks" and "Considerations when nesting flows".
Scenario: a parent flow submits a task and passes its future to a child flow,
which receives the value (not the future), runs its own tasks and returns; the
parent waits for the child, then goes on. Each flow prints its flow name and
whether it has a parent, from ``prefect.runtime``.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.runtime import flow_run


@task
def fetch() -> list[int]:
    return [3, 1, 2]


@task
def total(values: list[int]) -> int:
    return sum(values)


@flow
def child(values: list[int]) -> int:
    print("child got", type(values).__name__, values)
    print(
        "child flow:", flow_run.flow_name, "| has parent:", flow_run.parent_flow_run_id is not None
    )
    return total(values)


@flow
def parent() -> int:
    print(
        "parent flow:", flow_run.flow_name, "| has parent:", flow_run.parent_flow_run_id is not None
    )
    values = fetch.submit()
    result = child(values)
    print("parent continues after the child:", result)
    return result * 2


if __name__ == "__main__":
    print(parent())
