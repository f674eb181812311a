"""``pause_flow_run`` with nobody to resume it: the pause times out.

Page: docs/v3/how-to-guides/workflows/pause-workflows.mdx (PrefectHQ/prefect at
a2b744921fda3818d8f8e8d067e8d7d7f71120ab), "Pause a workflow run".
Scenario: a flow runs a setup task, pauses, and would run a punchline task
after being resumed; nothing resumes it, so the pause times out and the flow
fails with a message saying so. The program prints the final state.
Shortened: a 2 s timeout (the page: 600 s); sync tasks and flow (the page's
are async).
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, pause_flow_run, task


@task
def marvin_setup() -> str:
    return "a raft of ducks walk into a bar..."


@task
def marvin_punchline() -> str:
    return "it's a wonder none of them ducked!"


@flow
def inspiring_joke() -> str:
    print(marvin_setup())
    pause_flow_run(timeout=2)
    return marvin_punchline()


if __name__ == "__main__":
    state = inspiring_joke(return_state=True)
    print(state.name, "|", state.message)
