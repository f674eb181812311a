"""A flow that calls a task and a child flow.

Page: docs/v3/how-to-guides/workflows/write-and-run.mdx (PrefectHQ/prefect at
cf898f1f4c7f91fee66fe4b14a937817434fe2bf), "Create tasks and child workflows".
Scenario: a task produces a number, a child flow decides whether it is even,
and the parent prints which.
Replaced: the random number with numbers passed in (the page draws one with
``random.randint``), so the output is the same every run.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task


@task
def generate_a_number(seed: int) -> int:
    return (seed * 37) % 101


@flow
def is_number_even(number: int) -> bool:
    return number % 2 == 0


@flow
def even_or_odd(seed: int) -> None:
    number = generate_a_number(seed)
    if is_number_even(number):
        print(f"{number}: the number is even")
    else:
        print(f"{number}: the number is odd")


if __name__ == "__main__":
    even_or_odd(2)
    even_or_odd(3)
