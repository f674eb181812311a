"""A future passed to a task arrives as its value; ``.result()``; ``as_completed``.

Page: docs/v3/concepts/task-runners.mdx (PrefectHQ/prefect at
01cbd960cc256f2edd918432d5698875155f1801), "Submit tasks to a task runner" and
"Access results from submitted tasks".
Scenario: "hello-flow" submits ``say_hello("Marvin")`` and passes its future to
``print_result``, which prints the type and value it received; a second flow
prints a submitted task's ``.result()``; a third collects results with the
``as_completed`` utility and prints them sorted.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.futures import as_completed


@task
def say_hello(name: str) -> str:
    return f"Hello {name}!"


@task
def print_result(result) -> None:
    print(type(result))
    print(result)


@flow(name="hello-flow")
def hello_world() -> None:
    future = say_hello.submit("Marvin")
    print_result.submit(future).wait()


@task
def my_task(n: int = 42) -> int:
    return n


@flow
def my_flow() -> None:
    print(my_task.submit().result())


@flow
def collect() -> None:
    futures = [my_task.submit(n) for n in (3, 1, 2)]
    print(sorted(f.result() for f in as_completed(futures)))


if __name__ == "__main__":
    hello_world()
    my_flow()
    collect()
