"""``result_storage_key``: a task result stored under a name built from its parameters.

Page: docs/v3/advanced/results.mdx (PrefectHQ/prefect at
0196d5f6e2387403ce91ce92162dcd5bf67b9556), "Result filenames".
Scenario: a task stores its result under "hello-{parameters[name]}.pickle"; a
flow calls it for three names; a second flow run finds the three results and
loads them without running the task.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task

ran = []


@task(result_storage_key="hello-{parameters[name]}.pickle")
def hello_world(name: str = "world") -> str:
    ran.append(name)
    return f"hello {name}"


@flow
def my_flow() -> None:
    for kwargs in ({}, {"name": "foo"}, {"name": "bar"}):
        state = hello_world(**kwargs, return_state=True)
        print(state.result(), f"[{state.name}]")


if __name__ == "__main__":
    my_flow()
    my_flow()
    print("ran for:", ran)
