"""The engine's short ways on a task run's path give what the long ways gave.

"Finished in state" is printed without a log record while only kernelflow's
handlers would see it (``logs.print_console_only``); journal lines repeat
texts from memos (``store.event_lines``); a run's start time is its first
Running state's. Each is checked here against the long way.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from kernelflow import flow, task
from kernelflow.engine.transitions import subscribe, unsubscribe
from kernelflow.logs import set_console_gate
from kernelflow.states import State
from kernelflow.store.event_lines import state_event
from kernelflow.store.journal import current_journal, encode_event

STAMP = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ")


@task
def inc(x: int) -> int:
    return x + 1


@task
def boom() -> None:
    raise ValueError("no")


@flow(name="few", flow_run_name="few-run")
def few() -> int:
    boom(return_state=True)
    return inc(inc(1))


def finished_lines(err: str) -> list[str]:
    """The "Finished in state" lines of ``err``, their time of day cut off."""
    return [STAMP.sub("", line) for line in err.splitlines() if "Finished in state" in line]


class Keep(logging.Handler):
    """A handler that keeps the records it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def keep() -> Iterator[Keep]:
    handler = Keep()
    logger = logging.getLogger("kernelflow")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


class TestFinishedLine:
    def test_printed_as_the_console_handler_prints_its_record(self, capsys) -> None:
        few()
        short = finished_lines(capsys.readouterr().err)
        # A gate that lets every record through sends the line down the long way.
        set_console_gate(lambda record: True)
        try:
            few()
        finally:
            set_console_gate(None)
        long = finished_lines(capsys.readouterr().err)
        assert short == long
        assert short == [
            "| ERROR   | Task run 'boom-0' - Finished in state "
            "Failed('Task run encountered an exception ValueError: no')",
            "| INFO    | Task run 'inc-0' - Finished in state Completed()",
            "| INFO    | Task run 'inc-1' - Finished in state Completed()",
            "| INFO    | Flow run 'few-run' - Finished in state Completed()",
        ]

    def test_a_handler_added_by_the_user_gets_the_record(self, keep: Keep, capsys) -> None:
        few()
        finished = [r for r in keep.records if r.getMessage().startswith("Finished in state")]
        assert [r.getMessage() for r in finished][1:3] == ["Finished in state Completed()"] * 2
        assert all(r.journal is False and r.run_label for r in finished)  # type: ignore[attr-defined]
        # The console prints the line once either way.
        assert len(finished_lines(capsys.readouterr().err)) == 4

    def test_a_filter_on_the_run_logger_is_applied(self, capsys) -> None:
        logger = logging.getLogger("kernelflow.runs.task")

        def no_completed(record: logging.LogRecord) -> bool:
            return "Completed" not in record.getMessage()

        logger.addFilter(no_completed)
        try:
            few()
        finally:
            logger.removeFilter(no_completed)
        lines = finished_lines(capsys.readouterr().err)
        assert [line for line in lines if "Task run" in line] == [
            next(line for line in lines if "boom-0" in line)
        ]

    def test_a_higher_console_level_hides_it(self, capsys) -> None:
        console = next(
            h
            for h in logging.getLogger("kernelflow").handlers
            if type(h).__name__ == "_StderrHandler"
        )
        before = console.level
        console.setLevel(logging.ERROR)
        try:
            few()
        finally:
            console.setLevel(before)
        lines = finished_lines(capsys.readouterr().err)
        assert len(lines) == 1 and "boom-0" in lines[0]


class TestJournalLines:
    def test_every_line_is_the_generic_encoding_of_its_event(self) -> None:
        # Interleaved runs of two flows: each memo (run id, start time, flow run id,
        # names) changes hands many times.
        @flow
        def outer() -> int:
            total = 0
            for i in range(5):
                total += inc(i) + few()
            return total

        expected = set()

        def listen(kind: str, run: Any, state: State) -> None:
            # The state's line the long way, from the run as it is when the line is written.
            expected.add(encode_event(state_event(kind, run, state, None)))

        subscribe(listen)
        try:
            outer()
        finally:
            unsubscribe(listen)
        raw = current_journal().path.read_bytes().splitlines(keepends=True)
        for line in raw[1:]:  # after the process line
            assert encode_event(json.loads(line)) == line
        states = [line for line in raw if line.startswith(b'{"ev":"state"')]
        assert len(states) > 40 and set(states) <= expected

    def test_a_runs_start_time_is_its_first_running_states(self) -> None:
        seen = []

        @task
        def look() -> None:
            from kernelflow.context import get_run_context

            run = get_run_context().task_run  # type: ignore[union-attr]
            seen.append((run.start_time, run.state.timestamp))

        @flow
        def one() -> None:
            look()

        one()
        start, running = seen[0]
        assert start is running
