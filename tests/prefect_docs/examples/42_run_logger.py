"""Custom log lines with ``get_run_logger`` in a flow and a task.

Page: docs/v3/how-to-guides/workflows/add-logging.mdx (PrefectHQ/prefect at
485b088bfa49d49d3df4050acd9faa108f342def), "Emit custom logs".
Scenario: a flow named "log-example-flow" logs at INFO, DEBUG, ERROR and
CRITICAL, then calls a task named "log-example-task" that logs at INFO and
DEBUG. At the default level the DEBUG lines do not show.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.logging import get_run_logger


@task(name="log-example-task")
def logger_task() -> None:
    logger = get_run_logger()
    logger.info("INFO level log message from a task.")
    logger.debug("DEBUG level log message from a task.")


@flow(name="log-example-flow")
def logger_flow() -> None:
    logger = get_run_logger()
    logger.info("INFO level log message.")
    logger.debug("DEBUG level log message.")
    logger.error("ERROR level log message.")
    logger.critical("CRITICAL level log message.")
    logger_task()


if __name__ == "__main__":
    logger_flow()
