"""Cache on a subset of inputs: ``INPUTS - "debug"``.

Pages: docs/v3/how-to-guides/workflows/cache-workflow-steps.mdx (PrefectHQ/prefect
at 5529887735764b7294bb31ffeed7e4c1429275d1), "Cache based on a subset of
inputs"; docs/v3/concepts/caching.mdx (at 2e6efd8b51e89355dcf051bc54fc35f46ab81b65),
"Cache policies".
Scenario: a task whose cache ignores its ``debug`` argument runs once for x=1
and is served from the cache for x=1 with debug True or False; x=2 runs.
Shortened: no 10 s sleep ("running..." is printed instead).
Re-written for this test from the pages' descriptions, not copied.
"""

from prefect import task
from prefect.cache_policies import INPUTS


@task(cache_policy=INPUTS - "debug")
def my_stateful_task(x: int, debug: bool = False) -> int:
    print("running...")
    return x + 1


if __name__ == "__main__":
    print(my_stateful_task(x=1))
    print(my_stateful_task(x=1, debug=True))
    print(my_stateful_task(x=1, debug=False))
    print(my_stateful_task(x=2, debug=True))
