"""Live views in a real kernel: the widget messages a front end receives, read off IOPub.

A notebook is executed with nbclient; every IOPub message it processes is kept,
so the test sees exactly what a front end would: the ``comm_open`` of each view
and its ``comm_msg`` updates (one ``html`` state each), in order, including
those sent while a later cell runs (after the cell that started the runs has
returned). The saved notebook is checked too: once final, each view's output
is replaced by the final table as static HTML (no widget view left in it).
"""

from __future__ import annotations

import re
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

SETUP = """
%load_ext kernelflow
import time
from kernelflow import flow, task

@task(retries=1, retry_delay_seconds=0.5)
def slow(i):
    time.sleep(0.8)  # longer than a view waits before its first update (FIRST_UPDATE)
    if i == 1 and not failed:
        failed.append(i)
        raise ValueError("flaky once")
    return i

@task(cache_key_fn=lambda ctx, args: f"answer-{args['x']}")
def answer(x):
    time.sleep(0.3)
    return 42 + x

@flow
def pipeline(n=3):
    return [f.result() for f in [slow.submit(i) for i in range(n)]]

@flow
def cached_flow():
    return answer(0)

failed = []
"""


class RecordingClient(NotebookClient):
    """An nbclient client that keeps every IOPub message it processes, with its cell."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.messages: list[tuple[int, dict]] = []

    def process_message(self, msg: dict, cell: Any, cell_index: int) -> Any:
        self.messages.append((cell_index, msg))
        return super().process_message(msg, cell, cell_index)


def states_in(html: str) -> list[str]:
    """The state badges of a view's HTML, header first, then one per row."""
    return re.findall(r'data-kf-state="([A-Za-z]+)"', html)


def views(client: RecordingClient) -> dict[str, dict]:
    """Per widget model: its class, the cell that opened it, and every html it was sent."""
    found: dict[str, dict] = {}
    for cell_index, msg in client.messages:
        content = msg["content"]
        if msg["msg_type"] == "comm_open":
            state = content["data"]["state"]
            if state.get("_anywidget_id", "").startswith("kernelflow.widgets"):
                found[content["comm_id"]] = {
                    "class": state["_anywidget_id"].rsplit(".", 1)[1],
                    "cell": cell_index,
                    "html": [state["html"]],
                    "cells": [cell_index],
                }
        elif msg["msg_type"] == "comm_msg" and content["comm_id"] in found:
            state = content["data"].get("state", {})
            if "html" in state:
                found[content["comm_id"]]["html"].append(state["html"])
                found[content["comm_id"]]["cells"].append(cell_index)
    return found


@pytest.fixture(scope="module")
def executed(module_kernel: str, tmp_path_factory: Any) -> tuple[RecordingClient, Any]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(source)
        for source in (
            SETUP,
            "pipeline()",
            "cached_flow()",
            "cached_flow()",
            "futures = [slow.submit(10 + i) for i in range(3)]",
            "time.sleep(2.5)",
        )
    ]
    client = RecordingClient(
        nb,
        kernel_name=module_kernel,
        timeout=120,
        resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}},
    )
    client.execute()
    return client, nb


def test_flow_view_goes_running_retrying_completed(executed: tuple) -> None:
    client, nb = executed
    flow_views = [v for v in views(client).values() if v["cell"] == 1]
    assert len(flow_views) == 1 and flow_views[0]["class"] == "RunView"
    updates = [states_in(html) for html in flow_views[0]["html"]]
    # Each update is one comm message holding the whole table (header + 3 task runs).
    assert any(u[:1] == ["Running"] and "Running" in u[1:] for u in updates), updates
    assert any("AwaitingRetry" in u or "Retrying" in u for u in updates), updates
    assert updates[-1] == ["Completed"] * 4
    first_done = next(i for i, u in enumerate(updates) if u.count("Completed") >= 2)
    assert any("Running" in u for u in updates[:first_done]), "running came before completed"
    # The cell's saved output: the widget view was replaced by the final table as static
    # HTML, so a reopened notebook shows it (no "model not found").
    (output,) = [o for o in nb.cells[1].outputs if o["output_type"] == "display_data"]
    assert "application/vnd.jupyter.widget-view+json" not in output["data"]
    assert states_in(output["data"]["text/html"]) == ["Completed"] * 4
    assert "data-kf-detail" not in output["data"]["text/html"], "static HTML opens no row"
    assert "3 / 3 task runs finished" in output["data"]["text/plain"]


def test_second_call_of_a_cached_task_shows_cached(executed: tuple) -> None:
    client, nb = executed
    by_cell = {v["cell"]: v for v in views(client).values()}
    assert "Cached" not in states_in(by_cell[2]["html"][-1])
    assert states_in(by_cell[3]["html"][-1]) == ["Completed", "Cached"]
    (output,) = [o for o in nb.cells[3].outputs if o["output_type"] == "display_data"]
    assert "yes" in output["data"]["text/html"], "the cached column"


def test_top_level_submissions_update_after_their_cell_returned(executed: tuple) -> None:
    client, nb = executed
    (view,) = [v for v in views(client).values() if v["cell"] == 4]
    later = [html for html, cell in zip(view["html"], view["cells"], strict=True) if cell == 5]
    assert later, "updates arrived while the next cell ran"
    assert states_in(later[-1]) == ["Completed"] * 4
    assert any("Running" in states_in(html) for html in view["html"])
    # nbclient applied the final update_display_data to cell 4's output.
    (output,) = [o for o in nb.cells[4].outputs if o["output_type"] == "display_data"]
    assert states_in(output["data"]["text/html"]) == ["Completed"] * 4


def test_widget_messages_are_throttled(executed: tuple) -> None:
    client, _ = executed
    for view in views(client).values():
        assert len(view["html"]) <= 20, "a few updates a second at most, whatever the runs do"
