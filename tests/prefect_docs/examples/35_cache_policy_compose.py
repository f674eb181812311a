"""Composed cache policies (``TASK_SOURCE + INPUTS``) and ``NO_CACHE``.

Pages: docs/v3/how-to-guides/workflows/cache-workflow-steps.mdx (PrefectHQ/prefect
at 5529887735764b7294bb31ffeed7e4c1429275d1), "Cache on multiple criteria";
docs/v3/concepts/caching.mdx (at 2e6efd8b51e89355dcf051bc54fc35f46ab81b65),
"Cache policies".
Scenario: two flow runs each call a task cached by source and inputs, and one
with ``NO_CACHE``; the first is served from the cache in the second run, the
second always runs.
Nothing replaced.
Re-written for this test from the pages' descriptions, not copied.
"""

from prefect import flow, task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE


@task(cache_policy=TASK_SOURCE + INPUTS)
def my_task(x: int) -> int:
    return x + 42


@task(cache_policy=NO_CACHE)
def uncached_task(x: int) -> int:
    return x - 42


@flow
def pipeline() -> None:
    for t in (my_task, uncached_task):
        state = t(1, return_state=True)
        print(f"{t.name}(1) = {state.result()} [{state.name}]")


if __name__ == "__main__":
    pipeline()
    pipeline()
