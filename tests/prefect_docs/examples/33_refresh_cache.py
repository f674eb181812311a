"""``refresh_cache=True`` always runs and rewrites the entry; ``False`` reads it.

Page: docs/v3/how-to-guides/workflows/cache-workflow-steps.mdx (PrefectHQ/prefect
at 5529887735764b7294bb31ffeed7e4c1429275d1), "Ignore the cache".
Scenario: two tasks cached by their source (``TASK_SOURCE``): the one with
``refresh_cache=True`` runs on every call, the one with ``refresh_cache=False``
runs once and is served from the cache after.
Replaced: ``random.random()`` with a counter, so "ran again" is visible and the
numbers are the same every run.
Re-written for this test from the page's description, not copied.
"""

from itertools import count

from prefect import task
from prefect.cache_policies import TASK_SOURCE

tickets = count(1)


@task(cache_policy=TASK_SOURCE, refresh_cache=True)
def never_caching_task() -> int:
    return next(tickets)


@task(cache_policy=TASK_SOURCE, refresh_cache=False)
def caching_task() -> int:
    return 100 + next(tickets)


if __name__ == "__main__":
    print([never_caching_task() for _ in range(3)])
    print([caching_task() for _ in range(3)])
