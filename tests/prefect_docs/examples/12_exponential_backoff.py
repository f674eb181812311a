"""Retry delays from ``exponential_backoff``.

Page: docs/v3/how-to-guides/workflows/retries.mdx (PrefectHQ/prefect at
1760e4e9ce815192bf3049fbd58f97abc0997269), "Retry with configurable delay".
Scenario: the delays ``exponential_backoff(backoff_factor=2)`` gives for four
retries are printed; a task retried with such delays fails twice, then
returns.
Shortened: the task uses ``backoff_factor=0.02`` (the page: 2), so its waits
are 0.02 s and 0.04 s.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.tasks import exponential_backoff

attempts = []


@task(retries=4, retry_delay_seconds=exponential_backoff(backoff_factor=0.02))
def melancholic_task() -> str:
    attempts.append(len(attempts) + 1)
    if len(attempts) < 3:
        raise Exception("We used to see each other so much more often")
    return "back together"


@flow
def main() -> str:
    return melancholic_task()


if __name__ == "__main__":
    print("delays for 4 retries:", exponential_backoff(backoff_factor=2)(4))
    print(main(), attempts)
