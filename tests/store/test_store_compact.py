"""Compaction: journals folded into real DuckDB files, exactly once, crashes detected."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from store_workers import (
    dead_journal,
    flow_run,
    foreign_journal,
    log,
    new_id,
    record_runs,
    record_then_hang,
    state,
    task_run,
)

from kernelflow.store import compact, start_background_compaction
from kernelflow.store import compactor as compactor_module
from kernelflow.store import journal as journal_module
from kernelflow.store.db import connect, connection_open_in
from kernelflow.store.journal import Journal, current_journal, record

REPO = Path(__file__).resolve().parents[2]


def rows(paths, query, params=None):
    """Query the database directly, without compacting first."""
    with connect(paths, read_only=True) as con:
        return con.execute(query, params).fetchall()


def count(paths, table):
    return rows(paths, f"SELECT count(*) FROM {table}")[0][0]


class TestFold:
    def test_runs_states_logs_are_imported(self, paths):
        flow_id, task_id, cached_id = new_id(), new_id(), new_id()
        t = time.time()
        journal = Journal(paths.journal)
        journal.write_many(
            [
                flow_run(flow_id, t=t),
                state(flow_id, "Running", kind="flow", t=t, start=t),
                task_run(task_id, flow_id, t=t + 1),
                state(task_id, "Pending", t=t + 1),
                state(task_id, "Running", t=t + 2, start=t + 2),
                log(task_id, "hello"),
                state(task_id, "Completed", t=t + 5, start=t + 2, end=t + 5, result="r/1"),
                {"ev": "outputs", "run_id": task_id, "outputs": {"df": "h1"}},
                task_run(cached_id, flow_id, t=t + 6, cache_key="k1"),
                state(cached_id, "Cached", t=t + 6, start=t + 6, end=t + 6, result="r/1"),
                state(flow_id, "Completed", kind="flow", t=t + 7, start=t, end=t + 7),
            ]
        )

        report = compact(paths)

        assert report.opened and report.events == 12 and report.bad_lines == 0
        assert report.crashed_runs == 0 and report.removed_journals == 0
        flow = rows(
            paths,
            "SELECT name, flow_name, flow_version, parameters ->> 'n', tags, state_type, "
            "state_name, duration_s, run_count, pid, process FROM flow_runs",
        )
        assert flow == [
            (
                "etl-run",
                "etl",
                "1.0",
                "3",
                ["nightly"],
                "COMPLETED",
                "Completed",
                pytest.approx(7.0),
                1,
                os.getpid(),
                journal.path.stem,
            )
        ]
        task = rows(
            paths,
            "SELECT flow_run_id, state_name, cached, result, duration_s, outputs ->> 'df', "
            "inputs -> 'x' ->> 'hash', epoch(start_time), epoch(created) "
            "FROM task_runs WHERE id = ?",
            [task_id],
        )
        assert task == [
            (
                flow_id,
                "Completed",
                False,
                "r/1",
                pytest.approx(3.0),
                "h1",
                "abc",
                pytest.approx(t + 2),
                pytest.approx(t + 1),
            )
        ]
        assert rows(paths, "SELECT cached, cache_key FROM task_runs WHERE id = ?", [cached_id]) == [
            (True, "k1")
        ]
        history = rows(
            paths, "SELECT state_name FROM states WHERE run_id = ? ORDER BY seq", [task_id]
        )
        assert [h[0] for h in history] == ["Pending", "Running", "Completed"]
        assert rows(paths, "SELECT run_id, level_name, message FROM logs") == [
            (task_id, "INFO", "hello")
        ]
        assert rows(paths, "SELECT process, pid FROM processes") == [
            (journal.path.stem, os.getpid())
        ]

    def test_the_light_shape_folds_as_the_old_one(self, paths):
        """A creation with ``"pending": true`` stands for its Pending state; state lines
        may leave null fields out. Old and new shapes fold to the same rows."""
        t = time.time()
        old_id, new_id_, waiting_id = new_id(), new_id(), new_id()

        def light(event: dict) -> dict:
            return {k: v for k, v in event.items() if v is not None}

        Journal(paths.journal).write_many(
            [
                task_run(old_id, t=t),
                state(old_id, "Pending", t=t, run_count=0),
                state(old_id, "Running", t=t + 1, start=t + 1),
                state(old_id, "Completed", t=t + 2, start=t + 1, end=t + 2, result="r/1"),
                task_run(new_id_, t=t, pending=True),
                light(state(new_id_, "Running", t=t + 1, start=t + 1)),
                light(state(new_id_, "Completed", t=t + 2, start=t + 1, end=t + 2, result="r/1")),
                task_run(waiting_id, t=t + 3, pending=True),  # submitted, not started yet
            ]
        )

        report = compact(paths)

        assert report.bad_lines == 0
        query = (
            "SELECT state_type, state_name, state_message, epoch(state_timestamp), "
            "epoch(start_time), epoch(end_time), duration_s, run_count, result, pid "
            "FROM task_runs WHERE id = ?"
        )
        assert rows(paths, query, [new_id_]) == rows(paths, query, [old_id])
        assert rows(paths, query, [new_id_])[0][:2] == ("COMPLETED", "Completed")
        assert rows(paths, query, [waiting_id]) == [
            (
                "PENDING",
                "Pending",
                None,
                pytest.approx(t + 3),
                None,
                None,
                None,
                0,
                None,
                os.getpid(),
            )
        ]
        history = (
            "SELECT run_kind, state_type, state_name, message, epoch(timestamp) FROM states "
            "WHERE run_id = ? ORDER BY seq"
        )
        assert rows(paths, history, [new_id_]) == rows(paths, history, [old_id])
        assert [r[2] for r in rows(paths, history, [new_id_])] == [
            "Pending",
            "Running",
            "Completed",
        ]
        assert rows(paths, history, [waiting_id]) == [
            ("task", "PENDING", "Pending", None, pytest.approx(t + 3))
        ]

    def test_a_light_creation_folded_alone_then_its_states(self, paths):
        """The implied Pending of a run folded in one fold, its next states in the next."""
        run_id, t = new_id(), time.time()
        journal = Journal(paths.journal)
        journal.write(task_run(run_id, t=t, pending=True))
        compact(paths)
        assert rows(paths, "SELECT state_name FROM task_runs WHERE id = ?", [run_id]) == [
            ("Pending",)
        ]
        journal.write_many(
            [
                {
                    "ev": "state",
                    "run_id": run_id,
                    "kind": "task",
                    "type": "RUNNING",
                    "name": "Running",
                    "t": t + 1,
                    "run_count": 1,
                    "start_time": t + 1,
                },
                {
                    "ev": "state",
                    "run_id": run_id,
                    "kind": "task",
                    "type": "COMPLETED",
                    "name": "Completed",
                    "t": t + 2,
                    "run_count": 1,
                    "start_time": t + 1,
                    "end_time": t + 2,
                },
            ]
        )
        compact(paths)
        assert rows(
            paths, "SELECT state_name, run_count, duration_s FROM task_runs WHERE id = ?", [run_id]
        ) == [("Completed", 1, pytest.approx(1.0))]
        names = rows(paths, "SELECT state_name FROM states WHERE run_id = ? ORDER BY seq", [run_id])
        assert [n[0] for n in names] == ["Pending", "Running", "Completed"]

    def test_an_inputs_event_fills_in_hashes_and_the_cache_key(self, paths):
        run_id = new_id()
        inputs = {"x": {"hash": None, "upstream": "up-1"}, "y": {"hash": None, "upstream": None}}
        record(task_run(run_id, inputs=inputs))
        compact(paths)  # the creation may be folded before the hashes are known
        record({"ev": "inputs", "run_id": run_id, "cache_key": "k", "inputs": {"x": "h1"}})
        compact(paths)

        ((key, merged),) = rows(paths, "SELECT cache_key, inputs FROM task_runs")
        assert key == "k"
        assert json.loads(merged) == {
            "x": {"hash": "h1", "upstream": "up-1"},
            "y": {"hash": None, "upstream": None},
        }

    def test_compacting_twice_imports_nothing_twice(self, paths):
        run_id = new_id()
        record(task_run(run_id))
        record(state(run_id, "Running"))
        assert compact(paths).events == 3

        again = compact(paths)

        assert not again.opened  # nothing new: the database is not even opened
        assert count(paths, "task_runs") == 1 and count(paths, "states") == 1
        record(state(run_id, "Completed"))
        assert compact(paths).events == 1
        assert count(paths, "task_runs") == 1 and count(paths, "states") == 2
        assert rows(paths, "SELECT state_name FROM task_runs") == [("Completed",)]

    def test_a_failure_mid_fold_commits_nothing(self, paths, monkeypatch):
        run_id = new_id()
        journal = dead_journal(paths.journal)
        journal.write_many([task_run(run_id), state(run_id, "Running")])
        module = sys.modules["kernelflow.store.compact"]

        def fail(*args):
            raise RuntimeError("power cut")  # after the events were inserted

        with monkeypatch.context() as patch:
            patch.setattr(module, "_crash", fail)
            with pytest.raises(RuntimeError):
                compact(paths)
        assert count(paths, "task_runs") == count(paths, "journal_offsets") == 0
        assert journal.path.exists()

        report = compact(paths)
        assert report.events == 3 and report.crashed_runs == 1
        assert count(paths, "task_runs") == 1 and count(paths, "states") == 2

    def test_a_partial_last_line_waits_for_its_newline(self, paths):
        run_id = new_id()
        record(task_run(run_id))
        line = (json.dumps(state(run_id, "Running")) + "\n").encode()
        with open(current_journal().path, "ab") as fh:
            fh.write(line[:20])  # a writer stopped mid-line
        assert compact(paths).events == 2
        assert count(paths, "states") == 0

        with open(current_journal().path, "ab") as fh:
            fh.write(line[20:])
        assert compact(paths).events == 1
        assert rows(paths, "SELECT state_name FROM task_runs") == [("Running",)]

    def test_an_unreadable_line_is_skipped_not_fatal(self, paths):
        first, second = new_id(), new_id()
        record(task_run(first))
        with open(current_journal().path, "ab") as fh:
            fh.write(b'{"ev": "state", "run_id": \n')
        record(task_run(second))

        report = compact(paths)

        assert report.bad_lines == 1
        assert count(paths, "task_runs") == 2

    def test_events_out_of_order_across_journals(self, paths):
        # A run created by one process and moved by another: the second
        # journal may be folded first.
        run_id = new_id()
        t = time.time()
        mover = foreign_journal(paths.journal)
        mover.write(state(run_id, "Completed", t=t + 2, start=t + 1, end=t + 2))
        compact(paths)
        assert rows(paths, "SELECT state_name, created FROM task_runs") == [("Completed", None)]

        creator = Journal(paths.journal)
        creator.write_many([task_run(run_id, t=t), state(run_id, "Pending", t=t)])
        compact(paths)

        (row,) = rows(paths, "SELECT task_name, state_name, process, epoch(created) FROM task_runs")
        # The older Pending does not overwrite the newer Completed.
        assert row == ("load", "Completed", mover.path.stem, pytest.approx(t))
        assert count(paths, "states") == 2

    def test_cache_events(self, paths):
        t = time.time()
        write = {
            "ev": "cache_write",
            "key": "k",
            "task_name": "load",
            "result": "results/ab",
            "checksum": "c1",
            "size": 10,
            "created": t,
            "expires": None,
            "task_run_id": "tr",
            "duration": 2.5,
        }
        # A hit recorded by another process may be folded before the write.
        foreign_journal(paths.journal).write({"ev": "cache_hit", "key": "k", "t": t + 1})
        compact(paths)
        journal = Journal(paths.journal)
        journal.write_many([write, {"ev": "cache_hit", "key": "k", "task_run_id": "x", "t": t + 2}])
        compact(paths)
        assert rows(
            paths,
            "SELECT task_name, size, duration_s, hits, epoch(last_hit), deleted FROM cache_entries",
        ) == [("load", 10, 2.5, 2, pytest.approx(t + 2), False)]

        journal.write({"ev": "cache_delete", "key": "k", "t": t + 3})
        compact(paths)
        assert rows(paths, "SELECT deleted FROM cache_entries") == [(True,)]

        journal.write(dict(write, created=t + 4, checksum="c2"))
        compact(paths)
        assert rows(paths, "SELECT checksum, deleted, hits FROM cache_entries") == [
            ("c2", False, 2)
        ]


class TestBatches:
    """A fold reads journals in batches of about BATCH_BYTES: its memory stays flat."""

    @pytest.fixture
    def small_batches(self, monkeypatch):
        module = sys.modules["kernelflow.store.compact"]
        monkeypatch.setattr(module, "BATCH_BYTES", 2048)
        return module

    def test_many_batches_import_what_one_would(self, paths, small_batches):
        flow_id = new_id()
        tasks = [new_id() for _ in range(60)]
        events = [flow_run(flow_id), state(flow_id, "Running", kind="flow")]
        for task_id in tasks:
            events += [task_run(task_id, flow_id), state(task_id, "Completed")]
        events.append(log(tasks[-1], "x" * 5000))  # one line longer than a batch
        events.append(state(flow_id, "Completed", kind="flow"))
        other = foreign_journal(paths.journal)  # a second journal shares the batches
        other.write(log(flow_id, "from another process"))
        record_all = Journal(paths.journal)
        record_all.write_many(events)
        size = record_all.path.stat().st_size
        assert size > 10 * small_batches.BATCH_BYTES

        report = compact(paths)

        assert report.events == len(events) + 2 + 1  # + both journals' headers
        assert report.journals == 2
        assert count(paths, "task_runs") == 60 and count(paths, "logs") == 2
        assert rows(paths, "SELECT state_name FROM flow_runs") == [("Completed",)]
        (offset,) = rows(
            paths, 'SELECT "offset" FROM journal_offsets WHERE file = ?', [record_all.path.name]
        )[0]
        assert offset == size
        assert not compact(paths).opened  # all of it, exactly once

    def test_a_batch_over_the_memory_limit_is_read_again_with_more(self, paths, caplog):
        # A 4 MB line does not parse under the fold's usual limit (without the retry this
        # raised DuckDB's out-of-memory error at every fold: the store never caught up).
        flow_id = new_id()
        message = "x" * (4 << 20)
        Journal(paths.journal).write_many(
            [
                flow_run(flow_id),
                log(flow_id, message, kind="flow"),
                state(flow_id, "Completed", kind="flow"),
            ]
        )

        with caplog.at_level("INFO", logger="kernelflow.store"):
            compact(paths)

        assert "needs more memory; reading it again" in caplog.text
        assert rows(paths, "SELECT length(message) FROM logs") == [(len(message),)]
        assert rows(paths, "SELECT state_name FROM flow_runs") == [("Completed",)]
        assert not compact(paths).opened  # imported once

    def test_out_of_memory_mid_transaction_reads_it_all_again_once(
        self, paths, small_batches, caplog
    ):
        # The huge line's batch is not the transaction's first: the batches before it
        # are rolled back with it and read again, none lost, none twice.
        flow_id = new_id()
        before = [log(flow_id, f"before {i} " + "z" * 300, kind="flow") for i in range(6)]
        after = [log(flow_id, f"after {i} " + "z" * 300, kind="flow") for i in range(12)]
        huge = log(flow_id, "x" * (4 << 20), kind="flow")
        Journal(paths.journal).write_many([flow_run(flow_id), *before, huge, *after])

        with caplog.at_level("INFO", logger="kernelflow.store"):
            report = compact(paths)

        assert "needs more memory; reading it again" in caplog.text
        assert report.events == 1 + 1 + 6 + 1 + 12  # the header, the run, the logs: once
        assert count(paths, "logs") == 19
        assert rows(paths, "SELECT count(DISTINCT message) FROM logs") == [(19,)]
        assert not compact(paths).opened

    @pytest.mark.parametrize(
        ("line", "bad_lines", "logs"),
        [
            (b'{"ev": "log", "message": \n', 1, 12),  # torn: not JSON, skipped
            (b'{"ev": "log", "message": "\xff"}\n', 0, 13),  # invalid UTF-8: replaced
        ],
        ids=["torn", "invalid-utf8"],
    )
    def test_a_bad_line_in_a_later_batch_of_a_transaction_does_not_stop_the_fold(
        self, paths, small_batches, line, bad_lines, logs
    ):
        # Its batch is read while the transaction holds earlier batches: DuckDB's error
        # aborts that transaction, and the fold must still get past the line.
        flow_id = new_id()
        journal = Journal(paths.journal)
        journal.write_many(
            [flow_run(flow_id)] + [log(flow_id, f"{i} " + "z" * 300) for i in range(6)]
        )
        with open(journal.path, "ab") as fh:
            fh.write(line)
        journal.write_many([log(flow_id, f"after {i} " + "z" * 300) for i in range(6)])

        report = compact(paths)

        assert report.bad_lines == bad_lines
        assert count(paths, "logs") == logs
        assert not compact(paths).opened

    def test_a_fold_checkpoints_before_its_memory_limit_is_lifted(self, paths):
        # Left to the close, the checkpoint ran without the limit: up to 120 MB more.
        module = sys.modules["kernelflow.store.compact"]
        task_id = new_id()
        Journal(paths.journal).write_many([task_run(task_id), state(task_id, "Completed")])
        wal = paths.database.with_name(paths.database.name + ".wal")

        with connect(paths) as con:
            module.fold(con, paths, module.CompactReport())
            assert not wal.exists() or wal.stat().st_size == 0
            assert con.execute("SELECT count(*) FROM task_runs").fetchall() == [(1,)]

    def test_a_states_seq_is_its_lines_offset_whatever_the_batches(self, paths, small_batches):
        from kernelflow.store.journals import JournalName

        flow_id = new_id()
        mine, theirs = Journal(paths.journal), foreign_journal(paths.journal)
        for i in range(40):  # both journals in most batches
            task_id = new_id()
            journal = mine if i % 2 else theirs
            journal.write_many([task_run(task_id, flow_id), state(task_id, "Running")])

        compact(paths)

        for journal in (mine, theirs):
            data = journal.path.read_bytes()
            process = JournalName.parse(journal.path.name).process
            found = rows(paths, "SELECT run_id, seq FROM states WHERE process = ?", [process])
            assert len(found) == 20  # a Running state for each of its 20 runs
            for run_id, seq in found:
                assert (
                    data[seq - 1 : seq] == b"\n" and run_id in data[seq:].split(b"\n")[0].decode()
                )
        assert not list(paths.home.glob("*.fold-batch"))  # the scratch file is removed

    def test_a_dead_journal_is_crashed_and_removed_after_its_last_batch(
        self, paths, small_batches, monkeypatch
    ):
        flow_id = new_id()
        journal = dead_journal(paths.journal)
        journal.write_many(
            [flow_run(flow_id), state(flow_id, "Running", kind="flow")]
            + [log(flow_id, f"line {i} " + "y" * 200) for i in range(40)]
        )
        crashed_at_batch = []
        real_crash = small_batches._crash

        def spy(con, dead, journals):
            crashed_at_batch.append(count_in(con, "logs"))
            return real_crash(con, dead, journals)

        monkeypatch.setattr(small_batches, "_crash", spy)

        report = compact(paths)

        assert crashed_at_batch == [40]  # once, after every batch was imported
        assert report.crashed_runs == 1 and report.removed_journals == 1
        assert not journal.path.exists()

    def test_a_failure_in_a_later_transaction_keeps_the_earlier_ones_once(
        self, paths, small_batches, monkeypatch
    ):
        flow_id = new_id()
        journal = Journal(paths.journal)
        journal.write_many(
            [flow_run(flow_id)] + [log(flow_id, f"line {i} " + "z" * 200) for i in range(80)]
        )
        real_import = small_batches.import_batch
        calls = []
        fail_at = small_batches.BATCHES_PER_COMMIT + 2  # within the second transaction

        def failing(*args):
            calls.append(1)
            if len(calls) == fail_at:
                raise RuntimeError("power cut")
            return real_import(*args)

        with monkeypatch.context() as patch:
            patch.setattr(small_batches, "import_batch", failing)
            with pytest.raises(RuntimeError):
                compact(paths)
        first = count(paths, "logs")
        assert 0 < first < 80  # the first transaction's batches, none of the second's

        compact(paths)

        assert count(paths, "logs") == 80  # the rest, and nothing twice


def count_in(con, table):
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


class TestCrashDetection:
    def test_unfinished_runs_of_a_dead_process_are_crashed(self, paths):
        flow_id, done, busy, later, blocked = (new_id() for _ in range(5))
        journal = dead_journal(paths.journal)
        journal.write_many(
            [
                flow_run(flow_id),
                state(flow_id, "Running", kind="flow"),
                task_run(done, flow_id),
                state(done, "Completed"),
                task_run(busy, flow_id),
                state(busy, "Running", start=time.time()),
                flow_run(later),
                state(later, "Scheduled", kind="flow"),
                task_run(blocked, flow_id),
                state(blocked, "NotReady"),
            ]
        )

        report = compact(paths)

        assert report.crashed_runs == 2 and report.removed_journals == 1
        assert not journal.path.exists()
        assert count(paths, "journal_offsets") == 0
        crashed = rows(
            paths,
            "SELECT id, state_type, state_message, end_time IS NOT NULL FROM "
            "(SELECT * EXCLUDE (flow_name, flow_version, parent_flow_run_id, parent_task_run_id,"
            " deployment_id, parameters) FROM flow_runs UNION ALL BY NAME "
            " SELECT * FROM task_runs) WHERE state_name = 'Crashed' ORDER BY id",
        )
        pid = os.getpid()
        assert crashed == sorted(
            [
                (
                    flow_id,
                    "CRASHED",
                    f"Process {pid} on host {journal.identity.host} exited "
                    "while this run was Running",
                    True,
                ),
                (
                    busy,
                    "CRASHED",
                    f"Process {pid} on host {journal.identity.host} exited "
                    "while this run was Running",
                    True,
                ),
            ]
        )
        assert rows(paths, "SELECT state_name FROM task_runs WHERE id = ?", [done]) == [
            ("Completed",)
        ]
        # A Scheduled run is a promise for later, not work the process was doing.
        assert rows(paths, "SELECT state_name FROM flow_runs WHERE id = ?", [later]) == [
            ("Scheduled",)
        ]
        # NotReady: its upstream failed, it was never going to start.
        assert rows(paths, "SELECT state_name FROM task_runs WHERE id = ?", [blocked]) == [
            ("NotReady",)
        ]
        assert rows(paths, "SELECT crashed_runs, ended IS NOT NULL FROM processes") == [(2, True)]
        last = rows(paths, "SELECT state_name FROM states WHERE run_id = ? ORDER BY seq", [busy])
        assert [r[0] for r in last] == ["Running", "Crashed"]
        assert not compact(paths).opened  # nothing left to do

    def test_journals_of_other_hosts_are_only_imported(self, paths):
        run_id = new_id()
        journal = foreign_journal(paths.journal)
        journal.write_many([task_run(run_id), state(run_id, "Running")])

        report = compact(paths)

        assert report.crashed_runs == 0 and journal.path.exists()
        assert rows(paths, "SELECT state_name FROM task_runs") == [("Running",)]

    def test_a_killed_process_loses_nothing_and_its_run_is_crashed(self, paths):
        ids = {"flow": new_id(), "done": new_id(), "busy": new_id()}
        spawn = multiprocessing.get_context("spawn")
        ready = spawn.Event()
        child = spawn.Process(target=record_then_hang, args=(str(paths.home), ids, ready))
        child.start()
        try:
            assert ready.wait(60), "the child never got going"
        finally:
            child.kill()  # SIGKILL: no atexit, no finally
            child.join()
        assert child.exitcode == -9

        report = compact(paths)

        assert report.crashed_runs == 2 and report.removed_journals == 1
        states = rows(paths, "SELECT run_id, state_name FROM states ORDER BY run_id, seq")
        assert sorted(states) == sorted(
            [
                (ids["flow"], "Running"),
                (ids["flow"], "Crashed"),
                (ids["done"], "Running"),
                (ids["done"], "Completed"),
                (ids["busy"], "Running"),
                (ids["busy"], "Crashed"),
            ]
        )
        assert rows(paths, "SELECT state_name FROM task_runs WHERE id = ?", [ids["busy"]]) == [
            ("Crashed",)
        ]
        assert sorted(m for (m,) in rows(paths, "SELECT message FROM logs")) == [
            "about to be killed",
            "working",
        ]
        assert rows(paths, "SELECT pid FROM processes") == [(child.pid,)]


class TestConcurrency:
    def test_four_processes_record_and_compact_at_once(self, paths):
        spawn = multiprocessing.get_context("spawn")
        results = spawn.Queue()
        children = [
            spawn.Process(target=record_runs, args=(str(paths.home), 500, 100, results))
            for _ in range(4)
        ]
        for child in children:
            child.start()
        ids = [run_id for _ in children for run_id in results.get(timeout=240)]
        for child in children:
            child.join(60)
            assert child.exitcode == 0

        compact(paths)

        assert len(ids) == len(set(ids)) == 2000
        found = rows(paths, "SELECT id, count(*), any_value(state_name) FROM task_runs GROUP BY id")
        assert len(found) == 2000
        assert {r[0] for r in found} == set(ids)
        assert {(r[1], r[2]) for r in found} == {(1, "Completed")}
        assert count(paths, "states") == 4000
        assert count(paths, "processes") == 4


class TestBackground:
    def test_background_thread_folds_this_process_journal(self, paths):
        compactor = start_background_compaction(interval=0.05)
        try:
            assert start_background_compaction() is compactor  # one per process
            run_id = new_id()
            record(task_run(run_id))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if paths.database.exists() and count(paths, "task_runs"):
                    break
                time.sleep(0.05)
            assert rows(paths, "SELECT id FROM task_runs") == [(run_id,)]
        finally:
            compactor.stop(timeout=10)
        assert not compactor.is_alive()

    def test_a_process_compacts_its_journal_at_exit(self, paths):
        run_id = new_id()
        code = (
            "import sys\n"
            "from kernelflow.store import start_background_compaction\n"
            "from kernelflow.store.journal import record\n"
            "start_background_compaction(interval=3600)\n"  # only the exit hook will act
            f"record({{'ev': 'task_run', 'id': {run_id!r}, 't': 1.0}})\n"
        )
        env = dict(os.environ, KERNELFLOW_HOME=str(paths.home), KERNELFLOW_COMPACT_AT_EXIT="inline")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)

        assert rows(paths, "SELECT id FROM task_runs") == [(run_id,)]  # no compact() here

    def test_at_exit_a_background_fold_stops_before_its_next_batch_and_is_waited_for(
        self, paths, monkeypatch
    ):
        # A daemon thread still in DuckDB's code when the interpreter ends is unwound
        # through its C++ frames, which aborted the process now and then (SIGABRT, exit
        # status 134, "FATAL: exception not rethrown"). The exit hook used to wait 2 s
        # at most; it now stops the fold and waits while the thread is in it.
        compact_module = sys.modules["kernelflow.store.compact"]
        inside, release = threading.Event(), threading.Event()
        real_import = compact_module.import_batch

        def held_import(con, *args):
            if not inside.is_set():  # the first batch, its connection open: held here
                inside.set()
                release.wait(60)
            return real_import(con, *args)

        monkeypatch.setattr(compact_module, "import_batch", held_import)
        monkeypatch.setattr(compact_module, "BATCH_BYTES", 64)  # a batch per line
        ids = [new_id() for _ in range(3)]
        for run_id in ids:
            record(task_run(run_id))
        thread = start_background_compaction(interval=0.01)
        assert inside.wait(60)
        assert connection_open_in(thread)

        exiting = threading.Thread(target=compactor_module._stop_before_exit, args=(thread,))
        exiting.start()
        try:
            exiting.join(0.5)
            assert exiting.is_alive()  # it waits while the thread folds
        finally:
            release.set()
        exiting.join(60)
        assert not exiting.is_alive() and not thread.is_alive()
        assert not connection_open_in(thread)
        # The fold stopped before its second batch and rolled back: nothing is lost.
        assert count(paths, "task_runs") == 0
        compact(paths)
        assert sorted(rows(paths, "SELECT id FROM task_runs")) == sorted((i,) for i in ids)

    def test_by_default_a_detached_child_compacts_after_exit(self, paths):
        run_id = new_id()
        code = (
            "from kernelflow.store.journal import record\n"
            f"record({{'ev': 'task_run', 'id': {run_id!r}, 't': 1.0}})\n"
        )
        env = dict(os.environ, KERNELFLOW_HOME=str(paths.home))
        env.pop("KERNELFLOW_COMPACT_AT_EXIT", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)

        # The child folds the journal and removes it (its writer is gone).
        deadline = time.monotonic() + 60
        while any(paths.journal.glob("*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(paths.journal.glob("*.jsonl"))
        assert rows(paths, "SELECT id FROM task_runs") == [(run_id,)]


class TestJournalLookup:
    """``current_journal`` remembers its answer, and knows when the store changed."""

    def test_another_home_gets_another_journal(self, paths, tmp_path, monkeypatch):
        from kernelflow import settings

        first = current_journal()
        assert current_journal() is first and first.path.parent == paths.journal
        other = tmp_path / "other"
        monkeypatch.setenv("KERNELFLOW_HOME", str(other))
        previous = settings.use_home(None)  # the environment alone decides now
        try:
            second = current_journal()
            assert second.path.parent == other / "journal"
            settings.use_home(tmp_path / "third")
            assert current_journal().path.parent == tmp_path / "third" / "journal"
        finally:
            settings.use_home(previous)
            journal_module.forget(other / "journal")
            journal_module.forget(tmp_path / "third" / "journal")
        monkeypatch.setenv("KERNELFLOW_HOME", str(paths.home))
        assert current_journal() is first

    def test_a_forgotten_journal_is_not_handed_out_again(self, paths):
        first = current_journal()
        journal_module.forget(paths.journal)
        assert current_journal() is not first

    def test_a_forked_child_has_its_own_journal(self, paths):
        parent = current_journal()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, and leave without running any cleanup
            try:
                child = current_journal()
                ok = child is not parent and child.identity.pid == os.getpid()
                os.write(write, b"1" if ok else b"0")
            finally:
                os._exit(0)
        os.close(write)
        try:
            assert os.read(read, 1) == b"1"
        finally:
            os.close(read)
            os.waitpid(pid, 0)
