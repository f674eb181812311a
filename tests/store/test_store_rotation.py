"""Journal rotation, the backlog measure and the detached fold, on real files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from store_workers import dead_journal, flow_run, new_id, state, task_run

from kernelflow.errors import ConfigurationError
from kernelflow.store import compact
from kernelflow.store.compact import pending_bytes
from kernelflow.store.compactor import start_detached_compaction
from kernelflow.store.db import connect
from kernelflow.store.journal import Journal, rotate_bytes
from kernelflow.store.journals import JournalName, finished_parts, list_journals

CHILD_TIMEOUT = 120


def rows(paths, query):
    with connect(paths, read_only=True) as con:
        return con.execute(query).fetchall()


def completed_tasks(count: int, flow_id: str) -> list[dict]:
    events = []
    for _ in range(count):
        task_id = new_id()
        events += [
            task_run(task_id, flow_id),
            state(task_id, "Running", start=1.0),
            state(task_id, "Completed", start=1.0, end=2.0),
        ]
    return events


@pytest.fixture
def small_parts(monkeypatch):
    """Journals rotate every 4 KiB, so a few dozen runs span several parts."""
    monkeypatch.setenv("KERNELFLOW_JOURNAL_ROTATE_MB", str(4 / 1024))


class TestNames:
    def test_both_forms_name_the_same_process(self):
        first = JournalName.parse("vm--12--345--abcdef01.jsonl")
        later = JournalName.parse("vm--12--345--abcdef01--3.jsonl")
        assert first == JournalName("vm--12--345--abcdef01", 0)
        assert later == JournalName("vm--12--345--abcdef01", 3)
        assert later.seq_base() > first.seq_base()

    def test_only_parts_followed_by_a_later_one_are_finished(self, tmp_path):
        names = [
            "a--1--2--b.jsonl",
            "a--1--2--b--1.jsonl",
            "a--1--2--b--2.jsonl",
            "c--3--4--d.jsonl",
        ]
        found = finished_parts([tmp_path / n for n in names])
        assert {p.name for p in found} == {"a--1--2--b.jsonl", "a--1--2--b--1.jsonl"}

    @pytest.mark.parametrize("value", ["0", "-1", "big", "inf"])
    def test_a_bad_rotation_size_is_one_line(self, monkeypatch, value):
        monkeypatch.setenv("KERNELFLOW_JOURNAL_ROTATE_MB", value)
        with pytest.raises(ConfigurationError, match="KERNELFLOW_JOURNAL_ROTATE_MB"):
            rotate_bytes()


class TestRotation:
    def test_a_growing_journal_goes_on_in_new_parts(self, paths, small_parts):
        journal = Journal(paths.journal)
        flow_id = new_id()
        for event in [flow_run(flow_id), *completed_tasks(40, flow_id)]:
            journal.write(event)

        parts = sorted(list_journals(paths), key=lambda p: JournalName.parse(p.name).part)
        assert len(parts) >= 3
        assert {JournalName.parse(p.name).process for p in parts} == {
            JournalName.parse(journal.identity.file_name).process
        }
        assert parts[-1] == journal.path
        for number, part in enumerate(parts):
            assert JournalName.parse(part.name).part == number
            head = json.loads(part.read_bytes().split(b"\n", 1)[0])
            assert head["ev"] == "process" and head.get("part", 0) == number
            # Each part is at most one write past the size, and ends with a whole line.
            assert part.read_bytes().endswith(b"\n")

    def test_every_part_is_imported_once_and_left_parts_deleted_while_the_process_lives(
        self, paths, small_parts
    ):
        journal = Journal(paths.journal)
        flow_id = new_id()
        first = [flow_run(flow_id), *completed_tasks(30, flow_id)]
        journal.write_many(first[:1])
        for event in first[1:]:
            journal.write(event)

        report = compact(paths)

        assert report.removed_journals >= 2
        assert list(list_journals(paths)) == [journal.path]  # the part being written stays
        assert rows(paths, "SELECT count(*), count(DISTINCT id) FROM task_runs") == [(30, 30)]
        assert rows(paths, "SELECT count(*) FROM states") == [(60,)]
        assert rows(paths, "SELECT count(*) FROM processes") == [(1,)]
        assert rows(paths, "SELECT DISTINCT state_name FROM task_runs") == [("Completed",)]

        for event in completed_tasks(30, flow_id):
            journal.write(event)
        compact(paths)

        assert rows(paths, "SELECT count(*), count(DISTINCT id) FROM task_runs") == [(60, 60)]
        assert rows(paths, "SELECT count(*) FROM states") == [(120,)]
        assert rows(paths, "SELECT count(*) FROM processes") == [(1,)]
        assert journal.path.exists()
        # Events of later parts sort after those of earlier ones, within the process.
        seqs = [s for (s,) in rows(paths, "SELECT seq FROM states ORDER BY timestamp, seq")]
        assert len(set(seqs)) == len(seqs)

    def test_a_run_spanning_parts_ends_in_its_last_state(self, paths, small_parts):
        journal = Journal(paths.journal)
        flow_id, slow = new_id(), new_id()
        journal.write(task_run(slow, flow_id, t=1.0))
        journal.write(state(slow, "Running", t=2.0, start=2.0))
        for event in completed_tasks(30, flow_id):  # several parts later...
            journal.write(event)
        journal.write(state(slow, "Completed", t=3.0, start=2.0, end=3.0))
        assert journal.part >= 2

        compact(paths)

        assert rows(paths, f"SELECT state_name, duration_s FROM task_runs WHERE id = '{slow}'") == [
            ("Completed", 1.0)
        ]

    def test_a_crash_between_fold_and_delete_imports_nothing_twice(
        self, paths, small_parts, monkeypatch
    ):
        journal = Journal(paths.journal)
        for event in completed_tasks(30, new_id()):
            journal.write(event)
        compact_module = sys.modules["kernelflow.store.compact"]

        class Crash(BaseException):
            pass

        def crash(*args, **kwargs):
            raise Crash

        # The fold has committed; the process dies as it starts deleting left parts.
        monkeypatch.setattr(compact_module, "forget_header", crash)
        monkeypatch.setattr(type(journal.path), "unlink", crash)
        with pytest.raises(Crash):
            compact(paths)
        monkeypatch.undo()
        assert len(list_journals(paths)) >= 3  # nothing deleted

        report = compact(paths)

        assert report.events == 0
        assert report.removed_journals >= 2
        assert rows(paths, "SELECT count(*), count(DISTINCT id) FROM task_runs") == [(30, 30)]
        assert rows(paths, "SELECT count(*) FROM states") == [(60,)]

    def test_a_dead_process_with_several_parts_crashes_its_runs_once(self, paths, small_parts):
        journal = dead_journal(paths.journal)
        flow_id, unfinished = new_id(), new_id()
        journal.write(flow_run(flow_id))
        journal.write(state(flow_id, "Running", kind="flow", start=1.0))
        for event in completed_tasks(30, flow_id):
            journal.write(event)
        journal.write(task_run(unfinished, flow_id))
        journal.write(state(unfinished, "Running", start=1.0))
        assert journal.part >= 2

        report = compact(paths)

        assert report.crashed_runs == 2  # the flow run and its unfinished task run
        assert list_journals(paths) == {}
        assert rows(paths, f"SELECT state_name FROM task_runs WHERE id = '{unfinished}'") == [
            ("Crashed",)
        ]
        assert rows(paths, "SELECT count(*) FROM states WHERE state_name = 'Crashed'") == [(2,)]
        assert rows(paths, "SELECT count(*), max(crashed_runs) FROM processes") == [(1, 2)]


class TestBacklog:
    def test_pending_bytes_follows_writes_and_folds(self, paths):
        assert pending_bytes(paths) == 0
        journal = Journal(paths.journal)
        journal.write_many(completed_tasks(5, new_id()))
        size = journal.path.stat().st_size
        assert pending_bytes(paths) == size

        compact(paths)
        assert pending_bytes(paths) == 0

        journal.write_many(completed_tasks(2, new_id()))
        assert pending_bytes(paths) == journal.path.stat().st_size - size

    def test_pending_bytes_imports_no_duckdb(self, paths):
        Journal(paths.journal).write_many(completed_tasks(3, new_id()))
        code = (
            "import sys; from pathlib import Path; from kernelflow.settings import StorePaths;"
            "from kernelflow.store.compact import pending_bytes;"
            f"print(pending_bytes(StorePaths(Path({str(paths.home)!r}))));"
            "assert 'duckdb' not in sys.modules and 'pyarrow' not in sys.modules"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=CHILD_TIMEOUT
        )
        assert out.returncode == 0, out.stderr
        assert int(out.stdout) == pending_bytes(paths) > 0

    def test_a_detached_compaction_can_be_waited_for(self, paths):
        journal = Journal(paths.journal)
        journal.write_many(completed_tasks(4, new_id()))

        child = start_detached_compaction(paths)

        assert child is not None
        assert child.wait(timeout=CHILD_TIMEOUT) == 0
        assert rows(paths, "SELECT count(*) FROM task_runs") == [(4,)]
        assert pending_bytes(paths) == 0


class TestRunsAcrossBatches:
    """A run whose states come batches after its creation is moved, whichever path it takes."""

    def test_runs_finished_one_or_many_batches_later_end_completed(self, paths, monkeypatch):
        monkeypatch.setattr(sys.modules["kernelflow.store.compact"], "BATCH_BYTES", 1024)
        journal = Journal(paths.journal)
        flow_id = new_id()
        events, open_runs = [], []
        for i in range(40):
            task_id = new_id()
            events += [
                task_run(task_id, flow_id, t=100.0 + i),
                state(task_id, "Running", t=100.0 + i),
            ]
            open_runs.append(task_id)
            if i % 2:  # finished at once, the next batch, or many batches later
                done = open_runs.pop(0)
                events.append(state(done, "Completed", t=200.0 + i, start=100.0, end=200.0 + i))
        for done in open_runs:
            events.append(state(done, "Completed", t=300.0, start=100.0, end=300.0))
        journal.write_many(events)

        compact(paths)

        assert rows(paths, "SELECT state_name, count(*) FROM task_runs GROUP BY ALL") == [
            ("Completed", 40)
        ]
        assert rows(paths, "SELECT count(*) FROM task_runs WHERE created IS NULL") == [(0,)]
        assert rows(paths, "SELECT count(*) FROM states") == [(80,)]
