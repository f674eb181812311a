"""``cache_policy=NONE``: Prefect's other name for "no caching".

Page: docs/v3/concepts/caching.mdx (PrefectHQ/prefect at
2e6efd8b51e89355dcf051bc54fc35f46ab81b65), "Cache policies" (``NO_CACHE``;
Prefect 3.9.1's ``prefect.cache_policies`` also has ``NONE``, the same policy,
which users' code imports).
Scenario: a task with ``cache_policy=NONE`` called twice with the same input in
one flow runs both times.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.cache_policies import NONE

runs = []


@task(cache_policy=NONE)
def fresh(x: int) -> int:
    runs.append(x)
    return x


@flow
def pipeline() -> None:
    for _ in range(2):
        print(fresh(7, return_state=True).name)


if __name__ == "__main__":
    pipeline()
    print("ran", len(runs), "times")
