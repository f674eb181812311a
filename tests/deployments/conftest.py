"""Fixtures for deployments: a kernelspec running this Python, notebooks, scheduler processes.

``kernel`` writes a kernelspec for ``sys.executable`` (with this checkout on
``PYTHONPATH``) into a temporary Jupyter data directory and points
``JUPYTER_PATH`` at it, so papermill kernels, scheduler subprocesses and the
probe venv or the project's ``.venv`` all agree. ``make_notebook`` writes a
notebook with a ``parameters`` cell that uses that kernel. ``schedulers``
starts ``kernelflow scheduler`` processes and kills whatever is left of them
(and their kernels) at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from kernelspecs import checkout_pythonpath, write_kernelspec

REPO = Path(__file__).resolve().parents[2]
KERNEL_NAME = "kernelflow-deploy-test"


@pytest.fixture
def kernel(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec that starts this very Python with this checkout importable."""
    data = tmp_path_factory.mktemp("jupyter")
    write_kernelspec(data, KERNEL_NAME, "kernelflow deployments test")
    python_path = checkout_pythonpath()
    monkeypatch.setenv("JUPYTER_PATH", str(data))
    monkeypatch.setenv("PYTHONPATH", python_path)
    return KERNEL_NAME


@pytest.fixture
def make_notebook(tmp_path: Path, kernel: str) -> Callable[..., Path]:
    """``make_notebook(name, *cells, parameters="n: int = 1")`` -> the notebook's path."""

    def make(
        name: str, *cells: str, parameters: str | None = "n: int = 1", folder: Path | None = None
    ) -> Path:
        nb = nbformat.v4.new_notebook()
        if parameters is not None:
            cell = nbformat.v4.new_code_cell(parameters)
            cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
        nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
        path = (folder or tmp_path) / f"{name}.ipynb"
        nbformat.write(nb, path)
        return path

    return make


class Schedulers:
    """``kernelflow scheduler`` processes started by a test."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str, log: str | None = None) -> subprocess.Popen:
        out = open(self.cwd / (log or f"scheduler-{len(self.procs)}.log"), "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "kernelflow.cli", "scheduler", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            env=dict(os.environ),
        )
        out.close()
        self.procs.append(proc)
        return proc

    def wait_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.wait(max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        from kernelflow.deployments.workers import kill_tree

        for proc in self.procs:
            if proc.poll() is None:
                kill_tree(proc.pid, include_root=True)
            proc.wait(10)


@pytest.fixture
def schedulers(tmp_path: Path) -> Iterator[Schedulers]:
    found = Schedulers(tmp_path)
    try:
        yield found
    finally:
        found.close()
