"""Queries: SQL and the helpers, on a real store, as DataFrames; the documented schema."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from store_workers import flow_run, log, new_id, state, task_run

from kernelflow.errors import QueryError, RunNotFoundError
from kernelflow.store import (
    cache_entries,
    get_flow_run,
    list_flow_runs,
    logs_of,
    sql,
    start_background_compaction,
    task_runs_of,
)
from kernelflow.store.db import connect
from kernelflow.store.journal import record

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schema.md"

# Another program reading the database: it blocks compaction, not reading.
READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def history(paths):
    """Two flows: an etl run that completed with two tasks, a report run that failed."""
    t = time.time()
    etl, report = "aaaa1111-" + new_id(), "aaaa2222-" + new_id()
    first, second = new_id(), new_id()
    for event in [
        flow_run(etl, "etl", t=t, deployment_id="dep-1"),
        state(etl, "Running", kind="flow", t=t),
        task_run(first, etl, t=t + 1),
        log(first, "loading"),
        state(first, "Completed", t=t + 2),
        task_run(second, etl, t=t + 3),
        state(second, "Cached", t=t + 3),
        log(etl, "flow done", kind="flow"),
        state(etl, "Completed", kind="flow", t=t + 4),
        flow_run(report, "report", t=t + 5),
        state(report, "Failed", kind="flow", t=t + 6, message="boom"),
        {
            "ev": "cache_write",
            "key": "k1",
            "task_name": "load",
            "result": "results/1",
            "checksum": "c",
            "size": 3,
            "created": t,
            "expires": None,
            "task_run_id": first,
            "duration": 1.0,
        },
        {"ev": "cache_write", "key": "k2", "task_name": "load", "created": t},
        {"ev": "cache_delete", "key": "k2", "t": t + 1},
    ]:
        record(event)
    return {"etl": etl, "report": report, "first": first, "second": second}


class TestSql:
    def test_returns_a_dataframe_of_everything_recorded_so_far(self, history):
        frame = sql("SELECT flow_name, state_name FROM flow_runs ORDER BY created")
        assert isinstance(frame, pd.DataFrame)
        assert frame.to_dict("records") == [
            {"flow_name": "etl", "state_name": "Completed"},
            {"flow_name": "report", "state_name": "Failed"},
        ]

    def test_parameters_are_bound(self, history):
        frame = sql("SELECT count(*) AS n FROM task_runs WHERE flow_run_id = ?", [history["etl"]])
        assert frame["n"].tolist() == [2]
        frame = sql("SELECT id FROM flow_runs WHERE flow_name = $name", {"name": "report"})
        assert frame["id"].tolist() == [history["report"]]

    def test_timestamps_are_timezone_aware(self, history):
        created = sql("SELECT created FROM flow_runs LIMIT 1")["created"]
        assert created.dt.tz is not None

    def test_the_store_cannot_be_changed_through_sql(self, history):
        with pytest.raises(QueryError, match="read-only"):
            sql("DELETE FROM flow_runs")
        assert len(sql("SELECT * FROM flow_runs")) == 2

    def test_a_blocked_compaction_warns_once_and_queries_still_answer(
        self, history, paths, monkeypatch, caplog
    ):
        assert len(sql("SELECT * FROM flow_runs")) == 2
        # This process's own background compactor would import the next event
        # whenever its period happens to end: stop it, so only queries compact.
        start_background_compaction().stop(timeout=10)
        record(flow_run(new_id(), "late"))  # not imported yet
        monkeypatch.setenv("KERNELFLOW_LOCK_TIMEOUT", "0.2")
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(paths.database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert reader.stdout.readline().strip() == "ready"
            with caplog.at_level(logging.WARNING, logger="kernelflow.store"):
                assert len(list_flow_runs()) == 2  # what was imported before
                assert len(list_flow_runs(flow="etl")) == 1
        finally:
            reader.stdin.close()
            reader.wait(30)
        # Only the queries' own warnings count: this process's background
        # compactor (started by record()) may also meet the held file and say so.
        warnings = [
            r
            for r in caplog.records
            if r.levelno == logging.WARNING and "compaction before the query failed" in r.message
        ]
        assert len(warnings) == 1

    def test_an_empty_store_answers_with_empty_frames(self, paths):
        assert len(list_flow_runs()) == 0
        assert list(cache_entries().columns)[:2] == ["key", "task_name"]


class TestHelpers:
    def test_list_flow_runs_filters(self, history):
        assert list_flow_runs()["flow_name"].tolist() == ["report", "etl"]
        assert list_flow_runs(flow="etl")["id"].tolist() == [history["etl"]]
        assert list_flow_runs(state="failed")["id"].tolist() == [history["report"]]
        assert list_flow_runs(state="COMPLETED")["id"].tolist() == [history["etl"]]
        assert list_flow_runs(deployment="dep-1")["id"].tolist() == [history["etl"]]
        assert len(list_flow_runs(limit=1)) == 1

    def test_get_flow_run_by_id_or_unique_prefix(self, history):
        assert get_flow_run(history["etl"])["flow_name"].tolist() == ["etl"]
        assert get_flow_run(history["report"][:9])["flow_name"].tolist() == ["report"]

    def test_get_flow_run_errors_say_what_to_do(self, history):
        with pytest.raises(RunNotFoundError, match="kernelflow runs ls"):
            get_flow_run("zzzz")
        with pytest.raises(RunNotFoundError, match="Several flow runs"):
            get_flow_run("aaaa")

    def test_task_runs_of(self, history):
        frame = task_runs_of(history["etl"])
        assert frame["id"].tolist() == [history["first"], history["second"]]
        assert frame["cached"].tolist() == [False, True]

    def test_logs_of_a_flow_run_with_and_without_its_tasks(self, history):
        assert logs_of(history["etl"])["message"].tolist() == ["loading", "flow done"]
        assert logs_of(history["etl"], include_task_runs=False)["message"].tolist() == ["flow done"]
        assert logs_of(history["first"])["level_name"].tolist() == ["INFO"]

    def test_cache_entries(self, history):
        assert cache_entries()["key"].tolist() == ["k1"]
        assert sorted(cache_entries(include_deleted=True)["key"]) == ["k1", "k2"]


def documented_columns() -> dict[str, list[str]]:
    """Table -> its columns, as the tables in docs/schema.md list them."""
    tables: dict[str, list[str]] = {}
    current = None
    for line in DOCS.read_text().splitlines():
        heading = re.match(r"## `(\w+)`", line)
        if heading:
            current = tables.setdefault(heading.group(1), [])
        cell = re.match(r"\| `(\w+)` \|", line)
        if cell and current is not None:
            current.append(cell.group(1))
    return tables


def test_docs_schema_documents_every_column(paths):
    with connect(paths) as con:
        actual = {}
        for table, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal "
            "ORDER BY table_name, column_index"
        ).fetchall():
            actual.setdefault(table, []).append(column)
    assert documented_columns() == actual


def test_docs_schema_examples_run(history):
    sql_blocks = re.findall(r"```sql\n(.*?)```", DOCS.read_text(), re.S)
    statements = [s for block in sql_blocks for s in block.split(";") if s.strip()]
    assert len(statements) == 3
    for statement in statements:
        sql(statement.replace("'...'", f"'{history['first']}'"))
