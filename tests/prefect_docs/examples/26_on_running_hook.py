"""``on_running`` hooks on tasks, as a list and in decorator form.

Page: docs/v3/how-to-guides/workflows/state-change-hooks.mdx (PrefectHQ/prefect
at 2b955a33f4495c3a7a0dceab895a3c80f742e1c8), "Execute code when a task starts running".
Scenario: one task gets its hook through ``on_running=[...]``, another through
``@another_task.on_running``; each hook prints before the task's body does.
A task with one retry fires its hook on each try.
Replaced: the hook's ``time.time()`` (different every run) with the state's name.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task


def record_start(task, task_run, state):
    print(f"Task {task.name} started ({state.name})")


@task(on_running=[record_start])
def my_task() -> str:
    print("my_task body")
    return "hello"


@task
def another_task() -> str:
    print("another_task body")
    return "world"


@another_task.on_running
def log_start(task, task_run, state):
    print(f"Starting {task.name}!")


tries = []


@task(retries=1, on_running=[record_start])
def shaky_task() -> str:
    tries.append(1)
    if len(tries) == 1:
        raise RuntimeError("first try fails")
    return "steady"


@flow
def my_flow() -> None:
    print(my_task(), another_task(), shaky_task())


if __name__ == "__main__":
    my_flow()
