"""Shared fixtures: every test runs against a fresh, empty store.

The autouse ``store`` fixture points the process (and subprocesses it starts)
at a temporary ``KERNELFLOW_HOME`` and removes it afterwards, so no test reads
or writes ``~/.kernelflow`` and no test sees another's runs. A test that sets
up its store itself (e.g. with ``kernelflow_test_harness``) is marked
``@pytest.mark.no_temporary_store``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernelflow.testing import TemporaryStore, temporary_store

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "no_temporary_store: the test sets up its own kernelflow store"
    )


@pytest.fixture(autouse=True)
def store(request: pytest.FixtureRequest) -> Iterator[TemporaryStore | None]:
    """A fresh store for the test (``None`` when marked ``no_temporary_store``)."""
    if request.node.get_closest_marker("no_temporary_store"):
        yield None
        return
    with temporary_store() as fresh:
        yield fresh


@pytest.fixture
def no_background_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep this process's background compactor out of the test's store.

    For tests where another program holds the database: the compactor waking
    (every few seconds, for whichever store is current) would hold the file
    at the moment that program opens it, and the program would fail to start.
    """
    from kernelflow.store.compactor import background

    monkeypatch.setenv("KERNELFLOW_COMPACT_SECONDS", "3600")  # a restarted one stays idle
    running = background()
    if running is not None:
        running.stop(timeout=60)


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python: this checkout importable, the test's store."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


@pytest.fixture
def child_env() -> dict[str, str]:
    """Environment for a child process: this checkout importable, this test's store."""
    return python_env()


@pytest.fixture
def run_python(tmp_path: Path):
    """Run a Python script in a fresh interpreter; returns the CompletedProcess.

    The script is dedented and written to a file, so functions defined in it
    have real source (task sources are hashed for caching).
    """
    counter = iter(range(1_000_000))

    def run(
        code: str, *, timeout: float = 60, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        script = tmp_path / f"script_{next(counter)}.py"
        script.write_text(textwrap.dedent(code))
        proc = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=python_env(**env),
            cwd=tmp_path,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"script failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


@pytest.fixture
def kernel_name(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec running ``sys.executable`` with this checkout on the path.

    Written to a temporary Jupyter data directory that ``JUPYTER_PATH`` points at,
    so real kernels (nbclient, papermill) run the code under test.
    """
    from kernelspecs import write_kernelspec

    data = tmp_path_factory.mktemp("jupyter")
    write_kernelspec(data, "kernelflow-test", "kernelflow test")
    monkeypatch.setenv("JUPYTER_PATH", str(data))
    return "kernelflow-test"
