"""Real flows the CLI tests record: imported by ``conftest.py`` and by tests that run them again.

``etl`` has a retried task (fails once), a cached task called twice (the second
call is Cached), a ``.map()`` fan-out in a subflow and a log line with rich
markup in it; ``breaks`` fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelflow import flow, get_run_logger, task
from kernelflow.context import get_run_context
from kernelflow.tasks import task_input_hash

_tries = {"flaky": 0}


@task(retries=2, retry_delay_seconds=0)
def flaky() -> int:
    _tries["flaky"] += 1
    if _tries["flaky"] == 1:
        raise ConnectionError("first try fails")
    return 1


@task(cache_key_fn=task_input_hash)
def square(x: int) -> int:
    return x * x


@task
def double(x: int) -> int:
    return 2 * x


@flow
def fan_out(xs: list[int]) -> list[int]:
    return [f.result() for f in double.map(xs)]


@flow
def etl() -> str:
    get_run_logger().info("markup stays literal: [red]not red[/red]")
    flaky()
    square(3)
    square(3)
    fan_out([1, 2, 3])
    return get_run_context().flow_run.id


@flow
def breaks() -> None:
    raise ValueError("the breaks flow failed on purpose")


@dataclass
class Recorded:
    """Ids of the runs recorded by the ``recorded`` fixture."""

    etl_id: str
    breaks_id: str


def record_runs() -> Recorded:
    """Run ``etl`` then ``breaks`` on the active store; return their ids."""
    from kernelflow.store.queries import list_flow_runs

    _tries["flaky"] = 0
    etl_id = etl()
    assert breaks(return_state=True).is_failed()
    breaks_id = list_flow_runs(flow="breaks", limit=1)["id"].iloc[0]
    return Recorded(etl_id=etl_id, breaks_id=breaks_id)
