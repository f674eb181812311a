"""``kernelflow store repair``: real runs, a real DuckDB file damaged on disk, then rebuilt.

Runs recorded by this process stay in its journal (a live process's journal is
kept whole); runs recorded by a child process that has ended are folded and
their journal deleted, so after that only the database holds them. The tests
use both to check what a repair brings back and what it reports lost.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import nbformat
import pytest
from click.testing import CliRunner
from store_workers import flow_run, new_id, state

import kernelflow
from kernelflow import flow, get_run_logger, task
from kernelflow.cli import main
from kernelflow.errors import SchemaTooNewError, StoreCorruptError, StoreLockedError
from kernelflow.store import compact
from kernelflow.store.db import write_lock
from kernelflow.store.journal import record
from kernelflow.store.repair import repair
from kernelflow.store.schema import SCHEMA_VERSION
from kernelflow.tasks import task_input_hash

# Repair moves the database file aside and builds a new one: this process's background
# compactor, which folds whichever store is current every few seconds, must not hold the
# file meanwhile.
pytestmark = pytest.mark.usefixtures("no_background_fold")

TABLES = ("flow_runs", "task_runs", "logs", "states", "cache_entries", "processes", "deployments")
#: The tables a repair copies from the old file.
COPIED = (*TABLES, "deployment_fires", "deployment_attempts", "artifacts", "events", "variables")
LOST_WITH_THE_FILE = (
    "Lost: what only the old file held: the runs, logs, artifacts, events and cache hits of "
    "processes that had ended (their journals are deleted once folded), the deployments' "
    "schedule history and the variables."
)
STORE_TESTS = Path(__file__).resolve().parent


@task(cache_key_fn=task_input_hash)
def square(x: int) -> int:
    return x * x


@flow
def squares(n: int) -> list[int]:
    get_run_logger().info("squaring %d numbers", n)
    return [square(i) for i in range(n)]


#: A child process that records a flow run, a cache entry and a limit, then ends
#: without folding its journal (the test's compaction folds, then deletes it).
CHILD = """
from kernelflow import flow, get_run_logger, task
from kernelflow.concurrency import create_limit
from kernelflow.tasks import task_input_hash

@task(cache_key_fn=task_input_hash)
def cube(x: int) -> int:
    return x ** 3

@flow
def cubes() -> int:
    get_run_logger().info("cubing")
    return cube(2) + cube(3)

