"""The notebook integration in real kernels (ipykernel, driven by nbclient and papermill)."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kernel_helpers import LiveKernel, displays_of, error_of, plain, result_of, stdout_of

pytestmark = pytest.mark.slow


def _png() -> bytes:
    """A valid 2x1 PNG, made here so no image library is needed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"\x00" + b"\xff\x00\x00" + b"\x00\x00\xff"
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


PNG_B64 = base64.b64encode(_png()).decode()

SETUP = "%load_ext kernelflow\nimport pandas as pd\nn = 1000"
REPORT = f"""%%task report
import base64
from IPython.display import HTML, Image, display
print("building", n, "rows")
frame = pd.DataFrame({{"x": range(n), "y": [i * 0.5 for i in range(n)]}})
display(HTML("<b>summary</b>"))
display(Image(data=base64.b64decode("{PNG_B64}"), format="png"))
total = float(frame["y"].sum())
total
"""


def _run_report(kernel_name: str, cwd: Path) -> list[Any]:
    with LiveKernel(kernel_name, cwd) as kernel:
        kernel.run(SETUP)
        report = kernel.run(REPORT)
        check = kernel.run("print(len(frame), frame['y'].iloc[-1], total)")
    return [report, check]


def test_a_cell_cached_in_one_kernel_hits_in_a_new_kernel(
    kernel_name: str, tmp_path: Path, store: Any
) -> None:
    first, first_check = _run_report(kernel_name, tmp_path)
    assert error_of(first) is None, error_of(first)
    assert "building 1000 rows" in stdout_of(first)
    assert "cached" not in stdout_of(first)
    assert result_of(first) == "249750.0"

    second, second_check = _run_report(kernel_name, tmp_path)  # a new kernel process
    out = stdout_of(second)
    assert out.startswith("cached · took ")
    assert "building 1000 rows" in out  # the printed output, replayed
    shown = displays_of(second)  # live run views of the widgets may come first
    assert [d.get("text/html") for d in shown if "data-kf-view" not in d.get("text/html", "")][
        :1
    ] == ["<b>summary</b>"]
    assert [d["image/png"] for d in shown if "image/png" in d] == [PNG_B64]
    assert result_of(second) == "249750.0"
    assert stdout_of(second_check) == stdout_of(first_check) == "1000 499.5 249750.0\n"

    rows = store.sql(
        "SELECT t.state_name, t.inputs, t.outputs, f.state_name AS session "
        "FROM task_runs t JOIN flow_runs f ON t.flow_run_id = f.id "
        "ORDER BY t.created"
    )
    assert rows["state_name"].tolist() == ["Completed", "Cached"]
    assert rows["session"].tolist() == ["Completed", "Completed"]  # ended at shutdown
    inputs = json.loads(rows["inputs"][0])
    assert set(inputs) == {"n", "pd"}
    outputs = json.loads(rows["outputs"][0])
    assert {"frame", "total"} <= set(outputs)
    assert json.loads(rows["outputs"][1]) == outputs


def test_papermill_run_of_the_notebook_hits_the_interactive_cache(
    kernel_name: str, tmp_path: Path, store: Any
) -> None:
    import papermill

    notebook = tmp_path / "report.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell(REPORT)]
    )
    nbformat.write(nb, notebook)
    interactive, _ = _run_report(kernel_name, tmp_path)
    assert "cached" not in stdout_of(interactive)
    executed = tmp_path / "report-out.ipynb"
    papermill.execute_notebook(
        str(notebook), str(executed), kernel_name=kernel_name, cwd=str(tmp_path), progress_bar=False
    )
    report = nbformat.read(executed, as_version=4).cells[1]
    assert stdout_of(report).startswith("cached · took ")
    assert "<b>summary</b>" in [d.get("text/html") for d in displays_of(report)]


def test_event_loop_sync_and_async_flows_and_tasks(kernel_name: str, tmp_path: Path) -> None:
    with LiveKernel(kernel_name, tmp_path) as kernel:
        loaded = kernel.run("%load_ext kernelflow")
        assert loaded.outputs == []  # loading is silent
        kernel.run(
            "from kernelflow import flow, task\n"
            "@task\ndef double(x):\n    return 2 * x\n"
            "@task\nasync def adouble(x):\n    return 2 * x\n"
            "@flow\ndef pipeline(n):\n    return double(n) + adouble(n)\n"
            "@flow\nasync def apipeline(n):\n    return double(n) + await adouble(n)\n"
        )
        cells = {
            "pipeline(5)": "20",  # sync flow, calling an async task
            "double(4)": "8",  # sync task at the top level
            "await apipeline(3)": "12",  # async flow with top-level await
            "await adouble(6)": "12",  # async task with top-level await
            "double.submit(7).result()": "14",  # submit at the top level: the session run
        }
        for source, expected in cells.items():
            executed = kernel.run(source)
            assert error_of(executed) is None, (source, error_of(executed))
            assert result_of(executed) == expected, source
        awaited = kernel.run(
            "%%task\nimport asyncio\nv = await asyncio.sleep(0, result=2)\npipeline(v)"
        )
        assert error_of(awaited) is None, error_of(awaited)
        assert result_of(awaited) == "8"


def test_failures_staleness_and_why_in_a_kernel(
    kernel_name: str, tmp_path: Path, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = str(tmp_path / "analysis.ipynb")
    monkeypatch.setenv("JPY_SESSION_NAME", notebook)  # as Jupyter sets it for its kernels
    with LiveKernel(kernel_name, tmp_path) as kernel:
        kernel.run("%load_ext kernelflow\nbase = 2\nrate = 3")
        kernel.run("%%task make_a\na = base * rate")
        kernel.run("%%task make_b\nb = a + 1")
        kernel.run("base = 5")
        kernel.run("%%task make_a\na = base * rate")
        why = kernel.run("%kf why make_a")
        assert "input 'base' changed" in stdout_of(why)
        assert "rate" not in stdout_of(why)
        stale = kernel.run("%kf stale")
        assert stdout_of(stale).startswith("1. make_b: 'a' changed")
        rerun = kernel.run("%kf rerun\nprint('b is', b)")
        assert "b is 16" in stdout_of(rerun)
        failing = kernel.run("%%task broken\ndef f():\n    return 1 / 0\nf()")
        error = error_of(failing)
        assert error["ename"] == "ZeroDivisionError"
        traceback = plain("\n".join(error["traceback"]))
        assert "kernelflow" not in traceback
        assert "----> 3     return 1 / 0" in traceback
        assert result_of(kernel.run("a + b")) == "31"  # the kernel goes on
    rows = store.sql(
        "SELECT t.state_name, f.name AS session, f.flow_name, f.parameters FROM task_runs t "
        "JOIN flow_runs f ON t.flow_run_id = f.id ORDER BY t.created"
    )
    assert rows["state_name"].tolist() == [
        "Completed",
        "Completed",
        "Completed",
        "Completed",
        "Failed",
    ]
    # One session run, named by the notebook's file name; its path in the flow name.
    assert set(rows["session"]) == {"analysis.ipynb"}
    assert set(rows["flow_name"]) == {notebook}
    assert json.loads(rows["parameters"][0]) == {"notebook_path": notebook}
