"""Fixtures of the engine's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernelflow.engine import task_run


@pytest.fixture(autouse=True)
def fresh_run_names() -> Iterator[None]:
    """Number the runs of tasks called outside a flow from 0 in each test (``name-0``).

    The counters are per process; without this, a test's run names would
    depend on which tests ran before it.
    """
    saved = dict(task_run._detached_counts)
    task_run._detached_counts.clear()
    yield
    task_run._detached_counts.clear()
    task_run._detached_counts.update(saved)
