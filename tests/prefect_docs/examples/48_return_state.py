"""``return_state=True`` gives the task run's state instead of its value.

Page: docs/v3/concepts/states.mdx (PrefectHQ/prefect at
11e41ce4fc2995a4e277cff92ad460c8f96bd255), "Task return values".
Scenario: inside a flow, a task called plainly returns 2; called with
``return_state=True`` it returns a completed state whose ``.result()`` is 2;
a failing task's state is failed and its ``.result(raise_on_failure=False)``
is the exception.
Nothing replaced (the failing task is added).
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task


@task
def add_one(x: int) -> int:
    return x + 1


@task
def refuse(x: int) -> int:
    raise ArithmeticError(f"will not add to {x}")


@flow
def my_flow() -> None:
    result = add_one(1)
    print(type(result).__name__, result)
    state = add_one(1, return_state=True)
    print(state.is_completed(), state.result())
    bad = refuse(1, return_state=True)
    error = bad.result(raise_on_failure=False)
    print(bad.is_failed(), type(error).__name__, error)


if __name__ == "__main__":
    my_flow()
