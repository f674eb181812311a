"""The default cache policy: same inputs in the same flow run are served from the cache.

Page: docs/v3/how-to-guides/workflows/cache-workflow-steps.mdx (PrefectHQ/prefect
at 5529887735764b7294bb31ffeed7e4c1429275d1), the opening example.
Scenario: a task with ``persist_result=True`` is called with 1, 1 and 2 in one
flow: the second call is Cached, the others run. A second flow run calls it
with 1 again and runs it (the default policy includes the run id).
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task

runs = []


@task(persist_result=True)
def add_one(x: int) -> int:
    runs.append(x)
    return x + 1


@flow
def my_flow() -> None:
    for x in (1, 1, 2):
        state = add_one(x, return_state=True)
        print(f"add_one({x}) = {state.result()} [{state.name}]")


if __name__ == "__main__":
    my_flow()
    my_flow()
    print("bodies run for:", runs)
