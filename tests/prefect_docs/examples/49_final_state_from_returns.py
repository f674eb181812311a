"""How a flow's final state follows from what it returns: a future, or several states.

Page: docs/v3/concepts/flows.mdx (PrefectHQ/prefect at
201c2ef8835a9c20e31fec21b30293ce892a7828), "Final state determination",
"Return a future" and "Return multiple states or futures".
Scenario: a flow takes a failing task's result with ``raise_on_failure=False``,
submits a succeeding task to wait for it and returns that future: the flow
completes. Another flow returns the states of a failing task, a succeeding task
and a succeeding child flow (``return_state=True``): the flow fails.
Changed: the second flow takes states with ``return_state=True`` (the page's
plain calls would raise at the failing task before returning anything).
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task


@task
def always_fails_task():
    raise ValueError("I fail successfully")


@task
def always_succeeds_task() -> str:
    print("I'm fail safe!")
    return "success"


@flow
def always_succeeds_flow():
    x = always_fails_task.submit().result(raise_on_failure=False)
    y = always_succeeds_task.submit(wait_for=[x])
    return y


@flow
def child_flow() -> str:
    return "bar"


@flow
def always_fails_flow():
    x = always_fails_task(return_state=True)
    y = always_succeeds_task(return_state=True)
    z = child_flow(return_state=True)
    return x, y, z


if __name__ == "__main__":
    first = always_succeeds_flow(return_state=True)
    print("always_succeeds_flow:", first.name, "|", first.message)
    second = always_fails_flow(return_state=True)
    print("always_fails_flow:", second.name, "|", second.message)
