"""Schedule and act from JupyterLab: a real ``jupyter lab`` that runs the scheduler itself.

No separate scheduler process: the lab's server extension holds the lease and
runs the deployments. In Debian's Chromium (dark theme) the test opens
notebooks/04, schedules it from its toolbar's Schedule dialog (typed
parameters, a bad schedule refused, the preview of the next fire times),
creates it with an interval, runs it now with a parameter override, watches
the run complete in the panel, opens the executed notebook in a lab tab and
its HTML copy, pauses and resumes the deployment, cancels a long run of a
second deployment and deletes the first, with zero console errors.

Screenshots (dark theme) go to ``$KERNELFLOW_SCREENSHOTS`` when set, else a
temporary directory. With ``KERNELFLOW_UPDATE_DOCS_SCREENSHOT=1`` the panel's
screenshot is also written to docs/panel.png for the README.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_helpers import (
    REPO,
    TOKEN,
    Lab,
    chromium,
    console_errors,
    lab_env,
    make_dirs,
    python_env,
    running_lab,
    screenshot_dir,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NOTEBOOK = "04-scheduled-report.ipynb"
NAME = "04-scheduled-report"
SLOW = "slow-job"
DARK = {"@jupyterlab/apputils-extension/themes": {"theme": "JupyterLab Dark"}}
# A deployment run starts a fresh kernel and runs papermill: slow on a loaded 2-core machine.
RUN_TIMEOUT = 240


@pytest.fixture
def jp_asyncio_loop() -> None:
    """Off: Playwright's sync API runs its own event loop in this module."""


@pytest.fixture
def jp_server_cleanup() -> None:
    """Off: this module starts no in-process Jupyter server."""


