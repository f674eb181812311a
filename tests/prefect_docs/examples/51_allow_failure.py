"""``allow_failure``: run downstream work after an upstream failure.

Page: docs/v3/api-ref/python/prefect-utilities-annotations.mdx (PrefectHQ/prefect
at 03bc5d2c9bd4384341f0e84408d56207a3bb53b1), ``allow_failure``.
Scenario: a risky task fails; a cleanup task waits for it through
``wait_for=[allow_failure(risky)]`` and runs; a report task is handed the
failed future wrapped in ``allow_failure`` as an argument and prints what it
received (the page: "the attached exception will be passed to your
function"). The failed future is not returned, so the flow completes.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import allow_failure, flow, task


@task
def risky_task() -> int:
    raise ValueError("upstream broke")


@task
def cleanup_task() -> str:
    return "cleaned up"


@task
def report_task(upstream) -> str:
    return f"report got {type(upstream).__name__}: {upstream}"


@flow
def pipeline() -> None:
    risky = risky_task.submit()
    print(cleanup_task(wait_for=[allow_failure(risky)]))
    print(report_task(allow_failure(risky)))


if __name__ == "__main__":
    state = pipeline(return_state=True)
    print(state.name)
