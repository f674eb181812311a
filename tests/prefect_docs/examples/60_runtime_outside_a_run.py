"""Runtime values outside and inside a run; the run context objects.

Pages: docs/v3/how-to-guides/workflows/access-runtime-info.mdx (PrefectHQ/prefect
at 2e6efd8b51e89355dcf051bc54fc35f46ab81b65); docs/v3/concepts/runtime-context.mdx
(at 2e6efd8b51e89355dcf051bc54fc35f46ab81b65), "Access the run context directly".
Scenario: outside a run ``flow_run.name`` is None, ``FlowRunContext.get()`` and
``TaskRunContext.get()`` are None and ``get_run_context()`` raises; inside a
flow the name is the run's (a moody flow wishes it had been named otherwise);
inside a task both contexts are there.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.context import FlowRunContext, TaskRunContext, get_run_context
from prefect.runtime import flow_run


@flow
def moody_workflow(name: str) -> str:
    return f"I wish my parents had named me {name} instead of {flow_run.name}."


@task
def look_around() -> str:
    in_flow = FlowRunContext.get() is not None
    in_task = TaskRunContext.get() is not None
    return f"flow context: {in_flow}, task context: {in_task}"


@flow
def host() -> str:
    return look_around()


if __name__ == "__main__":
    print("outside, flow_run.name is", flow_run.name)
    print("outside:", FlowRunContext.get(), TaskRunContext.get())
    try:
        get_run_context()
    except Exception as exc:
        print("get_run_context() outside a run:", type(exc).__name__)
    print(moody_workflow("Marvin"))
    print(host())
