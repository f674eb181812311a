"""State dependencies without data: ``wait_for=[...]``.

Page: docs/v3/how-to-guides/workflows/run-work-concurrently.mdx (PrefectHQ/prefect
at dda3bd0b22d88b4358981c5ee83c5a936539271e), "Creating state dependencies".
Scenario: tasks a and b are submitted, c is submitted to wait for both, and d
is called to wait for c. Each records that it ran; the record shows c after a
and b, and d last.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

import threading
import time

from prefect import flow, task

order: list[str] = []
lock = threading.Lock()


def ran(name: str) -> None:
    with lock:
        order.append(name)


@task
def task_a() -> None:
    time.sleep(0.1)
    ran("a")


@task
def task_b() -> None:
    time.sleep(0.05)
    ran("b")


@task
def task_c() -> None:
    ran("c")


@task
def task_d() -> None:
    ran("d")


@flow
def my_flow() -> None:
    a = task_a.submit()
    b = task_b.submit()
    c = task_c.submit(wait_for=[a, b])
    task_d(wait_for=[c])


if __name__ == "__main__":
    my_flow()
    print("first two (any order):", sorted(order[:2]))
    print("then:", order[2:])
