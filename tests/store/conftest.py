"""Fixtures of the store tests: a fresh store home per test, real DuckDB files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernelflow.settings import StorePaths, use_home
from kernelflow.store import journal


@pytest.fixture
def paths(tmp_path: Path) -> Iterator[StorePaths]:
    """A fresh store, active for this process and the processes it starts."""
    home = tmp_path / "home"
    previous = use_home(home)
    previous_env = os.environ.get("KERNELFLOW_HOME")
    os.environ["KERNELFLOW_HOME"] = str(home)
    try:
        yield StorePaths(home)
    finally:
        journal.forget(home / "journal")
        use_home(previous)
        if previous_env is None:
            os.environ.pop("KERNELFLOW_HOME", None)
        else:
            os.environ["KERNELFLOW_HOME"] = previous_env
