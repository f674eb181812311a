"""``make demo`` (``python -m kernelflow.demo``): a real flow, then its runs read from DuckDB."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def run_demo(env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "kernelflow.demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def table_rows(output: str) -> dict[str, list[str]]:
    """Rows of the demo's table by run name: [kind, flow, run, state, duration, tries, cached]."""
    rows = {}
    for line in output.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            rows[cells[2]] = cells
    return rows


def test_the_demo_records_retries_caching_fan_out_and_a_subflow(child_env, store):
    first = run_demo(child_env)
    rows = table_rows(first.stdout)

    flows = [row for row in rows.values() if row[0] == "flow"]
    assert [(row[1], row[3]) for row in flows] == [
        ("kernelflow-demo", "Completed"),
        ("load", "Completed"),
    ]
    assert rows["fetch_rate-0"][3:] == ["Completed", rows["fetch_rate-0"][4], "2", ""]
    assert rows["lookup_region-0"][3] == "Completed" and rows["lookup_region-0"][6] == ""
    assert rows["lookup_region-1"][3] == "Cached" and rows["lookup_region-1"][6] == "yes"
    assert [rows[f"convert-{i}"][3] for i in range(4)] == ["Completed"] * 4
    assert rows["summarize-0"][1] == "load"  # the subflow's task
    assert " - Retry 1/2 will start 0.2 second(s) from now" in first.stderr
    assert f"Store: {store.paths.database}" in first.stdout
    assert "runs ls" in first.stdout and "sql" in first.stdout

    # A second demo process reuses the first one's cache for both lookups.
    second = run_demo(child_env)
    rows = table_rows(second.stdout)
    assert rows["lookup_region-0"][3] == rows["lookup_region-1"][3] == "Cached"
    assert "Both lookups were Cached" in second.stdout

    # Everything both processes recorded is in the store.
    runs = store.sql("SELECT flow_name, state_name FROM flow_runs ORDER BY created")
    assert list(runs["flow_name"]) == ["kernelflow-demo", "load"] * 2
    assert set(runs["state_name"]) == {"Completed"}


def test_an_unwritable_store_is_one_line(child_env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "kernelflow.demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**child_env, "KERNELFLOW_HOME": str(blocker / "home")},
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: ") and "KERNELFLOW_HOME" in lines[0]
