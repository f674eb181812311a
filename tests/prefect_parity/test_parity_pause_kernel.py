"""The notebook form of ``pause_flow_run(wait_for_input=...)``, in a real kernel.

The test is the front end: it starts a kernel with jupyter_client, runs a cell
that pauses, finds the form's widget models in the ``comm_open`` messages on
IOPub, and, once the form is displayed (a person cannot click before), sends
what a browser sends: ``{"method": "update", "state": {...}}`` for each field
and ``{"method": "custom", "content": {"event": "click"}}`` for Resume. The
cell is still running meanwhile, so this proves the widgets' messages are
handled while the kernel's main thread waits in the pause. A second test
resumes a ``%%task`` cell's pause from ``kernelflow flow-run resume`` in
another process, and the form says so.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import kernelflow

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

SETUP = """
%load_ext kernelflow
from typing import Literal
import pydantic
from kernelflow import flow, pause_flow_run
from kernelflow.input import RunInput

class Person(RunInput):
    name: str
    age: int = 30
    mood: Literal["happy", "sad"] = "happy"

    @pydantic.model_validator(mode="after")
    def named(self):
        if not self.name:
            raise ValueError("a name, please")
        return self

@flow
def greet() -> str:
    person = pause_flow_run(
        wait_for_input=Person.with_initial_data(description="**Who is there?**"), timeout=120
    )
    print(f"Hello, {person.name} ({person.age}, {person.mood})")
    return person.name
"""


class Kernel:
    """A real kernel and the IOPub messages it sent, as a front end sees them."""

    def __init__(self, kernel_name: str, cwd: Path) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(
            kernel_name=kernel_name, cwd=str(cwd), startup_timeout=120
        )
        self.messages: list[dict] = []

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def execute(self, code: str) -> str:
        """Send a cell; return its message id (the cell runs on)."""
        return self.client.execute(code)

    def run(self, code: str, timeout: float = 120) -> None:
        """Run a cell to its end; fail if it raised."""
        msg_id = self.execute(code)
        self.finish(msg_id, timeout)

    def wait_for(self, found: Callable[[], Any], timeout: float = 60) -> Any:
        """Read IOPub until ``found()`` gives something (bounded)."""
        deadline = time.monotonic() + timeout
        while (result := found()) is None:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "not seen on IOPub in time"
            self.messages.append(self.client.get_iopub_msg(timeout=remaining))
        return result

    def finish(self, msg_id: str, timeout: float = 120) -> None:
        """Wait until the cell ``msg_id`` is done; fail if it raised."""
        self.wait_for(lambda: self.idle(msg_id), timeout)
        reply = self.client.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=timeout)
        assert reply["content"]["status"] == "ok", self.text_of(msg_id, "stderr")

    def idle(self, msg_id: str) -> bool | None:
        return (
            any(
                m["msg_type"] == "status"
                and m["content"]["execution_state"] == "idle"
                and m["parent_header"].get("msg_id") == msg_id
                for m in self.messages
            )
            or None
        )

    def text_of(self, msg_id: str, stream: str = "stdout") -> str:
        return "".join(
            m["content"]["text"]
            for m in self.messages
            if m["msg_type"] == "stream"
            and m["content"]["name"] == stream
            and m["parent_header"].get("msg_id") == msg_id
        )

    def of_type(self, msg_type: str, msg_id: str | None = None) -> list[dict]:
        return [
            m
            for m in self.messages
            if m["msg_type"] == msg_type
            and (msg_id is None or m["parent_header"].get("msg_id") == msg_id)
        ]

    def send_comm(self, comm_id: str, data: dict) -> None:
        """A ``comm_msg`` from the front end to the kernel's widget ``comm_id``."""
        self.client.shell_channel.send(
            self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        )


@pytest.fixture
def kernel(kernel_name: str, tmp_path: Path) -> Iterator[Kernel]:
    started = Kernel(kernel_name, tmp_path)
    try:
        yield started
    finally:
        started.close()


def form_of(kernel: Kernel, msg_id: str) -> dict[str, str] | None:
    """Comm ids of the form's widgets by description, once the form itself is displayed."""
    opened = {
        m["content"]["comm_id"]: m["content"]["data"]["state"]
        for m in kernel.of_type("comm_open", msg_id)
    }
    shown = {
        m["content"]["data"].get("application/vnd.jupyter.widget-view+json", {}).get("model_id")
        for m in kernel.of_type("display_data", msg_id)
    }
    if not any(opened.get(model_id, {}).get("_model_name") == "VBoxModel" for model_id in shown):
        return None
    return {
        state["description"]: comm_id
        for comm_id, state in opened.items()
        if state.get("description") in {"name", "age", "mood", "value", "Resume"}
    } | {
        "status": next(
            comm_id
            for comm_id, state in opened.items()
            if state.get("_model_name") == "HTMLModel" and state.get("value") == ""
        )
    }


