"""The runs panel in a real browser: JupyterLab in a subprocess, Debian's Chromium.

Real runs are recorded by a separate Python process into the module's store;
a real ``jupyter lab`` serves them; Playwright drives ``/usr/bin/chromium``.
The test opens the panel, checks the runs (newest first, colored states),
filters by state, opens a run for its task runs and logs, watches a running
flow appear and finish without a click (auto-refresh), checks that a hidden
panel stops asking the server, and saves screenshots.

As shared/notes/jupyterlab-testing.md prescribes: isolated Jupyter, workspace
and settings directories; Playwright's sync API with ``executable_path``
(never ``playwright install``); and pytest-jupyter's autouse event-loop
fixtures (imported by this folder's conftest) switched off here, because they
clash with Playwright's own loop.

The extension under test is the installed one (``make test``: the editable
install copied it into the environment). Where kernelflow is not installed,
the build in ``kernelflow/labextension`` and the server extension are wired in
through the lab's temporary Jupyter path and config instead.

Screenshots go to ``$KERNELFLOW_SCREENSHOTS`` when set, else a temporary directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_helpers import (
    TOKEN,
    chromium,
    make_dirs,
    python_env,
    running_lab,
    screenshot_dir,
    wait_until,
)
from lab_helpers import lab_env as isolated_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


SCRIPT = textwrap.dedent('''
    """Record real runs into $KERNELFLOW_HOME; print the recorded flow runs as JSON."""
    import json
    import sys
    import time

    from kernelflow import flow, get_run_logger, task

    failed_once = []


    @task(retries=1, retry_delay_seconds=0)
    def fetch(source: str) -> int:
        if source == "flaky" and not failed_once:
            failed_once.append(source)
            raise ConnectionError("upstream timed out")
        get_run_logger().info("fetched %s", source)
        return len(source)


    @task
    def explode() -> None:
        raise ValueError("the sensor returned garbage")


    @task
    def wait(seconds: float) -> float:
        get_run_logger().info("waiting %s s", seconds)
        time.sleep(seconds)
        return seconds


    @flow(name="load")
    def load(total: int) -> int:
        get_run_logger().info("loading %d rows", total)
        return total


    @flow(name="nightly-etl")
    def nightly_etl() -> int:
        sizes = [fetch(s) for s in ("orders", "flaky", "customers")]
        return load(sum(sizes))


    @flow(name="sensor-check")
    def sensor_check() -> None:
        explode()


    @flow(name="slow-report")
    def slow_report(seconds: float) -> float:
        return wait(seconds)


    @flow(name="chatty-job")
    def chatty(lines: int) -> None:
        log = get_run_logger()
        for i in range(lines):
            log.info("line %04d", i)


    if sys.argv[1] == "record":
        nightly_etl()
        sensor_check(return_state=True)
        import nbformat

        from kernelflow.deployments import deploy

        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}})
        nb.cells = [nbformat.v4.new_code_cell("print('report')")]
        nbformat.write(nb, "report.ipynb")
        deploy("report.ipynb", "weekly-report", cron="30 2 * * 1", timezone="UTC")
        import kernelflow

        runs = kernelflow.sql("SELECT id, flow_name FROM flow_runs ORDER BY created DESC, id")
        print(json.dumps(runs.to_dict(orient="records")))
    elif sys.argv[1] == "chatty":
        chatty(int(sys.argv[2]))
        import kernelflow

        print(kernelflow.sql("SELECT id FROM flow_runs WHERE flow_name = 'chatty-job'")["id"][0])
    else:
        slow_report(float(sys.argv[2]))
''')


@pytest.fixture
def jp_asyncio_loop() -> None:
    """Off: Playwright's sync API runs its own event loop in this module."""


