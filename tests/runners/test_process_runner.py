"""ProcessPoolTaskRunner: tries run in worker processes; the flow's process keeps the records."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from kernelflow import flow, get_run_logger, task
from kernelflow.cache_policies import INPUTS
from kernelflow.concurrency import create_limit
from kernelflow.concurrency.sync import concurrency
from kernelflow.errors import ConfigurationError
from kernelflow.runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

REPO = Path(__file__).resolve().parents[2]
TWO = ProcessPoolTaskRunner(max_workers=2)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["KERNELFLOW_LOGGING_LEVEL"] = "WARNING"
    return env


@task
def whoami(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


@task(log_prints=True)
def chatty(x: int) -> int:
    print(f"printed {x}")
    get_run_logger().warning("logged %s", x)
    return x


@task
def plain_print() -> str:
    print("plain output from the worker")
    return "done"


@task
def boom() -> None:
    raise ValueError("nope-123")


class NeedsTwoArgs(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


@task
def unpicklable_error() -> None:
    raise NeedsTwoArgs(1, 2)


@task
def takes(value: object) -> str:
    return "called"


@task
def returns_a_lock() -> object:
    return threading.Lock()


class TestResults:
    def test_map_runs_in_worker_processes(self):
        @flow(task_runner=TWO)
        def squares() -> list:
            return whoami.map(range(6)).result()

        results = squares()
        assert [value for value, _ in results] == [0, 1, 4, 9, 16, 25]
        pids = {pid for _, pid in results}
        assert os.getpid() not in pids
        assert 1 <= len(pids) <= 2

    def test_errors_read_as_with_threads(self):
        def failing_flow(runner):
            @flow(task_runner=runner)
            def run_boom() -> str:
                return boom.submit().final_state().message

            return run_boom()

        message = failing_flow(TWO)
        assert message == failing_flow(ThreadPoolTaskRunner())
        assert message == "Task run encountered an exception ValueError: nope-123"

    def test_the_original_exception_is_raised_with_the_worker_traceback(self):
        @flow(task_runner=TWO)
        def run_boom() -> None:
            boom.submit().result()

        with pytest.raises(ValueError, match="nope-123") as info:
            run_boom()
        assert "raise ValueError" in str(info.value.__cause__)

    def test_an_exception_that_cannot_be_pickled_still_reports_its_text(self):
        @flow(task_runner=TWO)
        def run_it() -> str:
            return unpicklable_error.submit().final_state().message

        assert "NeedsTwoArgs: 1/2" in run_it()

    def test_caching_works_across_flow_runs(self):
        calls = Path(os.environ["KERNELFLOW_HOME"]) / "calls.txt"

        @task(cache_policy=INPUTS)
        def cached(x: int, where: str) -> int:
            with open(where, "a") as fh:
                fh.write("called\n")
            return x + 1

        @flow(task_runner=TWO)
        def run_cached() -> tuple:
            state = cached.submit(41, str(calls)).final_state()
            return state.name, state.result()

        assert run_cached() == ("Completed", 42)
        assert run_cached() == ("Cached", 42)
        assert calls.read_text().count("called") == 1

    def test_bad_max_workers(self):
        for bad in (0, -1, 1.5, "2"):
            with pytest.raises(ConfigurationError):
                ProcessPoolTaskRunner(max_workers=bad)


class TestLogsAndOutput:
    def test_log_prints_and_run_logger_are_recorded_as_the_runs_logs(self, store):
        @flow(task_runner=TWO)
        def talk() -> list:
            futures = chatty.map([1, 2])
            futures.wait()
            return [f.task_run.id for f in futures]

        ids = talk()
        logs = store.sql(
            "SELECT run_id, level, message FROM logs WHERE run_id IN (?, ?) ORDER BY seq", ids
        )
        by_run = {
            run_id: sorted(zip(group["level"], group["message"], strict=True))
            for run_id, group in logs.groupby("run_id")
        }
        for i, run_id in enumerate(ids, start=1):
            messages = by_run[run_id]
            assert (20, f"printed {i}") in messages
            assert (30, f"logged {i}") in messages

    def test_plain_print_is_shown_in_the_flows_process(self, capsys):
        @flow(task_runner=TWO)
        def show() -> str:
            return plain_print.submit().result()

        assert show() == "done"
        assert "plain output from the worker" in capsys.readouterr().out


class TestTimeoutsAndCrashes:
    def test_a_try_over_its_timeout_is_killed_for_real(self, tmp_path):
        pid_file = tmp_path / "pid"

        @task(timeout_seconds=0.5)
        def sleepy(where: str) -> None:
            Path(where).write_text(str(os.getpid()))
            time.sleep(60)

        @flow(task_runner=TWO)
        def run_sleepy() -> tuple:
            state = sleepy.submit(str(pid_file)).final_state()
            return state.name, state.message

        name, message = run_sleepy()
        assert name == "TimedOut"
        assert message == "Task run exceeded timeout of 0.5 second(s)"
        assert not psutil.pid_exists(int(pid_file.read_text()))

    def test_a_killed_worker_fails_the_try_and_retries_apply(self, tmp_path):
        marker = tmp_path / "first-try"

        @task(retries=1)
        def dies_once(where: str) -> str:
            if not Path(where).exists():
                Path(where).write_text("x")
                os.kill(os.getpid(), signal.SIGKILL)
            return "second try"

        @task
        def always_dies() -> None:
            os.kill(os.getpid(), signal.SIGKILL)

        @flow(task_runner=TWO)
        def run_them() -> tuple:
            ok = dies_once.submit(str(marker))
            lost = always_dies.submit()
            return ok.result(), ok.task_run.run_count, lost.final_state().message

        value, tries, message = run_them()
        assert (value, tries) == ("second try", 2)
        assert "WorkerLostError" in message and "killed by SIGKILL" in message

    def test_a_flow_timeout_stops_the_busy_workers(self, tmp_path):
        pid_file = tmp_path / "pid"

        @task
        def endless(where: str) -> None:
            Path(where).write_text(str(os.getpid()))
            time.sleep(60)

        @flow(task_runner=TWO, timeout_seconds=2)
        def bounded() -> None:
            endless.submit(str(pid_file)).wait()

        state = bounded(return_state=True)
        assert state.name == "TimedOut"
        pid = int(pid_file.read_text())
        deadline = time.monotonic() + 10
        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not psutil.pid_exists(pid)

    def test_no_worker_outlives_its_flow_run(self):
        @flow(task_runner=TWO)
        def pids() -> set:
            return {pid for _, pid in whoami.map(range(4)).result()}

        worker_pids = pids()
        assert worker_pids
        deadline = time.monotonic() + 10
        while any(psutil.pid_exists(p) for p in worker_pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(psutil.pid_exists(p) for p in worker_pids)


class TestSerialization:
    def test_an_unpicklable_argument_is_named(self):
        @flow(task_runner=TWO)
        def send_lock() -> str:
            return takes.submit(threading.Lock()).final_state().message

        message = send_lock()
        assert "argument 'value'" in message and "_thread.lock" in message
        assert "ThreadPoolTaskRunner" in message and "\n" not in message

    def test_a_function_that_cannot_be_pickled_is_named(self):
        guard = threading.Lock()

        @task
        def uses_a_lock() -> int:
            with guard:
                return 1

        @flow(task_runner=TWO)
        def send_function() -> str:
            return uses_a_lock.submit().final_state().message

        message = send_function()
        assert "its function" in message and "uses_a_lock" in message
        assert "_thread.lock" in message and "\n" not in message

    def test_an_unpicklable_return_value_is_named(self):
        @flow(task_runner=TWO)
        def get_lock() -> str:
            return returns_a_lock.submit().final_state().message

        message = get_lock()
        assert "returned a _thread.lock" in message and "\n" not in message


class TestLimitsInsideWorkers:
    def test_concurrency_inside_worker_processes_uses_the_flows_store(self, tmp_path):
        create_limit("one-at-a-time", 1)
        out = tmp_path / "intervals.txt"

        @task
        def exclusive(where: str) -> None:
            with concurrency("one-at-a-time"):
                enter = time.monotonic_ns()
                time.sleep(0.05)
                with open(where, "a") as fh:
                    fh.write(f"{enter} {time.monotonic_ns()} {os.getpid()}\n")

        @flow(task_runner=TWO)
        def run_exclusive() -> None:
            exclusive.map([str(out)] * 4).wait()

        run_exclusive()
        rows = sorted(tuple(int(v) for v in line.split()) for line in out.read_text().splitlines())
        assert len(rows) == 4
        for (_, leave, _), (enter, _, _) in itertools.pairwise(rows):
            assert enter >= leave


@pytest.mark.slow
def test_tasks_defined_in_a_script_without_a_main_guard(tmp_path):
    script = tmp_path / "pipeline.py"
    script.write_text(
        textwrap.dedent("""
        import os
        from kernelflow import flow, task
        from kernelflow.runners import ProcessPoolTaskRunner

        @task
        def process(item: int) -> int:
            return item * item

        @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
        def map_pipeline(items: list[int]) -> list[int]:
            futures = process.map(items)
            return [f.result() for f in futures]

        print(map_pipeline(list(range(10))))
    """)
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == ["[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]"]
