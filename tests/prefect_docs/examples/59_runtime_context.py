"""``prefect.runtime``: the run's name, deployment, task run name and parameters.

Page: docs/v3/concepts/runtime-context.mdx (PrefectHQ/prefect at
2e6efd8b51e89355dcf051bc54fc35f46ab81b65), "Access runtime information".
Scenario: a ``log_prints`` flow prints its run name and its deployment (None:
it runs without one), then calls a task that prints its task run name and the
flow run's parameters.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, runtime, task


@flow(log_prints=True)
def my_flow(x: int) -> None:
    print("My name is", runtime.flow_run.name)
    print("I belong to deployment", runtime.deployment.name)
    my_task(2)


@task
def my_task(y: int) -> None:
    print("My name is", runtime.task_run.name)
    print("Flow run parameters:", runtime.flow_run.parameters)


if __name__ == "__main__":
    my_flow(1)
