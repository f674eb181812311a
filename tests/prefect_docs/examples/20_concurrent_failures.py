"""Let concurrent work finish when some of it fails, then look at the states.

Page: docs/v3/how-to-guides/workflows/run-work-concurrently.mdx (PrefectHQ/prefect
at dda3bd0b22d88b4358981c5ee83c5a936539271e), "Handling failures in concurrent work".
Scenario: a task that refuses negative numbers is mapped over five items, two
of them negative; the flow waits for all, sorts the futures into succeeded and
failed by their states, prints the counts and returns the successful results.
The flow itself completes.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.futures import wait


@task
def process_data(item: int) -> str:
    if item < 0:
        raise ValueError(f"Cannot process negative value: {item}")
    return f"Processed {item}"


@flow
def batch_processing() -> list[str]:
    futures = process_data.map([1, -2, 3, -4, 5])
    done, _ = wait(futures)
    successful = [f.result() for f in done if f.state.is_completed()]
    failed = [f.state for f in done if not f.state.is_completed()]
    print(f"Processed {len(successful)} items successfully")
    print(f"Failed to process {len(failed)} items")
    for state in sorted(failed, key=lambda s: s.message):
        print(" ", state.name, "|", state.message)
    return sorted(successful)


if __name__ == "__main__":
    state = batch_processing(return_state=True)
    print(state.name, state.result())
