"""Process and Dask runners in a real Jupyter kernel, with tasks defined in the notebook."""

from __future__ import annotations

from pathlib import Path

import pytest
from kernelspecs import write_kernelspec

REPO = Path(__file__).resolve().parents[2]
KERNEL_NAME = "kernelflow-runners-test"

pytestmark = pytest.mark.slow


@pytest.fixture
def notebook(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Run cells in one real kernel (this Python, this checkout importable)."""
    import nbformat
    from nbclient import NotebookClient

    data = tmp_path_factory.mktemp("jupyter")
    write_kernelspec(
        data, KERNEL_NAME, "kernelflow runners test", {"KERNELFLOW_LOGGING_LEVEL": "WARNING"}
    )
    monkeypatch.setenv("JUPYTER_PATH", str(data))
    nb = nbformat.v4.new_notebook()
    client = NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=180,
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}},
    )
    context = client.setup_kernel()
    context.__enter__()

    def run(source: str) -> tuple[str, list]:
        cell = nbformat.v4.new_code_cell(source)
        nb.cells.append(cell)
        client.execute_cell(cell, len(nb.cells) - 1)
        errors = [o for o in cell.outputs if o["output_type"] == "error"]
        assert not errors, errors
        text = "".join(
            o["text"]
            for o in cell.outputs
            if o["output_type"] == "stream" and o["name"] == "stdout"
        )
        return text, cell.outputs

    try:
        yield run
    finally:
        context.__exit__(None, None, None)


def test_notebook_tasks_run_on_worker_processes_and_dask(notebook):
    notebook("""
import os
from kernelflow import flow, task
from kernelflow.runners import ProcessPoolTaskRunner
from kernelflow.dask import DaskTaskRunner

@task
def square(x: int) -> tuple:
    print(f"worker says {x}")
    return x * x, os.getpid()
""")
    text, _ = notebook("""
@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def on_processes(n):
    return square.map(range(n)).result()

results = on_processes(4)
print([v for v, _ in results], os.getpid() in {p for _, p in results})
""")
    assert "[0, 1, 4, 9] False" in text
    assert all(f"worker says {i}" in text for i in range(4))
    text, _ = notebook("""
@flow(task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1}))
def on_dask(n):
    return square.map(range(n)).result()

results = on_dask(3)
print([v for v, _ in results], os.getpid() in {p for _, p in results})
""")
    assert "[0, 1, 4] False" in text
    assert all(f"worker says {i}" in text for i in range(3))
