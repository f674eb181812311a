"""A task that returns a ``Failed`` or ``Completed`` state, and a flow that returns them.

Page: docs/v3/concepts/states.mdx (PrefectHQ/prefect at
11e41ce4fc2995a4e277cff92ad460c8f96bd255), "Task return values".
Scenario: a task returns ``Failed(message=...)`` or ``Completed(message=...)``
depending on its argument; the flow calls it both ways (taking the states with
``return_state=True``) and returns both, so the flow run fails. The program
prints the states' names and messages and the flow's final state.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.states import Completed, Failed


@task
def toggle_task(fail: bool):
    if fail:
        return Failed(message="I was instructed to fail.")
    return Completed(message="I was instructed to succeed.")


@flow
def example():
    state_one = toggle_task(fail=True, return_state=True)
    state_two = toggle_task(fail=False, return_state=True)
    for state in (state_one, state_two):
        print(state.name, "|", state.message)
    return state_one, state_two


if __name__ == "__main__":
    final = example(return_state=True)
    print("flow:", final.name, "|", final.message)
