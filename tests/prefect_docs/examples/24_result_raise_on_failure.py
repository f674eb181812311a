"""``future.result(raise_on_failure=False)`` on a failed task.

Page: docs/v3/concepts/task-runners.mdx (PrefectHQ/prefect at
01cbd960cc256f2edd918432d5698875155f1801), "Access results from submitted tasks".
Scenario: a flow submits a task that fails and one that succeeds; with
``raise_on_failure=False`` the failed one's result is its exception, which the
flow recognises through ``future.state.is_failed()``. The failed future is not
returned, so the flow completes.
Nothing replaced (the failing task is added, so the branch the page describes runs).
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task


@task
def my_task() -> str:
    return "I'm a task!"


@task
def my_broken_task() -> str:
    raise RuntimeError("I'm a broken task!")


@flow
def my_flow() -> None:
    for future in (my_task.submit(), my_broken_task.submit()):
        result = future.result(raise_on_failure=False)
        if future.state.is_failed():
            print("failed:", type(result).__name__, result)
        else:
            print("completed:", result)


if __name__ == "__main__":
    state = my_flow(return_state=True)
    print(state.name)
