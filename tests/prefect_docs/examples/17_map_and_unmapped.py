"""``.map()`` over a list, a static argument, and ``unmapped``.

Page: docs/v3/how-to-guides/workflows/run-work-concurrently.mdx (PrefectHQ/prefect
at dda3bd0b22d88b4358981c5ee83c5a936539271e), "Using .map" and "Using the
unmapped annotation".
Scenario: a task mapped over numbers with a plain value beside them adds that
value to each; a task mapped with a list wrapped in ``unmapped`` gets the
whole list in every run; ``futures.result()`` gives the values in order.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task, unmapped


@task
def add_together(x: int, y: int) -> int:
    return x + y


@task
def sum_plus(x: int, static_iterable: list[int]) -> int:
    return x + sum(static_iterable)


@flow
def sum_it(numbers: list[int], static_value: int) -> list[int]:
    futures = add_together.map(numbers, static_value)
    return futures.result()


@flow
def sum_it_unmapped(numbers: list[int], static_iterable: list[int]) -> list[int]:
    futures = sum_plus.map(numbers, unmapped(static_iterable))
    return futures.result()


if __name__ == "__main__":
    print(sum_it([1, 2, 3], 5))
    print(sum_it_unmapped([4, 5, 6], [1, 2, 3]))