@pytest.fixture
def jp_server_cleanup() -> None:
    """Off: this module starts no in-process Jupyter server."""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store with recorded runs and a running ``jupyter lab`` reading it."""
    root = tmp_path_factory.mktemp("panel")
    dirs = make_dirs(root)
    script = root / "record_runs.py"
    script.write_text(SCRIPT)
    env = python_env(KERNELFLOW_HOME=str(dirs["home"]))
    recorded = subprocess.run(
        [sys.executable, str(script), "record"],
        cwd=dirs["notebooks"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert recorded.returncode == 0, recorded.stderr[-3000:]
    runs = json.loads(recorded.stdout.strip().splitlines()[-1])
    env = isolated_env(dirs, env)
    with running_lab(dirs, env) as server:
        yield {
            "url": server.url,
            "runs": runs,
            "env": env,
            "script": script,
            "root": root,
            "log": server.log,
        }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    return screenshot_dir(tmp_path)


# Start times (ms, the page's clock) of the panel's requests for runs, as the browser
# recorded them: Playwright's own request events reach Python late, only when it is called.
RUNS_REQUESTS = (
    "performance.getEntriesByType('resource')"
    ".filter(e => e.name.includes('/kernelflow/api/runs')).map(e => e.startTime)"
)


def runs_requests(page: Any) -> list[float]:
    return page.evaluate(RUNS_REQUESTS)


def open_panel(page: Any, url: str) -> tuple[Any, Any]:
    """Load the lab in its default layout (``reset``: no layout restored from an earlier
    page), click the kernelflow tab, wait for the runs; the tab and the panel."""
    page.goto(f"{url}/lab?reset&token={TOKEN}")
    tab = page.locator('.jp-SideBar li[data-id="kernelflow-runs"]')
    tab.wait_for(timeout=60_000)
    page.locator("#jp-main-dock-panel").wait_for(timeout=60_000)
    tab.click()
    panel = page.locator("#kernelflow-runs")
    panel.locator(".kf-RunRow").first.wait_for(timeout=20_000)
    return tab, panel


def flow_names(page: Any) -> list[str]:
    return page.locator(".kf-RunList > .kf-RunRow .kf-RunRow-flow").all_text_contents()


def test_panel_lists_runs_and_opens_one(
    lab: dict[str, Any], browser: Any, screenshots: Path
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _, panel = open_panel(page, lab["url"])

    # Newest first, as recorded; each with its state, duration and task run count.
    expected = [run["flow_name"] for run in lab["runs"]]
    assert expected == ["sensor-check", "load", "nightly-etl"]
    assert flow_names(panel) == expected
    rows = panel.locator(".kf-RunList > .kf-RunRow")
    states = rows.locator(".kf-StateBadge").all_text_contents()
    assert states == ["Failed", "Completed", "Completed"]
    failed_badge = rows.nth(0).locator(".kf-StateBadge")
    completed_badge = rows.nth(2).locator(".kf-StateBadge")
    assert failed_badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(198, 40, 40)"
    assert completed_badge.evaluate("e => getComputedStyle(e).backgroundColor") == (
        "rgb(46, 125, 50)"
    )
    assert "3 task runs" in rows.nth(2).inner_text()
    assert rows.nth(2).locator(".kf-RunRow-duration").inner_text().endswith("s")
    assert "subflow" in rows.nth(1).inner_text()
    assert "runs" in panel.locator(".kf-Status").inner_text()

    # The deployments section: name, schedule and the next run (a Monday, 02:30 UTC).
    deployment = panel.locator('.kf-DeploymentList [data-kf-deployment="weekly-report"]')
    deployment.wait_for(timeout=10_000)
    assert deployment.locator(".kf-DeploymentName").inner_text() == "weekly-report"
    assert deployment.locator(".kf-DeploymentSchedule").inner_text() == "cron '30 2 * * 1' (UTC)"
    next_run = deployment.locator(".kf-NextRun time").get_attribute("datetime")
    assert next_run and next_run.endswith("T02:30:00.000Z")
    assert deployment.locator(".kf-LastRun").inner_text() == "\N{EN DASH}"  # no run yet
    page.screenshot(path=str(screenshots / "panel-runs.png"))

    # Filter by state: only the failed run.
    panel.locator(".kf-StateFilter").select_option("failed")
    wait_until(page, lambda: flow_names(panel) == ["sensor-check"], 10, "the Failed filter")
    panel.locator(".kf-StateFilter").select_option("")
    wait_until(page, lambda: flow_names(panel) == expected, 10, "all runs again")

    # Open the ETL run: its task runs (one retried) and its logs.
    etl_id = next(r["id"] for r in lab["runs"] if r["flow_name"] == "nightly-etl")
    panel.locator(f'.kf-RunRow[data-kf-run-id="{etl_id}"]').click()
    detail = panel.locator(f'.kf-RunDetail[data-kf-run-id="{etl_id}"]')
    detail.wait_for(timeout=10_000)
    task_rows = detail.locator(".kf-TaskRunTable tbody tr")
    assert task_rows.count() == 3
    names = detail.locator(".kf-TaskRunTable .kf-TaskName").all_text_contents()
    assert names == ["fetch-0", "fetch-1", "fetch-2"]
    assert (
        detail.locator(".kf-TaskRunTable .kf-StateBadge").all_text_contents() == ["Completed"] * 3
    )
    tries = [row.locator("td").nth(3).inner_text() for row in task_rows.all()]
    assert tries == ["1", "2", "1"]  # the flaky fetch needed its retry
    logs = detail.locator(".kf-Logs").inner_text()
    assert "fetched orders" in logs and "fetched customers" in logs
    assert "will start immediately" in logs  # the flaky fetch's first try failed
    subflow = detail.locator(".kf-RunList .kf-RunRow")
    assert subflow.locator(".kf-RunRow-flow").all_text_contents() == ["load"]
    page.screenshot(path=str(screenshots / "panel-run-detail.png"))

    # A subflow opens in place; "All runs" goes back to the list.
    subflow.click()
    load_id = next(r["id"] for r in lab["runs"] if r["flow_name"] == "load")
    panel.locator(f'.kf-RunDetail[data-kf-run-id="{load_id}"]').wait_for(timeout=10_000)
    assert "loading" in panel.locator(".kf-Logs").inner_text()
    panel.locator(".kf-Back").click()
    wait_until(page, lambda: flow_names(panel) == expected, 10, "the list again")
    assert not [e for e in errors if "kernelflow" in e.lower()], errors
    page.close()


def test_panel_refreshes_itself_only_while_visible(
    lab: dict[str, Any], browser: Any, screenshots: Path
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    # Keep every resource timing entry (the default buffer of 250 fills while lab loads).
    page.add_init_script("performance.setResourceTimingBufferSize(100000)")
    tab, panel = open_panel(page, lab["url"])

    # A flow that runs for a while, in another process: it appears Running, then
    # Completed, with no click on refresh.
    slow = subprocess.Popen(
        [sys.executable, str(lab["script"]), "slow", "8"],
        cwd=lab["root"],
        env=lab["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = panel.locator(".kf-RunList > .kf-RunRow").first
        wait_until(
            page,
            lambda: (
                first.locator(".kf-RunRow-flow").inner_text() == "slow-report"
                and first.locator(".kf-StateBadge").inner_text() == "Running"
            ),
            20,
            "the running flow to appear",
        )
        page.screenshot(path=str(screenshots / "panel-running.png"))
        assert slow.wait(60) == 0, slow.stderr.read() if slow.stderr else ""
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait(10)
        if slow.stderr:
            slow.stderr.close()
    wait_until(
        page,
        lambda: first.locator(".kf-StateBadge").inner_text() == "Completed",
        20,
        "the flow to complete",
    )

    # The refresh button asks at once: right after a timer tick, the next tick is 5 s away.
    count = len(runs_requests(page))
    wait_until(page, lambda: len(runs_requests(page)) > count, 10, "a timer tick")
    tick = max(runs_requests(page))
    panel.locator(".kf-RefreshButton").click()
    clicked = wait_until(
        page,
        lambda: [t for t in runs_requests(page) if t > tick + 50],
        5,
        "the refresh button's request",
    )
    assert min(clicked) - tick < 3000, "the request came from the timer, not the button"

    # Collapsed, the panel asks nothing; shown again, it refreshes at once.
    tab.click()
    panel.wait_for(state="hidden", timeout=10_000)
    hidden_at = page.evaluate("performance.now()")
    page.wait_for_timeout(7_000)
    assert not [t for t in runs_requests(page) if t > hidden_at], "a hidden panel kept polling"
    shown_at = page.evaluate("performance.now()")
    tab.click()
    wait_until(
        page,
        lambda: [t for t in runs_requests(page) if t > shown_at],
        3,
        "a refresh when shown again",
    )
    page.close()


DASH = "\N{EN DASH}"


def test_panel_pages_through_a_long_log(
    lab: dict[str, Any], browser: Any, screenshots: Path
) -> None:
    recorded = subprocess.run(
        [sys.executable, str(lab["script"]), "chatty", "450"],
        cwd=lab["root"],
        env=lab["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert recorded.returncode == 0, recorded.stderr[-3000:]
    run_id = recorded.stdout.strip().splitlines()[-1]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    _, panel = open_panel(page, lab["url"])
    panel.locator(f'.kf-RunRow[data-kf-run-id="{run_id}"]').click()
    detail = panel.locator(f'.kf-RunDetail[data-kf-run-id="{run_id}"]')
    detail.wait_for(timeout=10_000)
    pager = detail.locator(".kf-LogPager")
    lines = detail.locator(".kf-Logs .kf-LogMessage")

    def shown() -> list[str]:
        return [m for m in lines.all_text_contents() if m.startswith("line ")]

    # The newest page first: the last 200 lines, the earlier ones a click away.
    total = int(detail.locator(".kf-SectionTitle", has_text="Logs").inner_text()[6:-1])
    assert total >= 450
    assert (
        pager.locator(".kf-LogRange").inner_text() == f"lines {total - 199}{DASH}{total} of {total}"
    )
    assert lines.count() == 200 and shown()[-1] == "line 0449"
    assert pager.locator(".kf-LogPage-later").is_disabled()

    pager.locator(".kf-LogPage-oldest").click()
    wait_until(page, lambda: "line 0000" in shown(), 10, "the oldest page")
    assert pager.locator(".kf-LogRange").inner_text() == f"lines 1{DASH}200 of {total}"
    assert pager.locator(".kf-LogPage-earlier").is_disabled()
    page.screenshot(path=str(screenshots / "panel-log-pages.png"))

    pager.locator(".kf-LogPage-later").click()
    wait_until(
        page,
        lambda: pager.locator(".kf-LogRange").inner_text() == f"lines 201{DASH}400 of {total}",
        10,
        "the next page",
    )
    assert lines.count() == 200 and "line 0000" not in shown()

    pager.locator(".kf-LogPage-newest").click()
    wait_until(page, lambda: shown() and shown()[-1] == "line 0449", 10, "the newest page again")
    page.close()
