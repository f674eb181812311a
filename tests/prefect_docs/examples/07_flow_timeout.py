"""A flow that runs past its ``timeout_seconds``.

Page: docs/v3/how-to-guides/workflows/write-and-run.mdx (PrefectHQ/prefect at
cf898f1f4c7f91fee66fe4b14a937817434fe2bf), "Cancel a workflow if it runs for too long".
Scenario: a ``log_prints`` flow prints, sleeps past its timeout, and would
print again; the second print never happens. The program looks at the final
state, then calls the flow once more and lets the error escape.
Shortened: timeout 1 s and sleep 3 s (the page: 1 s and 5 s).
Re-written for this test from the page's description, not copied.
"""

import time

from prefect import flow


@flow(timeout_seconds=1, log_prints=True)
def show_timeouts():
    print("I will execute")
    time.sleep(3)
    print("I will not execute")


if __name__ == "__main__":
    state = show_timeouts(return_state=True)
    print(state.name, state.type.value)
    print(state.message)
    show_timeouts()
