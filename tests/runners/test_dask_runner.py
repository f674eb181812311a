"""DaskTaskRunner on real LocalClusters: results, logs, timeouts, dead workers, bad addresses.

Starting a LocalCluster takes seconds here, so each test covers several
behaviours with one flow run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from kernelflow import flow, get_run_logger, task
from kernelflow.dask import DaskTaskRunner
from kernelflow.errors import ConfigurationError, TaskRunnerError

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CLUSTER = {"n_workers": 2, "threads_per_worker": 1}


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["KERNELFLOW_LOGGING_LEVEL"] = "WARNING"
    return env


@task(log_prints=True)
def square(x: int) -> tuple[int, int]:
    print(f"squaring {x}")
    get_run_logger().warning("logged %s", x)
    return x * x, os.getpid()


@task
def plain_print() -> None:
    print("plain output from a dask worker")


@task
def boom() -> None:
    raise ValueError("nope-123")


@task(timeout_seconds=0.3)
def too_slow() -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # pure Python: the soft timeout can stop it
        pass


@task
def takes(value: object) -> str:
    return "called"


@task(retries=1)
def dies_once(marker: str) -> str:
    if not Path(marker).exists():
        Path(marker).write_text("x")
        os.kill(os.getpid(), signal.SIGKILL)
    return "second try"


@task
def always_dies() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.fixture
def port_8787_taken():
    """Dask's default dashboard port in use, as when another cluster runs on the machine."""
    with socket.socket() as holder:
        try:
            holder.bind(("0.0.0.0", 8787))
            holder.listen()
        except OSError:
            pass  # already taken by someone else: the same situation
        yield


def test_a_local_cluster_runs_tasks_with_logs_errors_and_timeouts(store, capsys, port_8787_taken):
    @flow(task_runner=DaskTaskRunner(cluster_kwargs=CLUSTER))
    def on_dask() -> dict:
        squares = square.map(range(4))
        squares.wait()
        plain_print.submit().wait()
        return {
            "squares": squares.result(),
            "ids": [f.task_run.id for f in squares],
            "boom": boom.submit().final_state().message,
            "slow": too_slow.submit().final_state(),
            "lock": takes.submit(threading.Lock()).final_state().message,
        }

    out = on_dask()
    assert [v for v, _ in out["squares"]] == [0, 1, 4, 9]
    assert os.getpid() not in {pid for _, pid in out["squares"]}
    assert out["boom"] == "Task run encountered an exception ValueError: nope-123"
    assert out["slow"].name == "TimedOut"
    assert out["slow"].message == "Task run exceeded timeout of 0.3 second(s)"
    assert "argument 'value'" in out["lock"] and "_thread.lock" in out["lock"]
    assert "plain output from a dask worker" in capsys.readouterr().out
    logs = store.sql(
        "SELECT run_id, message FROM logs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
        [out["ids"]],
    )
    for i, run_id in enumerate(out["ids"]):
        messages = set(logs[logs["run_id"] == run_id]["message"])
        assert {f"squaring {i}", f"logged {i}"} <= messages


def test_a_worker_killed_mid_task_fails_the_try_and_retries_apply(tmp_path):
    # One at a time: a try that merely waits on a worker when it dies fails too
    # (see kernelflow.dask), which would blur what this test shows.
    @flow(task_runner=DaskTaskRunner(cluster_kwargs=CLUSTER))
    def with_deaths() -> tuple:
        survivor = dies_once.submit(str(tmp_path / "marker"))
        value = survivor.result()
        lost = always_dies.submit()
        return value, survivor.task_run.run_count, lost.final_state().message

    value, tries, message = with_deaths()
    assert (value, tries) == ("second try", 2)
    assert message.startswith("Task run encountered an exception WorkerLostError:")
    assert "\n" not in message


def test_an_address_that_does_not_answer_fails_the_flow_run_in_bounded_time():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    runner = DaskTaskRunner(address=f"tcp://127.0.0.1:{port}", client_kwargs={"timeout": 2})

    @flow(task_runner=runner)
    def unreachable() -> int:
        return square.submit(2).result()[0]

    state = unreachable(return_state=True)
    assert state.is_failed()
    assert f"Could not connect to the Dask scheduler at tcp://127.0.0.1:{port}" in state.message
    assert "\n" not in state.message
    with pytest.raises(TaskRunnerError):
        state.result()


def test_connects_to_a_running_scheduler():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:

        @flow(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
        def remote() -> list:
            return [v for v, _ in square.map(range(3)).result()]

        assert remote() == [0, 1, 4]


def test_bad_options_are_refused():
    with pytest.raises(ConfigurationError, match="not both"):
        DaskTaskRunner(address="tcp://127.0.0.1:8786", cluster_class="distributed.LocalCluster")
    with pytest.raises(ConfigurationError, match="cluster_kwargs must be a dict"):
        DaskTaskRunner(cluster_kwargs=[("n_workers", 2)])

    @flow(task_runner=DaskTaskRunner(cluster_class="no_such_module.Cluster"))
    def bad_class() -> None:
        square.submit(1).wait()

    state = bad_class(return_state=True)
    assert state.is_failed() and "cannot be imported" in state.message


def test_the_cheat_sheet_dask_example(tmp_path):
    example = textwrap.dedent("""
        # Example: use prefect-dask for parallel task execution
        from kernelflow import flow
        from kernelflow.dask import DaskTaskRunner
        @flow(task_runner=DaskTaskRunner(
        cluster_kwargs={"n_workers": 4, "threads_per_worker": 2}
        ))
        def parallel_pipeline():
            ...
    """)
    # The example's body is "..."; the same flow with the map recipe as its body
    # shows the runner doing work.
    harness = textwrap.dedent("""
        import os
        from kernelflow import task

        @task
        def process(item: int) -> int:
            return item * item

        @flow(task_runner=DaskTaskRunner(
        cluster_kwargs={"n_workers": 4, "threads_per_worker": 2}
        ))
        def map_pipeline(items: list[int]) -> list[int]:
            futures = process.map(items)
            return [f.result() for f in futures]

        if __name__ == "__main__":
            print(parallel_pipeline(return_state=True).name)
            print(map_pipeline(list(range(10))))
    """)
    script = tmp_path / "dask_example.py"
    script.write_text(example + harness)
    done = subprocess.run(
        [sys.executable, str(script)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-2:] == [
        "Completed",
        "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
    ]
