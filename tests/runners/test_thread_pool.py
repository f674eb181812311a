"""The default task runner's thread pool: threads made as work needs them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest

from kernelflow import flow, task
from kernelflow.errors import TaskRunnerError
from kernelflow.runners import ThreadPoolTaskRunner, _ThreadPool

#: A grace (see _ThreadPool) long enough that no hiccup of a loaded machine outlasts it.
LONG_GRACE = 2.0


def threads(pool: _ThreadPool) -> int:
    """Threads the pool made (under its lock: a thread may run before it is listed)."""
    with pool._lock:
        return len(pool._threads)


@pytest.fixture
def pool() -> Iterator[_ThreadPool]:
    made = _ThreadPool(sys.maxsize, "test-pool")
    try:
        yield made
    finally:
        made.shutdown(wait=True, cancel_futures=True)


class TestThreadsAsNeeded:
    def test_blocked_items_get_a_thread_each_at_once(self, pool):
        gate = threading.Event()
        futures = [pool.submit(gate.wait, 10) for _ in range(5)]
        # Nothing finished yet: as in the standard pool, a thread per waiting item.
        assert threads(pool) == 5
        gate.set()
        assert [f.result(10) for f in futures] == [True] * 5

    def test_an_item_waits_for_a_thread_that_just_finished_one(self):
        pool = _ThreadPool(sys.maxsize, "test-pool", grace=LONG_GRACE)
        gate = threading.Event()
        try:
            assert pool.submit(int, "1").result(10) == 1
            blocked = pool.submit(gate.wait, 10)  # the one thread takes it
            later = pool.submit(int, "2")
            assert threads(pool) == 1  # no new thread yet: one finished work just now
            # The watchdog sees no thread finish anything for the grace and makes one.
            assert later.result(10) == 2
            assert threads(pool) == 2
            assert not blocked.done()
        finally:
            gate.set()
            pool.shutdown(wait=True)

    def test_a_done_callback_waiting_for_later_work_does_not_hold_it_up(self, pool):
        gate, opened = threading.Event(), threading.Event()
        first = pool.submit(gate.wait, 10)
        first.add_done_callback(lambda _f: opened.wait(10))  # runs in the worker thread
        gate.set()
        assert first.result(10) is True  # its thread is now in the callback, waiting
        pool.submit(opened.set)
        # Far sooner than the callback's own 10 s: the watchdog gave the item a thread.
        assert opened.wait(5)

    def test_the_bound_is_kept(self):
        pool = _ThreadPool(2, "test-pool")
        gate = threading.Event()
        try:
            futures = [pool.submit(gate.wait, 10) for _ in range(4)]
            assert threads(pool) == 2
            gate.set()
            assert all(f.result(10) for f in futures)
            assert threads(pool) == 2
        finally:
            pool.shutdown(wait=True)

    def test_threads_are_named_after_the_runner(self):
        runner = ThreadPoolTaskRunner()
        runner.start()
        try:
            name = runner.submit(lambda: threading.current_thread().name).result(10)
        finally:
            runner.shutdown()
        assert name == "kernelflow-task_0"


class TestInFlows:
    def test_blocked_tasks_after_a_burst_of_short_ones_all_run_at_once(self):
        barrier = threading.Barrier(8, timeout=20)

        @task
        def quick(i: int) -> int:
            return i

        @task
        def meet(i: int) -> int:
            barrier.wait()  # breaks (and fails the task) unless all 8 run at the same time
            return i

        @flow
        def burst() -> tuple[int, list[int]]:
            total = sum(f.result() for f in quick.map(range(200)))
            # Right after short tasks finished: these wait for the watchdog's threads.
            return total, [f.result() for f in meet.map(range(8))]

        assert burst() == (sum(range(200)), list(range(8)))

    def test_a_task_waiting_on_one_submitted_after_it_does_not_deadlock(self):
        @task
        def quick(i: int) -> int:
            return i

        @task
        def waits_for(other_done: threading.Event) -> str:
            assert other_done.wait(20), "the later task never ran"
            return "waited"

        @task
        def sets(event: threading.Event) -> str:
            event.set()
            return "set"

        @flow
        def chain() -> list[str]:
            [f.result() for f in quick.map(range(50))]
            event = threading.Event()
            first = waits_for.submit(event)
            second = sets.submit(event)
            return [first.result(), second.result()]

        assert chain() == ["waited", "set"]


class TestShutdown:
    def test_cancel_futures_cancels_what_has_not_started(self):
        pool = _ThreadPool(1, "test-pool")
        gate = threading.Event()
        running = pool.submit(gate.wait, 10)
        queued = pool.submit(int, "3")
        pool.shutdown(wait=False, cancel_futures=True)
        assert queued.cancelled()
        gate.set()
        pool.shutdown(wait=True)
        assert running.result(10) is True

    def test_queued_work_runs_before_the_threads_stop(self):
        pool = _ThreadPool(sys.maxsize, "test-pool", grace=LONG_GRACE)
        gate = threading.Event()
        assert pool.submit(int, "1").result(10) == 1
        blocked = pool.submit(gate.wait, 10)
        # Waits for a thread (see above); shutting down gives it one: the blocked item
        # may be waiting for it, as here.
        opens = pool.submit(gate.set)
        pool.shutdown(wait=True)
        assert opens.done() and blocked.result(0) is True

    def test_submitting_after_shutdown_is_refused(self, pool):
        pool.shutdown()
        with pytest.raises(TaskRunnerError, match="shut down"):
            pool.submit(int, "1")

    def test_an_error_in_the_work_reaches_its_future(self, pool):
        with pytest.raises(ValueError, match="invalid literal"):
            pool.submit(int, "x").result(10)

    def test_the_interpreter_waits_for_submitted_work_at_exit(self, tmp_path):
        marker = tmp_path / "done"
        script = textwrap.dedent(
            f"""
            import threading
            from kernelflow.runners import _ThreadPool

            gate = threading.Event()

            def work():
                gate.wait(0.2)
                open({str(marker)!r}, "w").close()

            _ThreadPool(4, "exit-test").submit(work)
            """
        )
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        assert marker.exists()
