"""Retention: ``kernelflow store prune`` on a real store, old runs written with old times."""

from __future__ import annotations

import os
import time

import pytest
from click.testing import CliRunner
from store_workers import flow_run, log, new_id, state, task_run

from kernelflow.cli import main
from kernelflow.errors import ConfigurationError
from kernelflow.store import cache_index, compact
from kernelflow.store.db import connect
from kernelflow.store.journal import current_journal
from kernelflow.store.prune import prune

DAY = 86400.0
NOW = time.time()


def ids(paths, table):
    compact(paths)  # what the journals hold, folded
    with connect(paths, read_only=True) as con:
        return {row[0] for row in con.execute(f"SELECT id FROM {table}").fetchall()}


def count(paths, query):
    with connect(paths, read_only=True) as con:
        return con.execute(query).fetchall()[0][0]


def a_flow(ended_days_ago: float | None, final: str = "Completed", parent: str | None = None):
    """Events of a flow run with one task run; ``None``: still running."""
    flow_id, task_id = new_id(), new_id()
    t = NOW - (ended_days_ago if ended_days_ago is not None else 200) * DAY
    events = [
        flow_run(flow_id, t=t - 10, parent_flow_run_id=parent),
        state(flow_id, "Running", kind="flow", t=t - 10, start=t - 10),
        task_run(task_id, flow_id, t=t - 9),
        state(task_id, "Completed", t=t - 8, start=t - 9, end=t - 8),
        log(task_id, "task says hi"),
    ]
    if ended_days_ago is not None:
        events.append(state(flow_id, final, kind="flow", t=t, start=t - 10, end=t))
    return flow_id, task_id, events


@pytest.fixture
def store_with_history(paths):
    old, old_task, old_events = a_flow(100)
    child, child_task, child_events = a_flow(100, parent=old)
    failed, failed_task, failed_events = a_flow(100, final="Failed")
    recent, recent_task, recent_events = a_flow(1)
    running, running_task, running_events = a_flow(None)  # started 200 days ago, still going
    loose_task = new_id()
    loose = [
        task_run(loose_task, None, t=NOW - 100 * DAY),
        state(loose_task, "Completed", t=NOW - 100 * DAY, end=NOW - 100 * DAY),
    ]
    current_journal().write_many(
        old_events + child_events + failed_events + recent_events + running_events + loose
    )
    return {
        "old": {old, child},
        "old_tasks": {old_task, child_task, loose_task},
        "failed": failed,
        "failed_task": failed_task,
        "kept": {recent, running},
        "kept_tasks": {recent_task, running_task},
    }


class TestRuns:
    def test_finished_runs_older_than_the_cutoff_go_with_their_subflows(
        self, paths, store_with_history
    ):
        h = store_with_history

        report = prune(90 * DAY)

        assert ids(paths, "flow_runs") == h["kept"]
        assert ids(paths, "task_runs") == h["kept_tasks"]
        assert (report.flow_runs, report.task_runs) == (3, 4)  # old, child, failed; + loose
        assert count(paths, "SELECT count(*) FROM logs") == 2  # recent's and running's
        assert report.logs == 3 and report.states == 10  # 2 per flow run, 1 per task run
        remaining_runs = h["kept"] | h["kept_tasks"]
        with connect(paths, read_only=True) as con:
            orphans = con.execute("SELECT DISTINCT run_id FROM states").fetchall()
        assert {row[0] for row in orphans} == remaining_runs

    def test_keep_failed_keeps_a_failed_run_and_its_tasks(self, paths, store_with_history):
        h = store_with_history

        report = prune(90 * DAY, keep_failed=True)

        assert h["failed"] in ids(paths, "flow_runs") and report.kept_failed == 1
        assert h["failed_task"] in ids(paths, "task_runs")
        assert not h["old"] & ids(paths, "flow_runs")

    def test_dry_run_counts_what_the_real_run_removes_and_removes_nothing(
        self, paths, store_with_history
    ):
        dry = prune(90 * DAY, dry_run=True)
        assert len(ids(paths, "flow_runs")) == 5 and len(ids(paths, "task_runs")) == 6

        real = prune(90 * DAY)

        fields = ("flow_runs", "task_runs", "states", "logs", "artifacts", "events")
        assert [getattr(dry, f) for f in fields] == [getattr(real, f) for f in fields]
        assert dry.dry_run and not real.dry_run

    def test_a_run_still_going_stays_whatever_its_age(self, paths, store_with_history):
        prune(1)  # one second: every finished run goes
        (running,) = ids(paths, "flow_runs")
        assert running in store_with_history["kept"]
        with connect(paths, read_only=True) as con:
            (state,) = con.execute("SELECT state_name FROM flow_runs").fetchall()[0]
        assert state == "Running"

    def test_a_bad_age_is_refused_in_one_line(self, paths):
        with pytest.raises(ConfigurationError, match="--older-than") as caught:
            prune(-5)
        assert "\n" not in str(caught.value)


