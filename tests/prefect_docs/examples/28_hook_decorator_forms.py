"""Completion and failure hooks on tasks and flows, in list and decorator form.

Pages: docs/v3/how-to-guides/workflows/state-change-hooks.mdx (PrefectHQ/prefect
at 2b955a33f4495c3a7a0dceab895a3c80f742e1c8), "Available state change hooks";
docs/v3/concepts/states.mdx (at 11e41ce4fc2995a4e277cff92ad460c8f96bd255),
"State change hooks" (the hook signatures).
Scenario: a task has ``@t.on_completion`` and ``@t.on_failure`` hooks, a flow
has ``on_completion=[...]`` and ``on_failure=[...]``; the task succeeds once and
fails once, the flow completes once and fails once. Each hook prints what it
was given.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task


@task
def divide(a: int, b: int) -> float:
    return a / b


@divide.on_completion
def said_done(task, task_run, state):
    print(f"task hook: {task.name} completed -> {state.result()}")


@divide.on_failure
def said_failed(task, task_run, state):
    print(f"task hook: {task.name} failed: {state.message}")


def flow_done(flow, flow_run, state):
    print(f"flow hook: {flow.name} {state.name}")


def flow_failed(flow, flow_run, state):
    print(f"flow hook: {flow.name} {state.name}: {state.message}")


@flow(on_completion=[flow_done], on_failure=[flow_failed])
def calculator(b: int) -> float:
    return divide(1, b)


if __name__ == "__main__":
    print(calculator(4))
    state = calculator(0, return_state=True)
    print(state.name)
