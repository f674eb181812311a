"""Write a flow and call it like a function.

Page: docs/v3/how-to-guides/workflows/write-and-run.mdx (PrefectHQ/prefect at
cf898f1f4c7f91fee66fe4b14a937817434fe2bf), "Define a workflow".
Scenario: a decorated function returning a greeting is called directly; the
call returns the function's value, and ``return_state=True`` gives the state.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow


@flow
def my_workflow() -> str:
    return "Hello, world!"


if __name__ == "__main__":
    print(my_workflow())
    state = my_workflow(return_state=True)
    print(state.name, state.type.value, state.result())
    print(my_workflow.name)
