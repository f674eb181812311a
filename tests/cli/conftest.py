"""Fixtures of the CLI tests: a store with real recorded runs, and ways to call the CLI.

Every test already runs on a fresh store (the autouse ``store`` fixture of
``tests/conftest.py``); ``recorded`` fills it by running the real flows of
``cli_flows.py`` in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_flows import Recorded, record_runs
from click.testing import CliRunner, Result
from kernelspecs import checkout_pythonpath

from kernelflow.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def recorded() -> Recorded:
    """Run ``etl`` then ``breaks`` on the test's store."""
    return record_runs()


@pytest.fixture
def cli():
    """Call the CLI in this process: ``cli("runs", "ls")`` -> click's Result."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), prog_name="kernelflow")

    return invoke


def _child_env(**extra: str) -> dict[str, str]:
    """This process's environment (so the test's ``KERNELFLOW_HOME``), this checkout first.

    The ``child_env`` fixture itself comes from tests/conftest.py.
    """
    return {**os.environ, "PYTHONPATH": checkout_pythonpath(), **extra}


@pytest.fixture
def cli_process():
    """Run ``python -m kernelflow.cli ARGS`` as a real program, on the test's store.

    Keyword arguments are extra environment variables for the child.
    """
    return _run_cli_process


def _run_cli_process(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kernelflow.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_child_env(**env),
        cwd=REPO,
    )