def slow_notebook() -> dict[str, Any]:
    """A deployable notebook that sleeps for its ``seconds`` parameter."""
    cell = {"cell_type": "code", "execution_count": None, "outputs": []}
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "cells": [
            {
                **cell,
                "id": "params",
                "metadata": {"tags": ["parameters"]},
                "source": "seconds = 600",
            },
            {**cell, "id": "sleep", "metadata": {}, "source": "import time\ntime.sleep(seconds)"},
        ],
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` (dark theme) on a root with notebooks/04 and a slow notebook."""
    root = tmp_path_factory.mktemp("schedule")
    dirs = make_dirs(root, DARK)
    shutil.copy(REPO / "notebooks" / NOTEBOOK, dirs["notebooks"] / NOTEBOOK)
    (dirs["notebooks"] / "slow.ipynb").write_text(json.dumps(slow_notebook()))
    env = lab_env(dirs, python_env(KERNELFLOW_HOME=str(dirs["home"])))
    with running_lab(dirs, env) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def runs_of(lab: Lab, deployment: str) -> list[dict[str, Any]]:
    status, body = lab.api("GET", f"runs?deployment={deployment}&limit=50")
    assert status == 200, body
    return body["runs"]


def run_row(panel: Any, run_id: str) -> Any:
    return panel.locator(f'.kf-RunList > .kf-RunRow[data-kf-run-id="{run_id}"]')


def run_now(page: Any, panel: Any, lab: Lab, name: str, overrides: dict[str, str]) -> str:
    """Click Run now on ``name``, fill ``overrides`` in its dialog; the new run's id."""
    before = {r["id"] for r in runs_of(lab, name)}
    panel.locator(f'[data-kf-actions-for="{name}"] [data-kf-action="run"]').click()
    dialog = page.locator(".kf-Dialog")
    dialog.wait_for(timeout=20_000)
    for param, value in overrides.items():
        dialog.locator(f'input[data-kf-param="{param}"]').fill(value)
    dialog.locator("button.jp-mod-accept").click()
    dialog.wait_for(state="detached", timeout=20_000)
    new = wait_until(
        page,
        lambda: [r["id"] for r in runs_of(lab, name) if r["id"] not in before],
        30,
        f"a new run of {name}",
    )
    return new[0]


def test_schedule_run_open_pause_cancel_delete(lab: Lab, browser: Any, tmp_path: Path) -> None:
    shots = screenshot_dir(tmp_path)
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, timezone_id="Europe/Berlin"
    )
    page = context.new_page()
    errors = console_errors(page)
    refused: list[tuple[int, str]] = []
    page.on("response", lambda r: refused.append((r.status, r.url)) if r.status >= 400 else None)
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?reset&token={TOKEN}")
    page.locator("#jp-main-dock-panel").wait_for(timeout=60_000)
    assert page.locator("body").get_attribute("data-jp-theme-light") == "false"

    # The notebook's toolbar has the Schedule button; it opens the dialog.
    button = page.locator('.jp-NotebookPanel-toolbar [data-jp-item-name="kernelflow-schedule"]')
    button.wait_for(timeout=60_000)
    button.locator("button").click()
    dialog = page.locator(".kf-Dialog")
    dialog.wait_for(timeout=20_000)
    assert dialog.locator("#kf-schedule-name").input_value() == NAME
    assert dialog.locator("#kf-schedule-timezone").input_value() == "Europe/Berlin"
    labels = dialog.locator(".kf-ParamLabel").all_text_contents()
    assert labels == ["day: str", "n: int", "ratio: float"]
    create = dialog.locator("button.jp-mod-accept")
    assert create.inner_text() == "Create"

    # A bad cron: the server's one-line message under the schedule, Create disabled.
    dialog.locator("#kf-schedule-kind").select_option("cron")
    dialog.locator("#kf-schedule-value").fill("61 * * * *")
    error = dialog.locator(".kf-PreviewError")
    wait_until(page, lambda: error.count() and error.inner_text().strip(), 20, "the cron error")
    assert "\n" not in error.inner_text().strip()
    wait_until(page, create.is_disabled, 10, "Create disabled")

    # An interval: a plain-language preview and the next 5 fire times.
    dialog.locator("#kf-schedule-kind").select_option("interval")
    dialog.locator("#kf-schedule-value").fill("1h")
    times = dialog.locator(".kf-PreviewTimes li")
    wait_until(page, lambda: times.count() == 5, 20, "the next 5 fire times")
    assert dialog.locator(".kf-PreviewText").inner_text().strip()
    assert create.is_enabled()

    # A parameter of the wrong type is refused by its input; an int is taken.
    n = dialog.locator('input[data-kf-param="n"]')
    n.fill("2.5")
    wait_until(page, create.is_disabled, 10, "Create disabled by n = 2.5")
    n.fill("7")
    wait_until(page, create.is_enabled, 10, "Create enabled again")
    dialog.locator("#kf-schedule-retries").fill("1")
    page.screenshot(path=str(shots / "schedule-dialog-dark.png"))
    create.click()
    dialog.wait_for(state="detached", timeout=20_000)

    # The panel opened on the new deployment; this server holds the scheduler lease.
    panel = page.locator("#kernelflow-runs")
    panel.wait_for(timeout=20_000)
    deployment = panel.locator(f'.kf-DeploymentCard[data-kf-deployment="{NAME}"]')
    deployment.wait_for(timeout=20_000)
    scheduler = panel.locator(".kf-Scheduler")
    wait_until(page, lambda: "this Jupyter server" in scheduler.inner_text(), 20, "the lease")
    status, listed = lab.api("GET", "deployments")
    assert status == 200
    (stored,) = [d for d in listed["deployments"] if d["name"] == NAME]
    assert not stored["paused"]

    # The same name again, from the command palette's command: the server's one-line
    # message (409) shows in the dialog, which stays open until cancelled.
    page.locator(".jp-NotebookPanel:visible").first.click()
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(".lm-CommandPalette-input")
    palette.wait_for(timeout=10_000)
    palette.fill("Schedule this notebook")
    page.locator(".lm-CommandPalette-item", has_text="Schedule this notebook").first.click()
    dialog.wait_for(timeout=20_000)
    wait_until(page, lambda: dialog.locator(".kf-PreviewTimes li").count() == 5, 20, "preview")
    dialog.locator("button.jp-mod-accept").click()
    failure = dialog.locator(".kf-FormError")
    wait_until(page, lambda: failure.is_visible() and NAME in failure.inner_text(), 20, "409")
    assert "\n" not in failure.inner_text().strip()
    dialog.locator("button.jp-mod-reject").click()
    dialog.wait_for(state="detached", timeout=20_000)

    # Run now with n = 3; the run appears in the panel and completes there.
    run_id = run_now(page, panel, lab, NAME, {"n": "3"})
    row = run_row(panel, run_id)
    row.wait_for(timeout=30_000)
    assert row.locator(".kf-KindBadge").inner_text() == "deployment"
    wait_until(
        page,
        lambda: row.locator(".kf-StateBadge").inner_text() == "Completed",
        RUN_TIMEOUT,
        "the run to complete in the panel",
    )
    page.screenshot(path=str(shots / "panel-deployment-dark.png"))
    if os.environ.get("KERNELFLOW_UPDATE_DOCS_SCREENSHOT") == "1":
        # The panel down to its deployments: the README shows content, not empty sidebar.
        box = panel.bounding_box()
        end = panel.locator(".kf-Deployments").bounding_box()
        assert box and end
        height = end["y"] + end["height"] + 8 - box["y"]
        clip = {"x": box["x"], "y": box["y"], "width": box["width"], "height": height}
        page.screenshot(path=str(REPO / "docs" / "panel.png"), clip=clip)

    # Filter by deployment: only its runs; keyboard: Enter on a focused row opens it.
    panel.locator(".kf-DeploymentFilter").select_option(NAME)
    rows = panel.locator(".kf-RunList > .kf-RunRow")

    def kinds() -> list[str]:
        # One read of the whole list: it may be redrawn between two reads.
        return rows.evaluate_all("rows => rows.map(r => r.dataset.kfKind)")

    wait_until(page, lambda: set(kinds()) == {"deployment"}, 20, "the deployment filter")
    row.focus()
    page.keyboard.press("Enter")
    detail = panel.locator(f'.kf-RunDetail[data-kf-run-id="{run_id}"]')
    detail.wait_for(timeout=20_000)
    params = detail.locator(".kf-ParamList").inner_text()
    assert "n: int = 3" in params, params
    detail.locator('[data-kf-action="open-notebook"]').click()
    executed = page.locator(".jp-NotebookPanel:visible")
    wait_until(
        page,
        lambda: "Report for 2026-01-01: 3 values" in executed.inner_text(),
        60,
        "the executed notebook in a tab",
    )
    # Named after the deployment and the run; a read-only copy that cannot be saved.
    (run,) = [r for r in runs_of(lab, NAME) if r["id"] == run_id]
    label = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    assert label.inner_text() == f"{NAME}-{run['name']}.ipynb"
    page.screenshot(path=str(shots / "executed-notebook-dark.png"))

    # Its HTML copy, in a sandboxed frame.
    detail.locator('[data-kf-action="open-html"]').click()
    frame = page.locator(".kf-HtmlFrame iframe")
    frame.wait_for(timeout=20_000)
    assert frame.get_attribute("sandbox") == ""
    body = page.frame_locator(".kf-HtmlFrame iframe").locator("body")
    wait_until(page, lambda: "Report for 2026-01-01: 3 values" in body.inner_text(), 30, "the HTML")

    # Pause, then resume, from the deployment's row.
    detail.locator(".kf-Back").click()
    panel.locator(".kf-DeploymentFilter").select_option("")
    actions = panel.locator(f'[data-kf-actions-for="{NAME}"]')
    actions.locator('[data-kf-action="pause"]').click()
    wait_until(page, lambda: deployment.locator(".kf-Paused").count() == 1, 20, "paused")
    assert lab.api("GET", "deployments")[1]["deployments"][0]["paused"] is True
    actions.locator('[data-kf-action="resume"]').click()
    wait_until(page, lambda: deployment.locator(".kf-NextRun time").count() == 1, 20, "resumed")
    assert not [d for d in lab.api("GET", "deployments")[1]["deployments"] if d["paused"]]

    # Edit: a new interval, saved with PATCH; the card shows the new schedule.
    actions.locator('[data-kf-action="edit"]').click()
    dialog.wait_for(timeout=20_000)
    assert dialog.locator("button.jp-mod-accept").inner_text() == "Save"
    assert dialog.locator("#kf-schedule-name").is_disabled()
    dialog.locator("#kf-schedule-value").fill("2h")
    wait_until(page, lambda: dialog.locator(".kf-PreviewTimes li").count() == 5, 20, "preview")
    page.screenshot(path=str(shots / "edit-dialog-dark.png"))
    dialog.locator("button.jp-mod-accept").click()
    dialog.wait_for(state="detached", timeout=20_000)
    schedule = deployment.locator(".kf-DeploymentSchedule")
    wait_until(page, lambda: "7200" in schedule.inner_text(), 20, "the edited schedule")

    # A long run of another deployment: cancelled from its row.
    status, created = lab.api(
        "POST", "deployments", {"notebook": "slow.ipynb", "name": SLOW, "cron": "0 0 1 1 *"}
    )
    assert status == 201, created
    panel.locator(f'.kf-DeploymentCard[data-kf-deployment="{SLOW}"]').wait_for(timeout=20_000)
    slow_id = run_now(page, panel, lab, SLOW, {})
    slow_row = run_row(panel, slow_id)
    wait_until(
        page,
        lambda: slow_row.count() and slow_row.locator(".kf-StateBadge").inner_text() == "Running",
        RUN_TIMEOUT,
        "the long run to start",
    )
    slow_row.locator('[data-kf-action="cancel"]').click()
    wait_until(
        page,
        lambda: slow_row.locator(".kf-StateBadge").inner_text() == "Cancelled",
        120,
        "the long run to be cancelled",
    )
    page.screenshot(path=str(shots / "panel-cancelled-dark.png"))

    # Rerun the cancelled run (same deployment, same parameters), and cancel that too.
    before = {r["id"] for r in runs_of(lab, SLOW)}
    slow_row.locator('[data-kf-action="rerun"]').click()
    (again,) = wait_until(
        page,
        lambda: [r["id"] for r in runs_of(lab, SLOW) if r["id"] not in before],
        30,
        "the rerun",
    )
    again_row = run_row(panel, again)
    cancel = again_row.locator('[data-kf-action="cancel"]')
    wait_until(page, lambda: cancel.count() == 1, RUN_TIMEOUT, "the rerun's cancel button")
    cancel.click()
    wait_until(
        page,
        lambda: again_row.locator(".kf-StateBadge").inner_text() == "Cancelled",
        120,
        "the rerun to be cancelled",
    )

    # Delete, after a confirmation.
    actions.locator('[data-kf-action="delete"]').click()
    confirm = page.locator(".kf-Dialog")
    confirm.wait_for(timeout=20_000)
    assert NAME in confirm.inner_text()
    confirm.locator("button.jp-mod-accept").click()
    wait_until(page, lambda: deployment.count() == 0, 20, "the deployment to disappear")
    assert [d["name"] for d in lab.api("GET", "deployments")[1]["deployments"]] == [SLOW]

    # The only refused requests are the previews of the bad cron (400) and the
    # second Create (409), as the contract says; Chromium logs each as a console
    # error too. Nothing else went wrong.
    expected = {(400, "/kernelflow/api/schedule/preview"), (409, "/kernelflow/api/deployments")}
    assert refused and all(
        (status, url.split("?")[0].split(lab.url)[-1]) in expected for status, url in refused
    ), refused
    assert {status for status, _ in refused} == {400, 409}
    logged = [e for e in errors if e.startswith("Failed to load resource: the server responded")]
    assert len(logged) == len(refused), logged
    others = [e for e in errors if e not in logged]
    assert others == [], "\n".join(others)
    context.close()


PAUSING = """
from kernelflow import flow, pause_flow_run
from kernelflow.input import RunInput


class Approval(RunInput):
    approved: bool
    comment: str = ""


@flow(name="release")
def release() -> str:
    answer = pause_flow_run(wait_for_input=Approval, timeout=300)
    return f"shipped: {answer.comment}" if answer.approved else "held"


print(release())
"""


def test_paused_run_shows_its_form_and_resumes(lab: Lab, browser: Any, tmp_path: Path) -> None:
    script = tmp_path / "release.py"
    script.write_text(PAUSING)
    paused = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=lab.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = console_errors(page)
    try:
        page.goto(f"{lab.url}/lab?reset&token={TOKEN}")
        tab = page.locator('.jp-SideBar li[data-id="kernelflow-runs"]')
        tab.wait_for(timeout=60_000)
        tab.click()
        panel = page.locator("#kernelflow-runs")
        row = panel.locator(".kf-RunList > .kf-RunRow", has_text="release").first
        wait_until(
            page,
            lambda: row.count() and row.locator(".kf-StateBadge").inner_text() == "Paused",
            120,
            "the paused run",
        )
        row.click()
        form = panel.locator(".kf-PauseForm")
        form.wait_for(timeout=20_000)
        assert form.locator(".kf-ParamLabel").all_text_contents() == [
            "approved: bool",
            "comment: str",
        ]
        form.locator('input[data-kf-param="approved"]').check()
        form.locator('input[data-kf-param="comment"]').fill("looks good")
        page.screenshot(path=str(screenshot_dir(tmp_path) / "panel-paused-form-dark.png"))
        form.locator('[data-kf-action="resume-run"]').click()
        out, err = paused.communicate(timeout=120)
        assert paused.returncode == 0, err[-3000:]
        assert out.strip().splitlines()[-1] == "shipped: looks good"
        badge = panel.locator(".kf-RunDetail .kf-DetailTitle .kf-StateBadge")
        wait_until(page, lambda: badge.inner_text() == "Completed", 30, "the run to complete")
        assert panel.locator(".kf-PauseForm").count() == 0
    finally:
        if paused.poll() is None:
            paused.kill()
            paused.communicate(timeout=10)
    assert errors == [], "\n".join(errors)
    page.close()


def test_panel_warns_when_no_scheduler_holds_the_lease(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("no-scheduler")
    dirs = make_dirs(root, DARK)
    env = lab_env(dirs, python_env(KERNELFLOW_HOME=str(dirs["home"])))
    with running_lab(dirs, env, "--KernelflowApp.run_scheduler=False") as server:
        status, info = server.api("GET", "scheduler")
        assert status == 200 and info["holder"] is None and info["warning"], info
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = console_errors(page)
        page.goto(f"{server.url}/lab?reset&token={TOKEN}")
        tab = page.locator('.jp-SideBar li[data-id="kernelflow-runs"]')
        tab.wait_for(timeout=60_000)
        tab.click()
        warning = page.locator("#kernelflow-runs .kf-Scheduler.kf-mod-warning")
        warning.wait_for(timeout=20_000)
        assert warning.inner_text().strip() == info["warning"]
        assert warning.get_attribute("role") == "alert"
        page.screenshot(path=str(screenshot_dir(root) / "panel-no-scheduler-dark.png"))
        page.close()
    assert errors == [], "\n".join(errors)