assert cubes() == 35
create_limit("db", 2)
"""


def counts() -> dict[str, int]:
    return {t: int(kernelflow.sql(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in TABLES}


def rows(table: str) -> list[str]:
    """Every row of ``table`` as JSON, sorted: comparable whole, arrays included."""
    return kernelflow.sql(f"SELECT to_json(t)::VARCHAR AS j FROM {table} t ORDER BY j")[
        "j"
    ].tolist()


def cli(*args: str):
    result = CliRunner().invoke(main, list(args), prog_name="kernelflow")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.fixture
def ended_process(run_python, store):
    """Run ``CHILD`` in another process, then fold its journal, which deletes it."""
    run_python(CHILD, KERNELFLOW_COMPACT_AT_EXIT="off")
    assert compact().removed_journals == 1
    assert not list(store.paths.journal.glob("*.jsonl"))


def aside(store, kind: str):
    """The database file repair moved aside (not its write-ahead log, moved beside it).

    The database may have a WAL at the repair (one CI run found both; which connection
    left it was not found): repair moves it beside the file, as designed.
    """
    (moved,) = (
        path
        for path in store.paths.home.glob(f"kernelflow.duckdb.{kind}-*")
        if path.suffix != ".wal"
    )
    return moved


class TestTheError:
    def test_python_names_the_repair_in_one_line(self, store):
        assert squares(2) == [0, 1]
        store.paths.database.write_bytes(b"not a database" * 1000)
        with pytest.raises(StoreCorruptError) as caught:
            kernelflow.sql("SELECT count(*) FROM flow_runs")
        message = str(caught.value)
        assert "\n" not in message
        assert str(store.paths.database) in message
        assert "run 'kernelflow store repair'" in message
        assert caught.value._render_traceback_() == [f"StoreCorruptError: {message}"]

    def test_the_cli_prints_one_line_and_fails(self, store, child_env):
        assert squares(2) == [0, 1]
        store.paths.database.write_bytes(b"not a database" * 1000)
        proc = subprocess.run(
            [sys.executable, "-m", "kernelflow.cli", "runs", "ls"],
            capture_output=True,
            text=True,
            env=child_env,
            timeout=60,
        )
        assert proc.returncode == 1
        assert proc.stdout == ""
        assert proc.stderr.startswith(f"Error: The store database {store.paths.database} is not")
        assert "run 'kernelflow store repair'" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


class TestRepairACorruptFile:
    @pytest.mark.parametrize(
        "damage",
        [
            pytest.param(lambda data: b"\xff" * 4096 + data[4096:], id="header-overwritten"),
            pytest.param(lambda data: data[:12288] + bytes(len(data) - 12288), id="blocks-zeroed"),
            pytest.param(lambda data: b"", id="truncated-to-nothing"),
        ],
    )
    def test_rebuilds_everything_a_live_journal_holds(self, store, damage):
        assert squares(3) == [0, 1, 4]
        assert squares(3) == [0, 1, 4]  # three cache hits
        before = counts()
        assert before["flow_runs"] == 2 and before["task_runs"] == 6 and before["logs"] == 2
        assert before["cache_entries"] == 3
        flow_runs, task_runs = rows("flow_runs"), rows("task_runs")
        database = store.paths.database
        damaged = damage(database.read_bytes())
        database.write_bytes(damaged)
        with pytest.raises(StoreCorruptError):
            kernelflow.sql("SELECT 1")

        result = cli("store", "repair")

        assert result.exit_code == 0, result.output
        moved = aside(store, "corrupt")
        assert moved.read_bytes() == damaged  # kept as it was, beside the new file
        lines = result.output.splitlines()
        assert lines[0].startswith(f"The store database {database} was not readable (")
        assert lines[1] == f"Moved it aside to {moved} (kept; delete it when done with it)."
        assert lines[2] == (
            f"Rebuilt {database}: 2 flow runs, 6 task runs, 2 log lines, 3 cache entries "
            "and 0 deployments, from 1 journal."
        )
        assert lines[3:] == [LOST_WITH_THE_FILE]
        # Queries work again, and see exactly what was recorded.
        assert counts() == before
        assert rows("flow_runs") == flow_runs and rows("task_runs") == task_runs
        hits = kernelflow.sql("SELECT sum(hits) AS n FROM cache_entries")["n"][0]
        assert hits == 3

    def test_the_report(self, store):
        squares(2)
        store.paths.database.write_bytes(b"\x00" * 10_000)

        report = repair()

        assert report.repaired and report.problem is not None
        assert report.moved_to == aside(store, "corrupt")
        assert (report.flow_runs, report.task_runs, report.logs, report.cache_entries) == (
            1,
            2,
            1,
            2,
        )
        assert report.journals == 1 and report.registered == 0 and report.copied == {}
        assert sorted(report.not_copied) == sorted(COPIED)

    def test_a_repair_again_at_once_keeps_both_old_files(self, store):
        squares(1)
        store.paths.database.write_bytes(b"\x00" * 10_000)
        first = repair(force=True)
        second = repair(force=True)
        assert first.moved_to != second.moved_to
        assert first.moved_to.exists() and second.moved_to.exists()
        assert second.flow_runs == 1


class TestWhatOnlyTheOldFileHeld:
    def test_is_reported_lost_when_the_file_cannot_be_read(self, store, ended_process):
        assert squares(2) == [0, 1]
        before = counts()
        assert before["flow_runs"] == 2 and before["cache_entries"] == 4
        assert kernelflow.sql("SELECT count(*) AS n FROM concurrency_limits")["n"][0] == 1
        store.paths.database.write_bytes(b"not a database" * 1000)

        result = cli("store", "repair")

        assert result.exit_code == 0, result.output
        # This process's runs came back from its journal; the child's are gone...
        assert kernelflow.sql("SELECT flow_name FROM flow_runs")["flow_name"].tolist() == [
            "squares"
        ]
        assert counts()["task_runs"] == 2 and counts()["logs"] == 1
        # ...except what lives in files: its cache entries and its limit.
        cache = kernelflow.sql("SELECT task_name, count(*) AS n FROM cache_entries GROUP BY 1")
        assert dict(zip(cache["task_name"], cache["n"], strict=True)) == {"cube": 2, "square": 2}
        limits = kernelflow.sql("SELECT name, slot_limit FROM concurrency_limits")
        assert limits.values.tolist() == [["db", 2]]
        assert "1 flow run, 2 task runs, 1 log line, 4 cache entries" in result.output
        assert "from 1 journal, 2 entries of the cache index." in result.output
        assert result.output.splitlines()[-1] == LOST_WITH_THE_FILE

    def test_is_copied_when_the_file_still_reads(self, store, ended_process):
        squares(2)
        before = counts()
        tables = {t: rows(t) for t in ("flow_runs", "task_runs", "cache_entries")}

        result = cli("store", "repair", "--force")

        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[0] == (
            f"The store database {store.paths.database} reads fine; rebuilding it anyway (--force)."
        )
        assert result.output.splitlines()[-1] == "Nothing is known lost."
        assert aside(store, "old").exists()
        assert counts() == before
        for table, expected in tables.items():
            assert rows(table) == expected, table

    def test_a_run_moved_by_an_ended_process_keeps_its_newer_state(self, store, run_python):
        # This process creates a flow run; a child (whose journal is then removed)
        # finishes it, as a deployment's notebook process finishes the scheduler's run.
        run_id = new_id()
        record(flow_run(run_id, t=1.0))
        record(state(run_id, "Pending", kind="flow", t=1.0))
        run_python(
            f"""
            import sys
            sys.path.insert(0, {str(STORE_TESTS)!r})
            from kernelflow.store.journal import record
            from store_workers import state
            record(state({run_id!r}, "Completed", kind="flow", t=2.0, start=1.5, end=2.0))
            """,
            KERNELFLOW_COMPACT_AT_EXIT="off",
        )
        assert compact().removed_journals == 1
        expected = rows("flow_runs")
        (run,) = kernelflow.sql("SELECT flow_name, state_name FROM flow_runs").values.tolist()
        assert run == ["etl", "Completed"]

        report = repair(force=True)

        assert rows("flow_runs") == expected
        assert report.copied.get("flow_runs", 0) == 0  # completed in place, not copied again
        assert report.copied["states"] == 1

    def test_a_partly_readable_file_gives_what_still_reads(self, store, ended_process):
        squares(2)
        before = counts()
        database = store.paths.database
        damaged, unreadable = damage_one_table(database.read_bytes(), store.paths.home)
        database.write_bytes(damaged)

        report = repair()

        assert report.repaired and "checksum" in report.problem
        assert sorted(report.not_copied) == sorted(unreadable)
        assert report.lost == [
            f"the rows of {', '.join(report.not_copied)} that only the old file held "
            "(those tables of it could not be read)"
        ]
        after = counts()
        for table in ("flow_runs", "task_runs", "logs", "states", "processes"):
            if table not in unreadable:
                assert after[table] == before[table], table


class TestDeployments:
    def test_are_copied_or_named_as_lost(self, store, kernel_name, tmp_path):
        from kernelflow.deployments import deploy

        notebook = tmp_path / "report.ipynb"
        nb = nbformat.v4.new_notebook()
        nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
        nbformat.write(nb, notebook)
        deploy(notebook, "nightly-report", interval=3600, kernel=kernel_name)

        forced = repair(force=True)
        assert forced.deployments == 1 and forced.copied["deployments"] == 1
        assert forced.lost == []

        store.paths.database.write_bytes(b"not a database" * 1000)
        report = repair()
        assert report.deployments == 0
        assert report.lost[-1] == (
            "the deployment nightly-report: register again with 'kernelflow deploy'"
        )


class TestLeftAlone:
    def test_a_healthy_store(self, store, no_background_fold):
        squares(2)
        compact()
        database = store.paths.database
        content, listing = database.read_bytes(), sorted(store.paths.home.iterdir())

        result = cli("store", "repair")

        assert result.exit_code == 0
        assert result.output == (
            f"The store database {database} reads fine; nothing to repair "
            "(--force rebuilds it anyway).\n"
        )
        assert database.read_bytes() == content
        assert sorted(store.paths.home.iterdir()) == listing

    def test_a_store_with_no_database_yet(self, store):
        result = cli("store", "repair")
        assert result.exit_code == 0
        assert "nothing to repair" in result.output
        assert not store.paths.database.exists()

    def test_a_database_from_a_newer_kernelflow(self, store):
        squares(1)
        compact()
        con = duckdb.connect(str(store.paths.database))
        con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION + 1])
        con.close()
        with pytest.raises(SchemaTooNewError):
            repair(force=True)
        assert not list(store.paths.home.glob("kernelflow.duckdb.*-*"))

    def test_waits_for_the_store_lock(self, store):
        squares(1)
        store.paths.database.write_bytes(b"not a database" * 1000)
        # A compaction (or another repair) holds the lock: the repair waits, then gives up.
        with write_lock(store.paths), pytest.raises(StoreLockedError):
            repair(timeout=0.2)
        assert not list(store.paths.home.glob("kernelflow.duckdb.*-*"))


def damage_one_table(data: bytes, scratch) -> tuple[bytes, list[str]]:
    """``data`` with one block overwritten so the file opens but some tables fail to read.

    Which block holds which table depends on DuckDB's layout, so the block is
    found by trying each in turn on a scratch copy.
    """
    probe = scratch / "probe.duckdb"
    block = 256 * 1024
    for start in range(12288 + 64, len(data), block):
        damaged = data[:start] + b"\xff" * 64 + data[start + 64 :]
        probe.write_bytes(damaged)
        try:
            con = duckdb.connect(str(probe), read_only=True)
        except duckdb.Error:
            continue
        failing = []
        try:
            for table in COPIED:
                try:
                    con.execute(f"SELECT max(hash(COLUMNS(*))) FROM {table}").fetchall()
                except duckdb.Error:
                    failing.append(table)
        finally:
            con.close()
            probe.unlink()
        if failing and "schema_version" not in failing:
            return damaged, failing
    pytest.fail("no block of the database holds one table alone")
