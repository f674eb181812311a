"""``log_prints``: inherited by tasks, and switched off for one task.

Page: docs/v3/how-to-guides/workflows/add-logging.mdx (PrefectHQ/prefect at
485b088bfa49d49d3df4050acd9faa108f342def), "Log with print statements".
Scenario: a ``log_prints=True`` flow prints and calls a task that prints: both
become log lines. A second flow calls a task with ``log_prints=False``: its
print goes to stdout.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task


@task
def my_task() -> None:
    print("we're logging print statements from a task")


@task(log_prints=False)
def quiet_task() -> None:
    print("not logging print statements in this task")


@flow(log_prints=True)
def my_flow() -> None:
    print("we're logging print statements from a flow")
    my_task()


@flow(log_prints=True)
def my_other_flow() -> None:
    print("we're logging print statements from another flow")
    quiet_task()


if __name__ == "__main__":
    my_flow()
    my_other_flow()
