"""Logging from a state change hook with ``flow_run_logger``.

Page: docs/v3/how-to-guides/workflows/add-logging.mdx (PrefectHQ/prefect at
485b088bfa49d49d3df4050acd9faa108f342def), "Emit custom logs" (the warning on hooks).
Scenario: a flow's ``on_completion`` hook logs through
``flow_run_logger(flow_run, flow)``; the program also logs through a plain
``get_logger()`` logger outside any run, and shows that ``get_run_logger()``
outside a run raises ``MissingContextError``.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow
from prefect.exceptions import MissingContextError
from prefect.logging import get_logger, get_run_logger
from prefect.logging.loggers import flow_run_logger


def my_hook(flow, flow_run, state):
    logger = flow_run_logger(flow_run, flow)
    logger.info("This log appears in the Prefect UI")


@flow(on_completion=[my_hook])
def my_flow() -> str:
    return "done"


if __name__ == "__main__":
    print(my_flow())
    get_logger("docs-example").warning("a plain logger, outside any run")
    try:
        get_run_logger()
    except MissingContextError as exc:
        print("outside a run:", type(exc).__name__)
