"""A cache entry that expires: ``cache_expiration``.

Page: docs/v3/how-to-guides/workflows/cache-workflow-steps.mdx (PrefectHQ/prefect
at 5529887735764b7294bb31ffeed7e4c1429275d1), "Cache with an expiration".
Scenario: a task cached by its inputs for a short time runs, is served from
the cache, and runs again once the entry has expired.
Shortened: expiration 1 s and a 1.5 s pause (the page: 10 s); no 10 s sleep in
the task ("sleeping" is printed instead).
Re-written for this test from the page's description, not copied.
"""

import time
from datetime import timedelta

from prefect import task
from prefect.cache_policies import INPUTS


@task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=1))
def my_stateful_task(x: int) -> int:
    print("sleeping")
    return x + 1


if __name__ == "__main__":
    print(my_stateful_task(x=1))
    print(my_stateful_task(x=1))
    time.sleep(1.5)
    print(my_stateful_task(x=1))
