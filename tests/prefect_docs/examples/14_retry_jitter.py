"""Random jitter on retry delays (``retry_jitter_factor``).

Page: docs/v3/how-to-guides/workflows/retries.mdx (PrefectHQ/prefect at
1760e4e9ce815192bf3049fbd58f97abc0997269), "Add jitter to retry delays".
Scenario: a task with three retries, exponential backoff and a jitter factor
fails until it has been tried three times, then returns "That's enough failure".
Shortened: ``backoff_factor=0.02`` (the page: 5) and jitter factor 1 (the
page: 3); the page's "fail until 10 s have passed" is "fail twice" here, so
the outcome does not depend on the random delays.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.tasks import exponential_backoff

tries = []


@task(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=0.02),
    retry_jitter_factor=1,
)
def some_task_with_exponential_backoff_retries() -> str:
    tries.append(1)
    if len(tries) < 3:
        raise Exception("I could fail some more")
    return "That's enough failure"


@flow
def main() -> str:
    return some_task_with_exponential_backoff_retries()


if __name__ == "__main__":
    print(main(), "after", len(tries), "tries")
