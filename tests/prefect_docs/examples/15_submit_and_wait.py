"""Run tasks concurrently with ``.submit()`` and wait for them with ``wait``.

Page: docs/v3/how-to-guides/workflows/run-work-concurrently.mdx (PrefectHQ/prefect
at dda3bd0b22d88b4358981c5ee83c5a936539271e), "Using .submit".
Scenario: an "elevator" flow submits one task per floor, highest first; each
task says it moves to its floor, waits in proportion to the floor and says it
stops there; the flow waits for all of them, then prints each floor's state.
Shortened: five floors, 0.05 s a floor (the page: ten floors, 1 s a floor).
Changed: the tasks log their prints (``log_prints=True``) instead of writing
to stdout, where concurrent tasks' lines would interleave differently each
run; the flow prints a sorted summary.
Re-written for this test from the page's description, not copied.
"""

import time

from prefect import flow, task
from prefect.futures import wait


@task(log_prints=True)
def stop_at_floor(floor: int) -> int:
    print(f"elevator moving to floor {floor}")
    time.sleep(floor * 0.05)
    print(f"elevator stops on floor {floor}")
    return floor


@flow
def elevator() -> None:
    floors = [stop_at_floor.submit(floor) for floor in range(5, 0, -1)]
    done, not_done = wait(floors)
    print("done:", len(done), "not done:", len(not_done))
    for future in sorted(floors, key=lambda f: f.result()):
        print("floor", future.result(), future.state.name)


if __name__ == "__main__":
    elevator()
