"""A list of retry delays, one per retry.

Page: docs/v3/how-to-guides/workflows/retries.mdx (PrefectHQ/prefect at
1760e4e9ce815192bf3049fbd58f97abc0997269), "Retry with configurable delay".
Scenario: a task with four retries and a growing delay before each raises
every time; the flow that calls it takes its final state and prints it, how
many times the task ran and whether the waits added up to the listed delays.
Shortened: delays [0.05, 0.1, 0.15, 0.2] s (the page: [1, 2, 4, 8]).
Re-written for this test from the page's description, not copied.
"""

import time

from prefect import flow, task

DELAYS = [0.05, 0.1, 0.15, 0.2]
runs = []


@task(retries=4, retry_delay_seconds=DELAYS)
def melancholic_task():
    runs.append(time.monotonic())
    raise Exception("We used to see each other so much more often")


@flow
def main():
    state = melancholic_task(return_state=True)
    print(state.name, "|", state.message)
    print("runs:", len(runs))
    print("waited at least the delays:", runs[-1] - runs[0] >= sum(DELAYS) * 0.9)


if __name__ == "__main__":
    main()
