"""Readers never fold a big backlog on the caller's clock: they answer and say how far behind.

The runs are recorded by a child process that does not fold (no exit or
background compaction), so its events wait in its journal. A query then
either folds them inline (a small backlog) or starts a separate process to
fold them and answers from what is folded, with one lag line.
"""

from __future__ import annotations

import logging

import pytest

from kernelflow import settings
from kernelflow.errors import ConfigurationError
from kernelflow.store import queries
from kernelflow.store.compact import pending_bytes
from kernelflow.store.queries import reading

RECORD = """
from kernelflow import flow, task

@task
def step(i):
    return i

@flow(name="{name}")
def work():
    for i in range(20):
        step(i)

work()
"""

# The recording child leaves its journal unfolded: no fold at exit, none in the background.
NO_FOLD = {"KERNELFLOW_COMPACT_AT_EXIT": "off", "KERNELFLOW_COMPACT_SECONDS": "3600"}


@pytest.fixture
def unfolded(run_python):
    """Record one run of flow ``lagging`` in a child; its events are not folded yet."""
    queries.recent_flow_runs()  # the database exists, up to date, before the child writes
    run_python(RECORD.format(name="lagging"), **NO_FOLD)
    pending = pending_bytes(settings.paths())
    assert pending > 0
    return pending


def _wait_for_the_fold() -> None:
    """Wait for the fold the query started (bounded: a loaded machine takes seconds)."""
    child = reading._catching_up[settings.paths().home]
    assert child.wait(timeout=120) == 0


class TestLag:
    def test_a_big_backlog_is_folded_elsewhere_and_the_answer_says_so(
        self, unfolded, monkeypatch, caplog
    ):
        monkeypatch.setenv("KERNELFLOW_INLINE_FOLD_BYTES", "1")
        with caplog.at_level(logging.WARNING, "kernelflow.store"), queries.watch_lag() as lag:
            queries.recent_flow_runs()
        try:
            assert len(lag) == 1
            line = lag[0]
            assert "of recent events are still being folded into the store" in line
            assert line.endswith("run again in a few seconds.")
            assert "\n" not in line
            assert line in caplog.text
        finally:
            _wait_for_the_fold()
        # Folded by the other process: the next answer has the run, and is not behind.
        with queries.watch_lag() as lag:
            runs = queries.recent_flow_runs()
        assert lag == []
        assert [run["flow_name"] for run in runs] == ["lagging"]
        assert runs[0]["task_runs"] == 20
        assert pending_bytes(settings.paths()) == 0

    def test_the_line_says_how_much_is_left(self):
        assert queries.lag_line(3_200_000).startswith("3.1 MiB of recent events")
        assert queries.lag_line(52_000).startswith("50.8 KiB of recent events")

    def test_a_small_backlog_is_folded_before_the_answer(self, unfolded):
        with queries.watch_lag() as lag:
            runs = queries.recent_flow_runs()
        assert lag == []
        assert [run["flow_name"] for run in runs] == ["lagging"]
        assert reading._catching_up.get(settings.paths().home) is None

    def test_rest_pages_carry_the_line_only_when_behind(self, unfolded, monkeypatch):
        from kernelflow.extension import payloads

        monkeypatch.setenv("KERNELFLOW_INLINE_FOLD_BYTES", "1")
        try:
            behind = payloads.runs_page()
        finally:
            _wait_for_the_fold()
        assert "still being folded" in behind["behind"]
        monkeypatch.delenv("KERNELFLOW_INLINE_FOLD_BYTES")
        page = payloads.runs_page()
        assert "behind" not in page
        assert [run["flow_name"] for run in page["runs"]] == ["lagging"]
        detail = payloads.run_detail(page["runs"][0]["id"])
        assert "behind" not in detail
        assert len(detail["task_runs"]) == 20

    def test_the_run_history_shows_the_line(self, unfolded, monkeypatch):
        from kernelflow.widgets._history import RunHistory

        monkeypatch.setenv("KERNELFLOW_INLINE_FOLD_BYTES", "1")
        try:
            history = RunHistory()
        finally:
            _wait_for_the_fold()
        assert "still being folded" in history.note
        assert "still being folded" in history.table.html
        monkeypatch.delenv("KERNELFLOW_INLINE_FOLD_BYTES")
        history.refresh()
        assert history.note is None
        assert [row["flow"] for row in history.rows] == ["lagging"]

    def test_a_bad_limit_is_a_one_line_error(self, monkeypatch):
        monkeypatch.setenv("KERNELFLOW_INLINE_FOLD_BYTES", "4MB")
        with pytest.raises(ConfigurationError, match="KERNELFLOW_INLINE_FOLD_BYTES='4MB'"):
            queries.recent_flow_runs()
