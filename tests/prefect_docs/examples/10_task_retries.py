"""Retry one task of a flow, not the whole flow.

Page: docs/v3/how-to-guides/workflows/retries.mdx (PrefectHQ/prefect at
1760e4e9ce815192bf3049fbd58f97abc0997269), "Retry parts of a workflow".
Scenario: a first task runs once and prints; a second task with ``retries=4``
calls a flaky endpoint that answers 500 twice, then 200; the flow completes,
the first task is not run again.
Replaced: the HTTP request to httpbin (random 200 or 500) with a local
function that answers 500, 500, 200, and ``httpx``'s raise_for_status with a
local exception. Shortened: ``retry_delay_seconds=0.1`` (the page: 5).
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task


class HTTPStatusError(Exception):
    """Stands in for httpx.HTTPStatusError."""


answers = [500, 500, 200]
calls = {"consistent": 0, "mercurial": 0}


def local_get(url: str) -> int:
    """Stands in for httpx.get(url).status_code."""
    return answers.pop(0)


@task
def consistent_task() -> None:
    calls["consistent"] += 1
    print("I won't rerun even if the task after me fails")


@task(retries=4, retry_delay_seconds=0.1)
def mercurial_task() -> int:
    calls["mercurial"] += 1
    status = local_get("https://httpbin.org/status/200-or-500")
    if status >= 400:
        raise HTTPStatusError(f"Server error '{status}'")
    return status


@flow
def my_workflow() -> int:
    consistent_task()
    return mercurial_task()


if __name__ == "__main__":
    print("status:", my_workflow())
    print("calls:", calls)
