"""Test a task's function without the engine: ``.fn()`` and ``disable_run_logger``.

Page: docs/v3/how-to-guides/workflows/test-workflows.mdx (PrefectHQ/prefect at
0e38662d6067afd9829796bb0ef12a5d803bd969), "Test the underlying function
without the engine" and "MissingContextError from get_run_logger".
Scenario: ``my_favorite_task.fn()`` returns 42 with no run; a task that logs
through ``get_run_logger`` raises ``MissingContextError`` when its ``.fn()`` is
called outside a run, and works inside ``disable_run_logger()``.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.exceptions import MissingContextError
from prefect.logging import disable_run_logger, get_run_logger


@task
def my_favorite_task() -> int:
    return 42


@task
def chatty_task() -> int:
    get_run_logger().info("computing")
    return 42


@flow
def my_favorite_flow() -> int:
    return my_favorite_task()


def test_my_favorite_task():
    assert my_favorite_task.fn() == 42


def test_chatty_task():
    with disable_run_logger():
        assert chatty_task.fn() == 42


if __name__ == "__main__":
    test_my_favorite_task()
    print("my_favorite_task.fn() ok")
    try:
        chatty_task.fn()
    except MissingContextError as exc:
        print("without disable_run_logger:", type(exc).__name__)
    test_chatty_task()
    print("chatty_task.fn() ok under disable_run_logger")
    print("flow.fn():", my_favorite_flow.fn())