def updates_to(kernel: Kernel, comm_id: str) -> list[dict]:
    return [
        m["content"]["data"]["state"]
        for m in kernel.of_type("comm_msg")
        if m["content"]["comm_id"] == comm_id and m["content"]["data"].get("method") == "update"
    ]


def final_line(kernel: Kernel, msg_id: str) -> str | None:
    """The text that replaced the form when the pause ended."""
    for m in kernel.of_type("update_display_data", msg_id):
        text = m["content"]["data"].get("text/plain", "")
        if "widget-view" not in str(m["content"]["data"]) and text:
            return text
    return None


def states_of(run_id: str) -> list[tuple[str, str | None]]:
    frame = kernelflow.sql(
        "SELECT state_name, message FROM states WHERE run_id = ? ORDER BY timestamp, seq",
        [run_id],
    )
    return [tuple(row) for row in frame.itertuples(index=False)]


def paused_run_id(seconds: float = 60) -> str:
    """The id of the flow run that is paused, from the store (bounded wait)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = kernelflow.sql("SELECT id FROM flow_runs WHERE state_type = 'PAUSED'")
        if len(found):
            return found["id"].iloc[0]
        time.sleep(0.05)
    raise AssertionError(f"no paused flow run within {seconds} s")


def test_the_form_in_the_cell_takes_the_input_and_resumes_the_flow(kernel: Kernel) -> None:
    kernel.run(SETUP)
    msg_id = kernel.execute("print('returned', greet())")
    form = kernel.wait_for(lambda: form_of(kernel, msg_id))
    opened = {
        m["content"]["comm_id"]: m["content"]["data"]["state"] for m in kernel.of_type("comm_open")
    }
    assert opened[form["name"]]["_model_name"] == "TextModel"
    assert (opened[form["age"]]["_model_name"], opened[form["age"]]["value"]) == (
        "IntTextModel",
        30,
    )
    assert opened[form["mood"]]["_model_name"] == "DropdownModel"
    assert opened[form["mood"]]["_options_labels"] == ["happy", "sad"]
    # The description is shown above the form, as Markdown.
    markdown = [m["content"]["data"] for m in kernel.of_type("display_data", msg_id)]
    assert any(d.get("text/markdown") == "**Who is there?**" for d in markdown)
    run_id = paused_run_id()
    assert states_of(run_id)[-1][0] == "Paused"

    # A click with input the model refuses: the reason shows under the button; still paused.
    kernel.send_comm(form["age"], {"method": "update", "state": {"value": 36}, "buffer_paths": []})
    kernel.send_comm(form["Resume"], {"method": "custom", "content": {"event": "click"}})
    kernel.wait_for(
        lambda: (
            any("a name, please" in u.get("value", "") for u in updates_to(kernel, form["status"]))
            or None
        )
    )
    assert not kernel.idle(msg_id)
    assert states_of(run_id)[-1][0] == "Paused"

    kernel.send_comm(
        form["name"], {"method": "update", "state": {"value": "Ada"}, "buffer_paths": []}
    )
    kernel.send_comm(form["mood"], {"method": "update", "state": {"index": 1}, "buffer_paths": []})
    kernel.send_comm(form["Resume"], {"method": "custom", "content": {"event": "click"}})
    kernel.finish(msg_id)

    assert kernel.text_of(msg_id) == "Hello, Ada (36, sad)\nreturned Ada\n"
    assert "resumed from this form" in final_line(kernel, msg_id)
    names = [name for name, _ in states_of(run_id)]
    assert names == ["Pending", "Running", "Paused", "Running", "Completed"]
    assert states_of(run_id)[3][1] == "Resumed from the notebook form"


def test_a_task_cell_pause_resumed_from_the_cli_says_so_in_the_form(
    kernel: Kernel, child_env: dict[str, str]
) -> None:
    kernel.run("%load_ext kernelflow\nfrom kernelflow import pause_flow_run")
    msg_id = kernel.execute(
        "%%task\n"
        "answer = pause_flow_run(wait_for_input=str, timeout=120)\n"
        "print(f'Hello, {answer}')"
    )
    kernel.wait_for(lambda: form_of(kernel, msg_id))
    run_id = paused_run_id()  # the notebook session's run: the %%task cell is one of its tasks
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "kernelflow.cli",
            "flow-run",
            "resume",
            run_id,
            "--input",
            "value=Bob",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env,
        cwd=REPO,
    )
    assert resumed.returncode == 0, resumed.stderr
    kernel.finish(msg_id)
    assert "Hello, Bob" in kernel.text_of(msg_id)
    assert "was resumed from elsewhere (kernelflow flow-run resume)" in final_line(kernel, msg_id)
    assert states_of(run_id)[-1] == ("Running", "Resumed by kernelflow flow-run resume")
