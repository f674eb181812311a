"""``concurrency(...)`` with a limit that does not exist.

Page: docs/v3/how-to-guides/workflows/global-concurrency-limits.mdx
(PrefectHQ/prefect at 043ec3a46cec4059d4a4bbebfc2edd00ce16712f), "Using the
concurrency context manager" (sync), and its tip: limits are not created
implicitly; without one nothing is limited, and ``strict=True`` raises instead.
Scenario: four submitted tasks each occupy a slot of "database" (never
created) and add two numbers; the flow waits and prints the sums. Then one
task asks with ``strict=True`` and fails.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.concurrency.sync import concurrency
from prefect.futures import wait


@task
def process_data(x: int, y: int) -> int:
    with concurrency("database", occupy=1):
        return x + y


@task
def strict_process(x: int, y: int) -> int:
    with concurrency("database", occupy=1, strict=True):
        return x + y


@flow
def my_flow() -> None:
    futures = [process_data.submit(x, y) for x, y in [(1, 2), (2, 3), (3, 4), (4, 5)]]
    wait(futures)
    print(sorted(f.result() for f in futures))
    state = strict_process(1, 1, return_state=True)
    print("strict:", state.name)


if __name__ == "__main__":
    my_flow()
