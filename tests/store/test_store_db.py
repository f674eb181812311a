"""Opening the database: locks, corrupt files, schema versions, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest
from store_workers import new_id, state, task_run

from kernelflow.errors import (
    ConfigurationError,
    SchemaTooNewError,
    StoreCorruptError,
    StoreLockedError,
    StoreNotWritableError,
)
from kernelflow.settings import StorePaths
from kernelflow.store import compact, sql
from kernelflow.store.db import connect
from kernelflow.store.journal import current_journal, record
from kernelflow.store.schema import SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[2]

HOLD = """
import select, sys, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
# Until stdin is closed, or for the given seconds.
select.select([sys.stdin], [], [], float(sys.argv[2]) if len(sys.argv) > 2 else None)
"""


def hold_open(database, seconds: float | None = None) -> subprocess.Popen:
    """Another program (not kernelflow) keeping the database open read-write.

    Until :func:`release`, or for at most ``seconds``.
    """
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(database), *([str(seconds)] if seconds else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "ready"
    return holder


def release(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    holder.wait(30)


class TestConnect:
    def test_a_new_store_is_created_at_the_current_schema(self, paths):
        with connect(paths) as con:
            tables = {
                r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
            version = con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        assert version == SCHEMA_VERSION
        assert {"flow_runs", "task_runs", "states", "logs", "cache_entries", "processes"} <= tables
        assert paths.lock.exists()

    def test_read_only_on_a_missing_database_creates_it(self, paths):
        with connect(paths, read_only=True) as con:
            assert con.execute("SELECT count(*) FROM flow_runs").fetchone() == (0,)

    def test_the_connection_is_closed_and_the_lock_released(self, paths):
        with connect(paths) as con:
            pass
        with pytest.raises(duckdb.ConnectionException):
            con.execute("SELECT 1")
        with connect(paths, timeout=0):  # would fail if the lock were still held
            pass

    def test_the_lock_is_released_when_the_block_raises(self, paths):
        with pytest.raises(ZeroDivisionError), connect(paths):
            1 / 0  # noqa: B018
        with connect(paths, timeout=0):
            pass

    def test_a_bad_lock_timeout_is_a_configuration_error(self, paths, monkeypatch):
        monkeypatch.setenv("KERNELFLOW_LOCK_TIMEOUT", "soon")
        with pytest.raises(ConfigurationError, match="KERNELFLOW_LOCK_TIMEOUT"), connect(paths):
            pass


@pytest.mark.usefixtures("no_background_fold")
class TestLocked:
    def test_a_foreign_holder_gives_a_one_line_error_then_nothing_is_lost(self, paths, monkeypatch):
        first, second = new_id(), new_id()
        record(task_run(first))
        compact(paths)
        record(task_run(second))
        record(state(second, "Running"))
        monkeypatch.setenv("KERNELFLOW_LOCK_TIMEOUT", "0.5")
        holder = hold_open(paths.database)
        try:
            started = time.monotonic()
            with pytest.raises(StoreLockedError) as caught:
                compact(paths)
            waited = time.monotonic() - started
        finally:
            release(holder)

        message = str(caught.value)
        assert 0.4 < waited < 5
        assert "\n" not in message
        assert f"PID {holder.pid}" in message and str(paths.database) in message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__

        report = compact(paths)
        assert report.events == 2
        assert sorted(sql("SELECT id FROM task_runs")["id"]) == sorted([first, second])

    def test_waits_for_a_holder_that_lets_go_in_time(self, paths, monkeypatch):
        record(task_run(new_id()))
        compact(paths)
        record(task_run(new_id()))
        monkeypatch.setenv("KERNELFLOW_LOCK_TIMEOUT", "20")
        holder = hold_open(paths.database)
        later = threading.Timer(0.5, release, [holder])
        later.start()
        try:
            started = time.monotonic()
            assert compact(paths).events == 1
            assert time.monotonic() - started >= 0.4  # it did wait for the holder
        finally:
            later.join()

    def test_a_holder_for_30_s_recording_goes_on_queries_wait_then_name_it(
        self, paths, tmp_path, monkeypatch
    ):
        """The issue's scenario: a foreign program keeps the file open for 30 s.

        Recording never waits for the database. A query waits the lock timeout, then
        names the holder. The holder outlasting that wait is what the 30 s are for, so the
        test lets it go as soon as the queries have failed (it checks the holder still held
        the file then). Afterwards, compaction imports everything recorded meanwhile.
        """
        record(task_run(new_id()))
        compact(paths)  # the database exists, as in real use
        holder = hold_open(paths.database, seconds=30)
        held_since = time.monotonic()
        try:
            recorder, recording = self._record_a_flow(tmp_path)
            # The flow itself did not wait (a wait would be the recorder's 20 s lock
            # timeout), nor did its exit: its compaction at exit waits a bounded moment.
            assert recording["seconds"] < 10, recording
            assert recorder["seconds"] < 15, recorder
            assert "Traceback" not in recorder["stderr"], recorder["stderr"]

            monkeypatch.setenv("KERNELFLOW_LOCK_TIMEOUT", "3")
            started = time.monotonic()
            with pytest.raises(StoreLockedError) as caught:
                sql("SELECT count(*) FROM flow_runs")
            waited = time.monotonic() - started
            # One wait of the lock timeout: folding the new events and reading share it
            # (not 3 s for the fold, then 3 s more for the read).
            assert 2.9 < waited < 5.5, waited
            message = str(caught.value)
            assert "\n" not in message
            assert "python" in message and f"(PID {holder.pid}) holds the store" in message
            assert str(paths.database) in message and "nothing is lost" in message

            cli = subprocess.run(
                [sys.executable, "-m", "kernelflow.cli", "runs", "ls"],
                capture_output=True,
                text=True,
                timeout=120,
                env=self._env(KERNELFLOW_LOCK_TIMEOUT="3"),
            )
            assert cli.returncode == 1, cli.stdout
            # One line: the error naming the holder, not also a warning that the fold failed.
            assert cli.stderr.strip().splitlines() == [f"Error: {message}"], cli.stderr
            assert holder.poll() is None and time.monotonic() - held_since < 30
        finally:
            release(holder)

        monkeypatch.delenv("KERNELFLOW_LOCK_TIMEOUT")
        compact(paths)
        # Only this process's journal is left: the recorder's was imported, then deleted.
        assert list(paths.journal.glob("*.jsonl")) == [current_journal().path]
        flows = sql("SELECT id, state_name FROM flow_runs WHERE flow_name = 'held'")
        assert flows.values.tolist() == [[recording["flow"], "Completed"]]
        tasks = sql("SELECT id, state_name FROM task_runs WHERE flow_run_id = ?", [flows.id[0]])
        assert sorted(tasks.values.tolist()) == sorted([t, "Completed"] for t in recording["tasks"])
        states = sql(
            "SELECT run_id, count(*) AS n FROM states WHERE run_id IN (SELECT unnest(?)) "
            "GROUP BY run_id",
            [[recording["flow"], *recording["tasks"]]],
        )
        assert set(states.n) == {3}  # Pending, Running, Completed: each once
        logs = sql(
            "SELECT message FROM logs WHERE run_id IN (SELECT unnest(?))", [recording["tasks"]]
        )
        assert sorted(logs.message) == [f"step {i}" for i in range(5)]

    @staticmethod
    def _env(**extra: str) -> dict[str, str]:
        env = dict(os.environ, **extra)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        return env

    def _record_a_flow(self, tmp_path: Path) -> tuple[dict, dict]:
        """Run a flow of five tasks in a new process; (the process, what it recorded)."""
        script = tmp_path / "recorder.py"
        script.write_text(
            textwrap.dedent(
                """
                import json, time
                from kernelflow import flow, get_run_logger, task

                @task
                def step(i):
                    get_run_logger().info("step %d", i)
                    return i

                @flow
                def held(n):
                    return [step(i, return_state=True).run_id for i in range(n)]

                started = time.monotonic()
                state = held(5, return_state=True)
                seconds = time.monotonic() - started
                print(json.dumps({"flow": state.run_id, "tasks": state.result(),
                                  "seconds": seconds}))
                """
            )
        )
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=120,
            # Its background compaction tries every 50 ms and would wait up to 20 s.
            env=self._env(
                KERNELFLOW_LOCK_TIMEOUT="20",
                KERNELFLOW_COMPACT_SECONDS="0.05",
                KERNELFLOW_COMPACT_AT_EXIT="inline",
            ),
        )
        assert done.returncode == 0, done.stderr
        process = {"seconds": time.monotonic() - started, "stderr": done.stderr}
        return process, json.loads(done.stdout)

    def test_our_own_lock_held_too_long_names_the_kernelflow_process(self, paths):
        code = (
            "import sys; from pathlib import Path; from kernelflow.settings import StorePaths; "
            "from kernelflow.store.db import connect\n"
            "with connect(StorePaths(Path(sys.argv[1]))):\n"
            "    print('ready', flush=True); sys.stdin.read()\n"
        )
        holder = subprocess.Popen(
            [sys.executable, "-c", code, str(paths.home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout.readline().strip() == "ready"
            with pytest.raises(StoreLockedError, match=f"kernelflow process PID {holder.pid}"):
                with connect(paths, timeout=0.2):
                    pass
        finally:
            release(holder)


class TestDamaged:
    def test_a_corrupt_file_gives_a_one_line_error_and_journals_are_kept(self, paths):
        paths.ensure()
        paths.database.write_bytes(b"this is not a database\x00\xff" * 500)
        record(task_run(new_id()))
        journal_bytes = current_journal().path.read_bytes()

        with pytest.raises(StoreCorruptError) as caught:
            compact(paths)

        message = str(caught.value)
        assert "\n" not in message
        assert "move it aside" in message and str(paths.database) in message
        assert current_journal().path.read_bytes() == journal_bytes

        paths.database.rename(paths.home / "aside.duckdb")
        assert compact(paths).events == 2  # the header and the run, from the journal

    def test_a_schema_from_a_newer_kernelflow(self, paths):
        record(task_run(new_id()))
        compact(paths)
        con = duckdb.connect(str(paths.database))
        con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION + 1])
        con.close()
        record(task_run(new_id()))

        with pytest.raises(SchemaTooNewError, match="upgrade kernelflow") as caught:
            compact(paths)
        assert "\n" not in str(caught.value)
        with pytest.raises(SchemaTooNewError), connect(paths, read_only=True):
            pass

    def test_an_unwritable_home(self, tmp_path):
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        with pytest.raises(StoreNotWritableError, match="KERNELFLOW_HOME"):
            with connect(StorePaths(blocker / "home")):
                pass
