"""Cache key functions: a constant key, and ``task_input_hash`` across flow runs.

Page: docs/v3/concepts/caching.mdx (PrefectHQ/prefect at
2e6efd8b51e89355dcf051bc54fc35f46ab81b65), "Cache key functions" and "Cache expiration".
Scenario: a task whose key function returns a constant runs once and then
returns the first value whatever it is given; a task keyed by Prefect's
``task_input_hash`` (with an expiration) is served from the cache in a second
flow run for the same input.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from datetime import timedelta

from prefect import flow, task
from prefect.tasks import task_input_hash


def static_cache_key(context, parameters):
    return "static cache key"


@task(cache_key_fn=static_cache_key)
def my_cached_task(x: int) -> int:
    return x + 1


@task(cache_key_fn=task_input_hash, cache_expiration=timedelta(minutes=5))
def hashed_task(x: int) -> int:
    return x * 10


@flow
def pipeline(x: int) -> None:
    state = hashed_task(x, return_state=True)
    print(f"hashed_task({x}) = {state.result()} [{state.name}]")


if __name__ == "__main__":
    print(my_cached_task(1), my_cached_task(2))
    pipeline(3)
    pipeline(3)
    pipeline(4)
