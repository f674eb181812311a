"""A flow that returns a state it made: ``Completed``/``Failed``, and a custom name.

Page: docs/v3/concepts/flows.mdx (PrefectHQ/prefect at
201c2ef8835a9c20e31fec21b30293ce892a7828), "Return a manual state" and
"Custom named states".
Scenario: a flow submits a failing and a succeeding task and returns
``Completed(message=...)`` because the second succeeded: the flow completes
despite the failed task. A flow with nothing to do returns
``Completed(message=..., name="Skipped")``.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.states import Completed, Failed


@task
def always_fails_task():
    raise ValueError("I fail successfully")


@task
def always_succeeds_task() -> str:
    return "success"


@flow
def always_succeeds_flow():
    always_fails_task.submit()
    y = always_succeeds_task.submit()
    if y.result() == "success":
        return Completed(message="I am happy with this result")
    return Failed(message="How did this happen!?")


@flow
def my_flow(work_to_do: bool):
    if not work_to_do:
        return Completed(message="No work to do", name="Skipped")
    return Completed(message="Work was done")


if __name__ == "__main__":
    for state in (
        always_succeeds_flow(return_state=True),
        my_flow(work_to_do=False, return_state=True),
        my_flow(work_to_do=True, return_state=True),
    ):
        print(state.name, state.type.value, "|", state.message)
