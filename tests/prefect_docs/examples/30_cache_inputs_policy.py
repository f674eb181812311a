"""``cache_policy=INPUTS``: cached by inputs alone, even outside a flow.

Page: docs/v3/how-to-guides/workflows/cache-workflow-steps.mdx (PrefectHQ/prefect
at 5529887735764b7294bb31ffeed7e4c1429275d1), "Cache based on inputs".
Scenario: a task called outside any flow prints "sleeping" and returns x + 1;
called with x=1, x=1, x=2 it runs for the first and the last.
Shortened: no 10 s sleep (the page sleeps to make a cache hit visible; the
printed "sleeping" shows it here).
Re-written for this test from the page's description, not copied.
"""

from prefect import task
from prefect.cache_policies import INPUTS


@task(cache_policy=INPUTS)
def my_stateful_task(x: int) -> int:
    print("sleeping")
    return x + 1


if __name__ == "__main__":
    print(my_stateful_task(x=1))
    print(my_stateful_task(x=1))
    print(my_stateful_task(x=2))
