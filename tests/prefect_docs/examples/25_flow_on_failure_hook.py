"""An ``on_failure`` hook on a flow with a retry, in decorator form.

Page: docs/v3/how-to-guides/workflows/state-change-hooks.mdx (PrefectHQ/prefect
at 2b955a33f4495c3a7a0dceab895a3c80f742e1c8), "Send a notification when a
workflow run fails".
Scenario: a flow with one retry raises ValueError("oops!"); a hook registered
with ``@failing_flow.on_failure`` sends a notice naming the run, its state,
the message and the run's tags; it runs once, after the retry, and the error
escapes to the caller.
Replaced: the Slack webhook block with a local ``notify`` that prints, and
the UI link (it needs the API URL) with nothing.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow


def notify(text: str) -> None:
    """Stands in for SlackWebhook.notify."""
    print("NOTIFY:", text)


@flow(retries=1)
def failing_flow():
    print("failing_flow is running")
    raise ValueError("oops!")


@failing_flow.on_failure
def notify_slack(flow, flow_run, state):
    notify(
        f"Your job {flow_run.name} entered {state.name} "
        f"with message: {state.message} (tags: {flow_run.tags})"
    )


if __name__ == "__main__":
    failing_flow()
