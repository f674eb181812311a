"""Cache writes held until the transaction commits.

Page: docs/v3/advanced/caching.mdx (PrefectHQ/prefect at
01cbd960cc256f2edd918432d5698875155f1801), "Coordinate caching across multiple tasks".
Scenario: two tasks with constant cache keys run in one transaction. With
``fail=True`` the second raises: the flow fails and the first task's result is
not cached. With ``fail=False`` both run and are cached; a third run is served
entirely from the cache.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.transactions import transaction

ran = []


@task(cache_key_fn=lambda *args, **kwargs: "static-key-1")
def load_data() -> str:
    ran.append("load_data")
    return "some-data"


@task(cache_key_fn=lambda *args, **kwargs: "static-key-2")
def process_data(data: str, fail: bool) -> int:
    ran.append("process_data")
    if fail:
        raise RuntimeError("Error! Abort!")
    return len(data)


@flow
def multi_task_cache(fail: bool = True) -> None:
    with transaction():
        data = load_data()
        process_data(data=data, fail=fail)


if __name__ == "__main__":
    for fail in (True, False, False):
        state = multi_task_cache(fail=fail, return_state=True)
        print(f"fail={fail}: {state.name}; bodies run so far: {ran}")
