"""Result persistence on a flow, turned off for one task, and not kept in memory.

Page: docs/v3/advanced/results.mdx (PrefectHQ/prefect at
0196d5f6e2387403ce91ce92162dcd5bf67b9556), "Enabling result persistence",
"Result storage" and "Caching results in memory".
Scenario: a flow with ``persist_result=True`` calls a task, a copy of it made
with ``with_options(persist_result=False)``, and a task with
``cache_result_in_memory=False``; a flow with ``cache_result_in_memory=False``
returns a value that its caller reads back from its state.
Replaced: the S3 storage blocks with the default local storage.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task


@task
def my_task() -> int:
    return 42


unpersisted_task = my_task.with_options(persist_result=False)


@task(cache_result_in_memory=False)
def bar() -> str:
    return "pretend this is biiiig data"


@flow(persist_result=True)
def my_flow() -> list:
    return [my_task(), unpersisted_task(), bar()]


@flow(cache_result_in_memory=False)
def foo() -> str:
    return "pretend this is large data"


if __name__ == "__main__":
    print(my_flow())
    state = foo(return_state=True)
    print(state.name, state.result())
