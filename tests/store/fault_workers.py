"""Child processes of the fault-injection tests (``test_store_faults.py``).

Run as ``python fault_workers.py <role> <json arguments>``. Each child reports
on stdout, one line per fact, written with ``os.write`` straight to the pipe
(no buffer to lose at a SIGKILL):

``B <flow run id>``
    written inside the flow body: the run's creation, Pending and Running
    events were appended before it.
``T <task run id>``
    written inside a task body: likewise for the task run.
``A <flow run id> <task run id>...``
    written after the flow call returned: every event of the flow run and its
    task runs (including one log line per task run) was appended.

A line counts only once it ends with a newline, so a report cut by a kill is
no acknowledgement. Nothing is acknowledged before the append behind it
returned, which is what makes "every acknowledged event is in the database"
an honest check.

Fault injection is done at two points that real kills cannot aim at (an
append takes microseconds): ``Journal._append`` writing a prefix of its bytes
and then SIGKILL-ing its own process (what a kill in the middle of a large
``write`` leaves behind), and a compactor killing itself between the steps of
a fold. Everything else is the real code.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading


def say(line: str) -> None:
    os.write(1, f"{line}\n".encode())


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def writer(flows: int, tasks: int, torn_append: int = 0, cut: float = 0.5) -> None:
    """Run ``flows`` flows of ``tasks`` tasks each, acknowledging as described above.

    With ``torn_append`` = n > 0, the n-th journal append (the header is the
    first) writes only ``cut`` of its bytes, then the process kills itself.
    """
    from kernelflow import flow, get_run_logger, task
    from kernelflow.context import get_run_context
    from kernelflow.store import journal

    if torn_append:
        real_append = journal.Journal._append
        calls = 0

        def torn(self, fd: int, data: bytes) -> None:
            nonlocal calls
            calls += 1
            if calls == torn_append:
                os.write(fd, data[: min(len(data) - 1, max(1, int(len(data) * cut)))])
                die()
            real_append(self, fd, data)

        journal.Journal._append = torn

    @task
    def work(i: int) -> int:
        say(f"T {get_run_context().task_run.id}")
        get_run_logger().info("work %d", i)
        return i * 2

    task_ids: list[str] = []

    @flow
    def pipeline(n: int) -> list[int]:
        say(f"B {get_run_context().flow_run.id}")
        task_ids.clear()
        out = []
        for i in range(n):
            state = work(i, return_state=True)
            task_ids.append(state.run_id)
            out.append(state.result())
        return out

    for _ in range(flows):
        state = pipeline(tasks, return_state=True)
        assert state.is_completed(), state
        say(f"A {state.run_id} {' '.join(task_ids)}")


def compactor(stage: str) -> None:
    """Fold the store over and over until stdin closes; with ``stage``, die mid-fold.

    Stages (the first fold that reaches one dies there):

    ``in_transaction``
        after the events were inserted, before the commit.
    ``after_commit``
        committed, before the dead journals are deleted.
    ``after_unlink``
        a dead journal deleted, before its offset row is.
    ``""``
        none: the test kills this process from outside when it chooses.
    """
    import pathlib

    from kernelflow.store import compact as compact_fn
    from kernelflow.store import db

    compact_module = sys.modules["kernelflow.store.compact"]

    if stage == "in_transaction":
        real_import = compact_module.import_batch

        def import_then_die(*args, **kwargs):
            real_import(*args, **kwargs)
            die()

        compact_module.import_batch = import_then_die
    elif stage == "after_commit":
        real_connect = db.connect

        class DieAfterCommit:
            def __init__(self, con) -> None:
                self._con = con

            def __getattr__(self, name: str):
                return getattr(self._con, name)

            def commit(self):
                self._con.commit()
                die()

        from contextlib import contextmanager

        @contextmanager
        def connect(*args, **kwargs):
            with real_connect(*args, **kwargs) as con:
                yield DieAfterCommit(con)

        db.connect = connect
    elif stage == "after_unlink":
        real_unlink = pathlib.Path.unlink

        def unlink_then_die(self, *args, **kwargs):
            real_unlink(self, *args, **kwargs)
            if self.suffix == ".jsonl":
                die()

        pathlib.Path.unlink = unlink_then_die

    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    say("ready")
    while True:
        report = compact_fn()
        if report.events:
            say(f"F {report.events}")
        # Paced, so that an idle loop does not take a core from the writers.
        if stop.wait(0.005):
            break
    compact_fn()  # whatever arrived after the last fold
    say("done")


def fill_journal(limit_margin: int, flows: int, tasks: int) -> None:
    """Record flows until the file size limit stops the journal; report, then re-raise.

    The first flow runs without a limit; then ``RLIMIT_FSIZE`` is set to the
    journal's size plus ``limit_margin`` bytes, with SIGXFSZ ignored so that
    the write fails with EFBIG instead of killing the process.
    """
    import resource

    from kernelflow import flow, get_run_logger, task
    from kernelflow.context import get_run_context
    from kernelflow.store.journal import current_journal

    @task
    def work(i: int) -> int:
        get_run_logger().info("work %d", i)
        return i

    task_ids: list[str] = []

    @flow
    def pipeline(n: int) -> list[int]:
        say(f"B {get_run_context().flow_run.id}")
        task_ids.clear()
        out = []
        for i in range(n):
            state = work(i, return_state=True)
            task_ids.append(state.run_id)
            out.append(state.result())
        return out

    def run_one() -> None:
        state = pipeline(tasks, return_state=True)
        if state.is_failed():
            state.result()  # raises what failed the run
        say(f"A {state.run_id} {' '.join(task_ids)}")

    run_one()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    size = current_journal().path.stat().st_size
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + limit_margin, resource.RLIM_INFINITY))
    try:
        for _ in range(flows):
            run_one()
    except Exception as exc:
        say(
            "E "
            + json.dumps(
                {
                    "type": type(exc).__name__,
                    "module": type(exc).__module__,
                    "errno": getattr(exc, "errno", None),
                    "message": str(exc),
                    "render": exc._render_traceback_()
                    if hasattr(exc, "_render_traceback_")
                    else None,
                    "chained": exc.__cause__ is not None
                    or (exc.__context__ is not None and not exc.__suppress_context__),
                }
            )
        )
        # What a script's user sees: Python's report of the uncaught error.
        raise
    say("no error")


if __name__ == "__main__":
    role, arguments = sys.argv[1], json.loads(sys.argv[2])
    {"writer": writer, "compactor": compactor, "fill_journal": fill_journal}[role](**arguments)
