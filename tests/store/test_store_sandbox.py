"""The store's query sandbox through ``kernelflow.sql``: one read, nothing outside the store.

The same attacks go through the CLI (tests/cli/test_cli_sql_sandbox.py) and
``%kf sql`` (tests/kernel/test_kernel_sql_sandbox.py); the list is in
tests/sql_attacks.py.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from sql_attacks import ATTACKS, attack_params, files_of
from store_workers import flow_run, new_id, state

from kernelflow.errors import KernelflowError, QueryError
from kernelflow.store import sql
from kernelflow.store.db import SANDBOX, connect
from kernelflow.store.journal import record

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def recorded(paths):
    """A store with one completed flow run, imported."""
    run = new_id()
    t = time.time()
    record(flow_run(run, "etl", t=t))
    record(state(run, "Completed", kind="flow", t=t + 1))
    assert sql("SELECT count(*) AS n FROM flow_runs")["n"].tolist() == [1]
    return run


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the store, where an attack might write."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def databases_and_tables() -> list[tuple]:
    """What the store's database holds: attached databases, tables, views and row counts."""
    found = sql(
        "SELECT database_name, table_name FROM duckdb_tables() WHERE NOT internal "
        "UNION ALL SELECT database_name, view_name FROM duckdb_views() WHERE NOT internal "
        "ORDER BY ALL"
    )
    return [*found.itertuples(index=False), sql("SELECT count(*) FROM flow_runs").iloc[0, 0]]


class TestRefusedQueries:
    @pytest.mark.parametrize("attack", attack_params())
    def test_is_one_line_query_error_and_writes_nothing(self, recorded, paths, outside, attack):
        before = files_of(paths.home, outside)
        held = databases_and_tables()
        with pytest.raises(QueryError) as caught:
            sql(attack.sql(paths.home, outside))
        message = str(caught.value)
        assert attack.message in message
        assert "\n" not in message and message.endswith((".", ")"))
        assert isinstance(caught.value, ValueError) and isinstance(caught.value, KernelflowError)
        for target in attack.targets(paths.home, outside):
            assert not target.exists()
        assert files_of(paths.home, outside) == before
        assert databases_and_tables() == held
        assert sql("SELECT count(*) AS n FROM flow_runs")["n"].tolist() == [1]

    @pytest.mark.parametrize(
        "name", ["copy-to-file", "copy-pickle-into-results", "attach-read-write"]
    )
    def test_the_attacks_write_files_without_the_sandbox(self, tmp_path, name):
        # Proof that the refused queries are real attacks: a plain DuckDB runs them.
        (attack,) = [a for a in ATTACKS if a.id == name]
        (tmp_path / "results" / "ab").mkdir(parents=True)
        with duckdb.connect() as con:
            con.execute(attack.sql(tmp_path, tmp_path))
        assert all(target.exists() for target in attack.targets(tmp_path, tmp_path))

    def test_python_variables_are_out_of_reach(self, recorded):
        secret = pd.DataFrame({"password": ["hunter2"]})  # DuckDB would scan it by name
        assert len(secret) == 1
        with pytest.raises(QueryError, match="secret"):
            sql("SELECT * FROM secret")

    def test_a_query_must_be_a_string(self, recorded):
        with pytest.raises(QueryError, match="not bytes"):
            sql(b"SELECT 1")  # type: ignore[arg-type]


class TestReads:
    @staticmethod
    def documented_tables() -> list[str]:
        text = (REPO / "docs" / "schema.md").read_text()
        return re.findall(r"^## `(\w+)`", text, flags=re.MULTILINE)

    def test_every_documented_table_and_view_can_be_read(self, recorded):
        names = self.documented_tables()
        assert {"flow_runs", "task_runs", "cache_entries", "deployment_progress"} <= set(names)
        for name in names:
            frame = sql(f"SELECT * FROM {name} LIMIT 1")
            assert len(frame.columns) > 0, name

    @pytest.mark.parametrize(
        "query",
        [
            "SELECT name FROM flow_runs",
            "SELECT name FROM flow_runs;",
            "-- a comment first\nSELECT name FROM flow_runs",
            "FROM flow_runs SELECT name",
            "WITH f AS (SELECT name FROM flow_runs) SELECT name FROM f",
            "SELECT name FROM flow_runs UNION ALL SELECT name FROM flow_runs WHERE false",
            "SELECT name FROM flow_runs WHERE name LIKE ?",
        ],
    )
    def test_selects_in_their_forms(self, recorded, query):
        params = ["%"] if "?" in query else None
        assert sql(query, params)["name"].tolist() == ["etl-run"]

    @pytest.mark.parametrize(
        "query", ["DESCRIBE flow_runs", "SHOW TABLES", "SUMMARIZE flow_runs", "VALUES (1)"]
    )
    def test_describe_show_summarize_and_values(self, recorded, query):
        assert len(sql(query)) > 0

    def test_a_bad_query_keeps_duckdbs_message_on_one_line(self, recorded):
        with pytest.raises(QueryError) as caught:
            sql("SELECT nope FROM flow_runs")
        message = str(caught.value)
        assert message.startswith('Binder Error: Referenced column "nope" not found')
        assert "\n" not in message and "docs/schema.md" in message


class TestSandboxedConnection:
    def test_every_read_only_connection_has_the_sandbox_settings(self, recorded, paths):
        with connect(paths, read_only=True) as con:
            for name, value in SANDBOX.items():
                assert con.execute("SELECT current_setting(?)", [name]).fetchone() == (value,)
            with pytest.raises(duckdb.InvalidInputException, match="locked"):
                con.execute("SET enable_external_access = true")

    def test_writers_still_work_after_a_sandboxed_read(self, recorded, paths):
        # Read and write connections differ in configuration: they must not share a
        # database instance in this process.
        with connect(paths, read_only=True) as con:
            con.execute("SELECT 1").fetchone()
        run = new_id()
        record(flow_run(run, "later"))
        assert sql("SELECT count(*) AS n FROM flow_runs")["n"].tolist() == [2]
