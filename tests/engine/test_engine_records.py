"""What the store records of runs, and what a script prints.

Part of the engine against Prefect 3.9's observed semantics
(shared/notes/prefect-semantics.md), one class per feature. Timings are only ever
lower bounds (a delay really happened); speed is measured in ``bench/``, never
asserted here.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine_helpers import Flaky

import kernelflow
from kernelflow import flow, get_run_logger, task


# --- What the store records ------------------------------------------------------------
class TestStoreRecords:
    def test_state_history_of_a_retried_task(self):
        flaky = Flaky(OSError("first"))

        @task(retries=1)
        def call():
            return flaky()

        @flow
        def f():
            return call()

        f()
        history = kernelflow.sql(
            "SELECT s.state_name FROM states s JOIN task_runs t ON s.run_id = t.id "
            "WHERE t.task_name = 'call' ORDER BY s.timestamp, s.seq"
        )["state_name"].tolist()
        assert history == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
        row = kernelflow.sql("SELECT state_name, run_count FROM task_runs").to_dict("records")
        assert row == [{"state_name": "Completed", "run_count": 2}]

    def test_flow_run_row(self):
        @flow(flow_run_name="row-check", tags=["nightly"], version="7")
        def f(x: int, y: str = "b"):
            return x

        f(1)
        row = kernelflow.sql(
            "SELECT name, flow_name, flow_version, tags, state_type, state_name, run_count, "
            "parameters->>'x' AS x, parameters->>'y' AS y, pid FROM flow_runs"
        ).to_dict("records")[0]
        import os

        assert row["name"] == "row-check" and row["flow_name"] == "f"
        assert row["flow_version"] == "7" and list(row["tags"]) == ["nightly"]
        assert (row["state_type"], row["state_name"], row["run_count"]) == (
            "COMPLETED",
            "Completed",
            1,
        )
        assert (row["x"], row["y"]) == ("1", "'b'")
        assert row["pid"] == os.getpid()

    def test_logs_of_log_prints_and_get_run_logger(self):
        @task(log_prints=True)
        def t():
            print("printed in task")
            get_run_logger().warning("warned in task")

        @flow
        def f():
            get_run_logger().info("info in flow")
            t()

        f()
        logs = kernelflow.sql(
            "SELECT l.run_kind, l.level, l.level_name, l.message FROM logs l "
            "ORDER BY l.timestamp, l.seq"
        ).to_dict("records")
        assert {
            "run_kind": "flow",
            "level": 20,
            "level_name": "INFO",
            "message": "info in flow",
        } in logs
        assert {
            "run_kind": "task",
            "level": 20,
            "level_name": "INFO",
            "message": "printed in task",
        } in logs
        assert {
            "run_kind": "task",
            "level": 30,
            "level_name": "WARNING",
            "message": "warned in task",
        } in logs
        task_logs = kernelflow.sql(
            "SELECT l.message FROM logs l JOIN task_runs t ON l.run_id = t.id "
            "WHERE t.name = 't-0' ORDER BY l.timestamp, l.seq"
        )["message"].tolist()
        assert task_logs == ["printed in task", "warned in task"]

    def test_persisted_result_is_recorded_and_readable(self, store):
        from kernelflow.results import read_result

        @task(persist_result=True)
        def make():
            return {"rows": [1, 2, 3]}

        @task
        def transient():
            return "not kept"

        @flow
        def f():
            return make(), transient()

        f()
        rows = kernelflow.sql(
            "SELECT task_name, coalesce(result, '-') AS result FROM task_runs ORDER BY task_name"
        ).to_dict("records")
        assert rows[1] == {"task_name": "transient", "result": "-"}
        path = rows[0]["result"]
        assert rows[0]["task_name"] == "make" and (store.home / path).is_file()
        checksum = Path(path).stem
        assert read_result(path, checksum) == {"rows": [1, 2, 3]}

    def test_task_run_upstream_inputs_recorded(self):
        @task
        def up():
            return 1

        @task
        def down(x, y):
            return x + y

        @flow
        def f():
            u = up.submit()
            return down(u, 2)

        f()
        rows = kernelflow.sql(
            "SELECT t.name, t.inputs->>'$.x.upstream' AS x_up, u.name AS upstream_name "
            "FROM task_runs t LEFT JOIN task_runs u ON u.id = t.inputs->>'$.x.upstream' "
            "WHERE t.task_name = 'down'"
        ).to_dict("records")
        assert rows[0]["upstream_name"] == "up-0"


class TestQuietness:
    def test_a_script_prints_only_its_run_lines(self, run_python):
        # Prefect offline prints telemetry errors; kernelflow prints its log lines only.
        proc = run_python("""
            from kernelflow import flow, task

            @task
            def double(x):
                return 2 * x

            @flow(name="quiet")
            def quiet():
                return double.submit(2).result() + double(1)

            print(quiet())
        """)
        assert proc.stdout == "6\n"
        lines = proc.stderr.splitlines()
        assert len(lines) == 4, proc.stderr
        assert all(re.match(r"^\d\d:\d\d:\d\d\.\d{3} \| INFO    \| ", line) for line in lines)
