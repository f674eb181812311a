"""Flow retries, with a wait between tries.

Page: docs/v3/how-to-guides/workflows/retries.mdx (PrefectHQ/prefect at
1760e4e9ce815192bf3049fbd58f97abc0997269), "Set the number of retries" and
"Wait between retries".
Scenario: a flow with ``retries=3`` raises "oopsie daisy" on its first two
tries and succeeds on the third; a flow with one retry always raises and ends
Failed after two tries.
Shortened: ``retry_delay_seconds=0.2`` (the page: 2.7182). The first flow
succeeding on its third try is added, so a retry that works shows.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow

tries = {"troublesome": 0, "hopeless": 0}


@flow(retries=3, retry_delay_seconds=0.2)
def troublesome_workflow() -> str:
    tries["troublesome"] += 1
    if tries["troublesome"] < 3:
        raise Exception("oopsie daisy")
    return f"succeeded on try {tries['troublesome']}"


@flow(retries=1, retry_delay_seconds=0.2)
def hopeless_workflow() -> None:
    tries["hopeless"] += 1
    raise Exception("oopsie daisy")


if __name__ == "__main__":
    print(troublesome_workflow())
    state = hopeless_workflow(return_state=True)
    print(state.name, tries["hopeless"])
