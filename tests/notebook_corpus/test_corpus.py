"""Third-party notebooks, run plain and as ``%%task`` notebooks, must show the same thing.

For each notebook of ``MANIFEST.json`` (see README.md here): run it plain in a
fresh kernel; run its task version three times, each in a fresh kernel, against
one store; change an early parameter and run both again, the task version
against the same store (its stale entries must not be served). Every code
cell of every task run must show what the matching plain run showed (see
``corpus_harness`` for what is masked and why), and runs 2 and 3 must be
served from the cache for at least 95 % of the cells.

A failure prints a report: hits per run, then each differing cell with the
run, whether it was a cache hit, and how its outputs differ. Set
``KERNELFLOW_CORPUS_REPORT`` to a directory to also get the reports as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from corpus_harness import analyse, load_manifest, run_entry

ENTRIES = load_manifest()["notebooks"]


def _sessions(store: Any) -> list[list[dict]]:
    """Per kernel session (flow run) with task runs, oldest first: its task runs in order."""
    rows = store.sql(
        "SELECT f.id AS flow_run_id, t.task_name, t.state_name, t.cache_key, t.inputs "
        "FROM flow_runs f JOIN task_runs t ON t.flow_run_id = f.id ORDER BY f.created, t.created"
    )
    sessions: dict[str, list[dict]] = {}
    for row in rows.to_dict("records"):
        sessions.setdefault(row.pop("flow_run_id"), []).append(row)
    return list(sessions.values())


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("entry", ENTRIES, ids=[entry["name"] for entry in ENTRIES])
def test_notebook(entry: dict[str, Any], kernel_name: str, tmp_path: Path, store: Any) -> None:
    """A cache hit shows what running the cell shows, and unchanged cells hit."""
    executions = asyncio.run(run_entry(entry, kernel_name, tmp_path))
    report = analyse(entry, executions, _sessions(store))
    print(report.text())  # shown with -rA, or on failure above the assertion
    where = os.environ.get("KERNELFLOW_CORPUS_REPORT")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        Path(where, f"{entry['name']}.json").write_text(json.dumps(report.as_json(), indent=1))
    assert report.ok, report.text()
