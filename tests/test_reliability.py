"""Reliability, proven with real processes (issue 2, "Reliability, proven by tests").

- A process killed with SIGKILL in the middle of a task: its runs show Crashed
  (not Running) once another kernelflow process looks at the store, and every
  event it recorded before the kill is there.
- Four processes each record 500 task runs into one store at the same time:
  every run is queryable afterwards, none twice.

Everything here goes through the public API: real ``@flow``/``@task`` code in
child interpreters, then ``kernelflow.sql`` in this process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

import kernelflow

KILLED_SCRIPT = """
    import sys, time
    from kernelflow import flow, task, get_run_logger

    @task
    def prepare():
        return 21

    @task(log_prints=True)
    def hang(x):
        print(f"hanging with {x}")
        get_run_logger().warning("about to block")
        sys.stdout.write("IN_TASK\\n")
        sys.stdout.flush()
        time.sleep(120)

    @flow(flow_run_name="doomed")
    def doomed():
        x = prepare()
        hang(x)

    doomed()
"""


def test_killed_mid_task_shows_crashed_and_keeps_its_events(tmp_path, child_env):
    script = tmp_path / "doomed.py"
    script.write_text(textwrap.dedent(KILLED_SCRIPT))
    child = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env,
    )
    try:
        assert child.stdout.readline().strip() == "IN_TASK"
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    flows = kernelflow.sql("SELECT name, state_type, state_name, pid FROM flow_runs")
    assert flows.to_dict("records") == [
        {"name": "doomed", "state_type": "CRASHED", "state_name": "Crashed", "pid": child.pid}
    ]
    tasks = kernelflow.sql(
        "SELECT name, state_name, run_count FROM task_runs ORDER BY name"
    ).to_dict("records")
    assert tasks == [
        {"name": "hang-0", "state_name": "Crashed", "run_count": 1},
        {"name": "prepare-0", "state_name": "Completed", "run_count": 1},
    ]
    history = kernelflow.sql(
        "SELECT t.name, s.state_name FROM states s JOIN task_runs t ON t.id = s.run_id "
        "ORDER BY t.name, s.timestamp, s.seq"
    )
    by_run = history.groupby("name")["state_name"].apply(list).to_dict()
    assert by_run == {
        "hang-0": ["Pending", "Running", "Crashed"],
        "prepare-0": ["Pending", "Running", "Completed"],
    }
    logs = kernelflow.sql(
        "SELECT l.message FROM logs l JOIN task_runs t ON t.id = l.run_id "
        "WHERE t.name = 'hang-0' ORDER BY l.timestamp, l.seq"
    )["message"].tolist()
    assert logs == ["hanging with 21", "about to block"]


def test_killed_run_is_crashed_for_every_reader(tmp_path, child_env, run_python):
    # Another process (not this test's) looks first; the answer is the same here afterwards.
    script = tmp_path / "doomed.py"
    script.write_text(textwrap.dedent(KILLED_SCRIPT))
    child = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env,
    )
    try:
        assert child.stdout.readline().strip() == "IN_TASK"
        child.kill()
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    looked = run_python("""
        import kernelflow
        print(kernelflow.sql("SELECT state_name FROM flow_runs")["state_name"].tolist())
    """)
    assert looked.stdout.strip() == "['Crashed']"
    assert kernelflow.sql("SELECT state_name FROM flow_runs")["state_name"].tolist() == ["Crashed"]


WRITER_SCRIPT = """
    import os, sys, time
    import kernelflow
    from kernelflow import flow, task

    N = {n}

    @task
    def work(i):
        return i * 2

    @flow(flow_run_name="writer-{{worker}}")
    def writer(worker: int):
        total = 0
        for i in range(N):
            total += work(i)
            if i == N // 2:
                # Fold and query mid-run, while the other writers keep writing.
                kernelflow.sql("SELECT count(*) FROM task_runs")
        return total

    print("ready", flush=True)
    go = sys.argv[2]
    while not os.path.exists(go):  # start all writers at the same moment
        time.sleep(0.001)
    print(writer(int(sys.argv[1])))
"""


@pytest.mark.slow
def test_four_processes_record_500_task_runs_each(tmp_path, child_env):
    writers, n = 4, 500
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER_SCRIPT.format(n=n)))
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, str(script), str(w), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env,
        )
        for w in range(writers)
    ]
    try:
        for child in children:  # every interpreter has imported kernelflow
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert out.strip() == str(sum(2 * i for i in range(n)))

    flows = kernelflow.sql(
        "SELECT name, state_name, count(*) OVER (PARTITION BY id) AS copies FROM flow_runs "
        "ORDER BY name"
    ).to_dict("records")
    assert flows == [
        {"name": f"writer-{w}", "state_name": "Completed", "copies": 1} for w in range(writers)
    ]
    totals = kernelflow.sql("""
        SELECT f.name, count(*) AS runs, count(DISTINCT t.id) AS ids,
               count(DISTINCT t.name) AS names,
               count(*) FILTER (WHERE t.state_name = 'Completed') AS completed
        FROM task_runs t JOIN flow_runs f ON f.id = t.flow_run_id
        GROUP BY f.name ORDER BY f.name
    """).to_dict("records")
    assert totals == [
        {"name": f"writer-{w}", "runs": n, "ids": n, "names": n, "completed": n}
        for w in range(writers)
    ]
    assert kernelflow.sql("SELECT count(*) AS n FROM task_runs")["n"][0] == writers * n
    states = kernelflow.sql("""
        SELECT count(*) AS rows, count(DISTINCT (run_id, state_name)) AS distinct_rows
        FROM states WHERE run_kind = 'task'
    """).to_dict("records")
    assert states == [{"rows": writers * n * 3, "distinct_rows": writers * n * 3}]


def test_not_ready_task_run_is_not_crashed_when_its_process_exits(run_python):
    # NotReady (upstream failed) is where such a run ends; its process exiting is no crash.
    run_python("""
        from kernelflow import flow, task

        @task
        def bad():
            raise ValueError("upstream broke")

        @task
        def down(x):
            return x

        @flow
        def f():
            down.submit(bad.submit()).wait()
            return 1

        f()
    """)
    rows = kernelflow.sql("SELECT name, state_name FROM task_runs ORDER BY name")
    assert rows.to_dict("records") == [
        {"name": "bad-0", "state_name": "Failed"},
        {"name": "down-0", "state_name": "NotReady"},
    ]
