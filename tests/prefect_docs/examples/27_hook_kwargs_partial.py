"""Pass extra arguments to a hook with ``functools.partial`` and ``with_options``.

Page: docs/v3/how-to-guides/workflows/state-change-hooks.mdx (PrefectHQ/prefect
at 2b955a33f4495c3a7a0dceab895a3c80f742e1c8), "Pass kwargs to state change hooks".
Scenario: inside a flow, a failing task gets an ``on_failure`` hook bound to the
flow's parameters; the flow returns a value and the failed task's state (taken
with ``return_state=True``, so nothing raises); the hook saw both parameters
and the same state the flow returned.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from functools import partial

from prefect import flow, task

data = {}


def my_hook(task, task_run, state, **kwargs):
    data.update(state=state, **kwargs)


@task
def bad_task():
    raise ValueError("meh")


@flow
def ok_with_failure_flow(x: str = "foo", y: int = 42):
    bad_task_with_a_hook = bad_task.with_options(on_failure=[partial(my_hook, x=x, y=y)])
    return "bar", bad_task_with_a_hook(return_state=True)


if __name__ == "__main__":
    first, task_run_state = ok_with_failure_flow()
    print(first, task_run_state.name)
    print(sorted(data), data["x"], data["y"])
    print("hook saw the returned state:", data["state"] == task_run_state)
