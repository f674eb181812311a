"""``rate_limit(...)`` in submitted tasks, with a limit that does not exist.

Page: docs/v3/how-to-guides/workflows/global-concurrency-limits.mdx
(PrefectHQ/prefect at 043ec3a46cec4059d4a4bbebfc2edd00ce16712f), "Using
rate_limit" (sync).
Scenario: a flow submits a task five times; each calls
``rate_limit("rate-limited-api")`` (never created, so nothing is limited) and
prints that it makes its request. The flow does not wait explicitly: it ends
after its submitted tasks.
Replaced: the HTTP request with a print (under a lock, so that lines printed by
concurrent tasks do not run into each other). Shortened: five tasks (the page: ten).
Re-written for this test from the page's description, not copied.
"""

import threading

from prefect import flow, task
from prefect.concurrency.sync import rate_limit

print_lock = threading.Lock()


@task
def make_http_request() -> None:
    rate_limit("rate-limited-api")
    with print_lock:
        print("Making an HTTP request...")


@flow
def my_flow() -> None:
    for _ in range(5):
        make_http_request.submit()


if __name__ == "__main__":
    state = my_flow(return_state=True)
    print(state.name)
