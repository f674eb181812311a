"""Tasks called outside any flow, with ``log_prints``.

Page: docs/v3/concepts/tasks.mdx (PrefectHQ/prefect at
0260f0cd6a9ab3664390b18426004fd538d54e85), the opening example and "Calling a
task directly".
Scenario: a ``log_prints`` task that prints two lines is called at the top of
a script, with no flow; a task adding two integers is called the same way and
returns 3 (it blocks until done).
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import task


@task(log_prints=True)
def explain_tasks() -> None:
    print("run any python code here!")
    print("but maybe just a little bit")


@task
def add_integers(a: int, b: int) -> int:
    return a + b


if __name__ == "__main__":
    explain_tasks()
    print(add_integers(1, 2))