class TestFiles:
    def test_unused_old_result_files_go_used_and_new_ones_stay(self, paths, store_with_history):
        from kernelflow.results import write_result

        entry = {"task_name": "t", "task_run_id": new_id(), "duration": 0.1}
        used = cache_index.store("key-used", [1, 2], expires=None, **entry)
        expired = cache_index.store("key-expired", [3], expires=NOW - 1, **entry)
        orphan = write_result({"nobody": "points here"}, task_name="t")
        fresh = write_result({"written": "just now"}, task_name="t")
        old = NOW - 100 * DAY
        for relative in (used.result, expired.result, orphan.path):
            os.utime(paths.home / relative, (old, old))

        report = prune(90 * DAY)

        assert report.cache_entries == 1
        assert [e.key for e in cache_index.entries()] == ["key-used"]
        assert (paths.home / used.result).exists()
        assert not (paths.home / orphan.path).exists()
        assert not (paths.home / expired.result).exists()  # its only entry expired
        assert (paths.home / fresh.path).exists()  # newer than the cutoff: never touched
        assert report.result_files == 2 and report.result_bytes > 0


class TestCommand:
    def test_prints_what_went(self, paths, store_with_history):
        result = CliRunner().invoke(main, ["store", "prune", "--older-than", "90d", "--dry-run"])
        assert result.exit_code == 0, result.output
        assert "Would remove 3 flow runs and 4 task runs that ended before" in result.output
        assert "Nothing was removed (--dry-run)." in result.output
        assert len(ids(paths, "flow_runs")) == 5

        result = CliRunner().invoke(
            main, ["store", "prune", "--older-than", "90d", "--keep-failed"]
        )
        assert result.exit_code == 0, result.output
        assert "Removed 2 flow runs" in result.output
        assert "Kept 1 failed or crashed flow run (--keep-failed)." in result.output

    def test_a_bad_duration_is_one_line(self, paths):
        result = CliRunner().invoke(main, ["store", "prune", "--older-than", "soon"])
        assert result.exit_code == 2
        assert "'soon' is not a duration" in result.output
        assert "Traceback" not in result.output


class TestAutomaticPolicy:
    def test_off_unless_set(self, paths, store_with_history, monkeypatch):
        from kernelflow.store.prune import apply_retention

        monkeypatch.delenv("KERNELFLOW_RETENTION", raising=False)
        assert apply_retention() is None
        assert len(ids(paths, "flow_runs")) == 5

    def test_prunes_once_a_day(self, paths, store_with_history, monkeypatch):
        from kernelflow.store.prune import apply_retention

        monkeypatch.setenv("KERNELFLOW_RETENTION", "90d")
        report = apply_retention()
        assert report is not None and report.flow_runs == 3
        assert ids(paths, "flow_runs") == store_with_history["kept"]
        # Old runs arriving later wait for tomorrow.
        _, _, events = a_flow(100)
        current_journal().write_many(events)
        assert apply_retention() is None
        stamp = paths.home / "pruned.stamp"
        yesterday = time.time() - 86401
        os.utime(stamp, (yesterday, yesterday))
        assert apply_retention().flow_runs == 1

    def test_a_bad_value_is_one_line(self, paths, monkeypatch):
        from kernelflow.store.prune import apply_retention

        monkeypatch.setenv("KERNELFLOW_RETENTION", "forever")
        with pytest.raises(ConfigurationError, match="KERNELFLOW_RETENTION='forever'"):
            apply_retention()

    def test_the_background_compactor_applies_it(self, paths, store_with_history, monkeypatch):
        from kernelflow.store import compactor

        monkeypatch.setenv("KERNELFLOW_RETENTION", "90d")
        compactor._retention_quietly()
        assert ids(paths, "flow_runs") == store_with_history["kept"]
