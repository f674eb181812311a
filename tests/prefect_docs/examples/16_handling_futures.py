"""Futures: ``.result()``, ``.wait()``, ``wait()`` and passing a future to a task.

Page: docs/v3/how-to-guides/workflows/run-work-concurrently.mdx (PrefectHQ/prefect
at dda3bd0b22d88b4358981c5ee83c5a936539271e), "Handling futures".
Scenario: a submitted task's future gives its value with ``.result()``;
``.wait()`` waits without taking the value; ``wait()`` waits for ten futures;
a future passed to another task arrives there as the value it stands for.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.futures import wait


@task
def cool_task() -> str:
    return "sup"


@task
def what_did_cool_task_say(what_it_said: str) -> str:
    return f"cool task said {what_it_said} ({type(what_it_said).__name__})"


@flow
def my_workflow() -> None:
    future = cool_task.submit()
    print("result:", future.result())

    waited = cool_task.submit()
    print("wait returns:", waited.wait())
    print("after wait:", waited.state.name)

    many = [cool_task.submit() for _ in range(10)]
    done, not_done = wait(many)
    print("waited for", len(done), "futures;", len(not_done), "not done")

    print(what_did_cool_task_say(cool_task.submit()))


if __name__ == "__main__":
    my_workflow()
