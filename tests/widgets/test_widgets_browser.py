"""The live run view in a real browser: JupyterLab in a subprocess, Debian's Chromium.

A notebook's flow submits slow task runs; the test watches the task run table in
the page change state live (Running, a retry, then Completed), opens a row for
its logs, checks a ``%%task`` status line and the run history, and saves
screenshots. As shared/notes/jupyterlab-testing.md prescribes: a real
``jupyter lab`` on a free port with isolated Jupyter, workspace and settings
directories; Chromium through Python Playwright's sync API with
``executable_path`` (never ``playwright install``); no pytest-jupyter fixtures
in this module; readiness waits on the status bar's "Idle".

Screenshots go to ``$KERNELFLOW_SCREENSHOTS`` when set, else a temporary directory.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from lab_helpers import TOKEN, chromium, lab_env, make_dirs, python_env, running_lab, screenshot_dir

pytestmark = pytest.mark.slow

CELLS = [
    """%load_ext kernelflow
import time
from kernelflow import flow, task

@task(retries=1, retry_delay_seconds=1)
def step(i):
    time.sleep(1.0 + 0.6 * i)
    if i == 1 and not failed:
        failed.append(i)
        raise ValueError("flaky once")
    return i

@flow
def slow_pipeline(n=4):
    return [f.result() for f in [step.submit(i) for i in range(n)]]

failed = []""",
    "slow_pipeline()",
    "%%task pause --no-cache\ntime.sleep(1.5)\nz = 1",
    "from kernelflow.widgets import RunHistory\nRunHistory()",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running ``jupyter lab`` serving a directory with the test notebook; its URL."""
    dirs = make_dirs(tmp_path_factory.mktemp("lab"))
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nb, dirs["notebooks"] / "live.ipynb")
    env = lab_env(dirs, python_env(KERNELFLOW_HOME=str(dirs["home"])))
    with running_lab(dirs, env) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    return screenshot_dir(tmp_path)


def run_cell(page: Any, index: int) -> None:
    """Run cell ``index`` with Shift+Enter, once the kernel is idle, and check it started."""
    page.wait_for_function(
        "[...document.querySelectorAll('.jp-StatusBar-TextItem')]"
        ".some(e => e.textContent.includes('| Idle'))",
        timeout=60_000,
    )
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    prompt = cell.locator(".jp-InputArea-prompt")
    deadline = time.monotonic() + 20
    while not re.search(r"\[[\d*]+\]", prompt.text_content() or ""):
        assert time.monotonic() < deadline, f"cell {index} did not start"
        time.sleep(0.1)


def row_states(page: Any, cell: Any) -> list[str]:
    return cell.locator("[data-kf-view=run] tbody tr [data-kf-state]").all_text_contents()


def test_live_view_changes_state_in_the_browser(lab: str, browser: Any, screenshots: Path) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{lab}/lab/tree/live.ipynb?token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    run_cell(page, 0)
    run_cell(page, 1)
    flow_cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
    flow_cell.locator("[data-kf-view=run]").wait_for(timeout=30_000)

    seen: list[list[str]] = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        states = row_states(page, flow_cell)
        if states and (not seen or seen[-1] != states):
            seen.append(states)
            if any(s == "AwaitingRetry" for s in states) and len(seen) < 50:
                page.screenshot(path=str(screenshots / "live-view-running.png"))
        if len(states) == 4 and all(s == "Completed" for s in states):
            break
        time.sleep(0.1)
    assert seen, "the table appeared"
    assert seen[-1] == ["Completed"] * 4, seen
    assert any("Running" in states for states in seen), seen
    assert any("AwaitingRetry" in s or "Retrying" in s for s in seen), seen
    assert len(seen) >= 3, f"the table changed live: {seen}"
    header = flow_cell.locator("[data-kf-view=run] [data-kf-state]").first.text_content()
    assert header == "Completed"
    assert "4 / 4 task runs finished" in flow_cell.locator("[data-kf-view=run]").inner_text()

    # The finished view is static HTML now (what a saved notebook keeps): no widget left.
    flow_cell.locator(
        ".jp-OutputArea-output[data-mime-type='text/html'] [data-kf-view=run]"
    ).wait_for(timeout=20_000)
    # Opening the retried run shows its failed try and its log lines, without the kernel.
    flow_cell.locator("[data-kf-row-detail] summary", has_text="step-1").click()
    detail = flow_cell.locator("[data-kf-row-detail] details[open]")
    detail.wait_for(timeout=10_000)
    assert "Try 1 failed" in detail.inner_text() and "flaky once" in detail.inner_text()
    assert "will start 1 second(s) from now" in detail.inner_text()
    page.screenshot(path=str(screenshots / "live-view-done.png"))

    # A %%task cell: one status line, running then completed.
    run_cell(page, 2)
    task_cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    status = task_cell.locator("[data-kf-view=status]")
    status.wait_for(timeout=20_000)
    words: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = status.inner_text()
        if not words or words[-1] != text:
            words.append(text)
        if "completed in" in text:
            break
        time.sleep(0.1)
    assert any("running" in w for w in words), words
    assert "completed in" in words[-1], words

    # The run history lists the flow run; opening it draws the timeline.
    run_cell(page, 3)
    history_cell = page.locator(".jp-Notebook .jp-Cell").nth(3)
    history = history_cell.locator("[data-kf-view=history]")
    history.wait_for(timeout=30_000)
    history.locator("tbody tr", has_text="slow-pipeline").first.click()
    history_cell.locator("[data-kf-timeline]").wait_for(timeout=20_000)
    assert history_cell.locator("[data-kf-timeline] rect").count() == 4
    page.screenshot(path=str(screenshots / "run-history.png"), full_page=True)
    assert not [e for e in errors if "kernelflow" in e or "anywidget" in e.lower()], errors
    page.close()
