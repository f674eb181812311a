"""A flow with ``ThreadPoolTaskRunner(max_workers=3)``.

Page: docs/v3/concepts/task-runners.mdx (PrefectHQ/prefect at
01cbd960cc256f2edd918432d5698875155f1801), "Configure a task runner".
Scenario: the elevator flow submits one task per floor to a thread pool of
three; each task counts how many tasks run at the same moment. The program
prints that no more than three ran at once, that more than one did, and the
floors in order.
Shortened: six floors, 0.3 s each (the page: ten floors, 1 to 10 s); the
tasks return their floor instead of printing, where concurrent lines would
interleave differently each run.
Re-written for this test from the page's description, not copied.
"""

import threading
import time

from prefect import flow, task
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

lock = threading.Lock()
running = {"now": 0, "most": 0}


@task
def stop_at_floor(floor: int) -> int:
    with lock:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
    time.sleep(0.3)
    with lock:
        running["now"] -= 1
    return floor


@flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
def elevator() -> list[int]:
    floors = [stop_at_floor.submit(floor) for floor in range(6, 0, -1)]
    wait(floors)
    return sorted(f.result() for f in floors)


if __name__ == "__main__":
    print(elevator())
    print("at most 3 at once:", running["most"] <= 3)
    print("more than 1 at once:", running["most"] > 1)
