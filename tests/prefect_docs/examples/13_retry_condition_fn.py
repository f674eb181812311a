"""Decide whether to retry with ``retry_condition_fn``.

Page: docs/v3/how-to-guides/workflows/retries.mdx (PrefectHQ/prefect at
1760e4e9ce815192bf3049fbd58f97abc0997269), "Retry with a custom condition".
Scenario: a retry handler reads the failed state's exception: no retry for
401/404 or a connection error, a retry for anything else. A task with one
retry calls three URLs: one that is missing (404: runs once, fails), one
that answers 500 then 200 (runs twice, completes) and one that cannot connect
(runs once, fails).
Replaced: the HTTP calls (``httpx.get``, ``raise_for_status``) with a local
function and two local exception classes standing in for httpx's.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task


class HTTPStatusError(Exception):
    """Stands in for httpx.HTTPStatusError."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class ConnectError(Exception):
    """Stands in for httpx.ConnectError."""


SCRIPTED = {"/missing": [404, 404], "/flaky": [500, 200], "/offline": ["down", "down"]}
calls: dict[str, int] = {}


def local_get(url: str) -> dict:
    """Stands in for httpx.get(url) plus raise_for_status() and json()."""
    answer = SCRIPTED[url][calls[url] - 1]
    if answer == "down":
        raise ConnectError(f"cannot reach {url}")
    if answer >= 400:
        raise HTTPStatusError(answer)
    return {"url": url, "ok": True}


def retry_handler(task, task_run, state) -> bool:
    """Retry unless the server said 401/404 or the connection failed."""
    try:
        state.result()
    except HTTPStatusError as exc:
        return exc.status_code not in [401, 404]
    except ConnectError:
        return False
    except Exception:
        return True
    return False


@task(retries=1, retry_condition_fn=retry_handler)
def api_call_task(url: str) -> dict:
    calls[url] = calls.get(url, 0) + 1
    return local_get(url)


@flow
def my_workflow(url: str) -> dict:
    return api_call_task(url=url)


if __name__ == "__main__":
    for url in ["/missing", "/flaky", "/offline"]:
        state = my_workflow(url, return_state=True)
        print(url, state.name, "calls:", calls[url])
