"""Issue 11, reliability: durations checked everywhere, one broken deployment stops nothing,
a stopped scheduler leaves nothing Scheduled, a quiet exit, checked environment values, and
the ``kernelflow deploy`` flags tested where users type them."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deploy_helpers import wait_for

from kernelflow import settings
from kernelflow.deployments import Scheduler, deploy, get, list_deployments, run_deployment
from kernelflow.deployments.execution import create_run
from kernelflow.errors import ConfigurationError

BAD_DURATIONS = [math.nan, math.inf, -math.inf, -1, 1e300, True, "soon"]


def kernelflow(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    """``kernelflow ARGS`` in a child process (this test's store and kernels)."""
    return subprocess.run(
        [sys.executable, "-m", "kernelflow.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "400", **(env or {})},
    )


def assert_one_line(done: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    """The command failed with exit ``code`` and one stderr line holding every fragment."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def states_of(store, run_id: str) -> list[str]:
    frame = store.sql(
        "SELECT state_name FROM states WHERE run_id = ? ORDER BY timestamp, seq", [run_id]
    )
    return list(frame["state_name"])


@pytest.fixture
def nb(make_notebook):
    return make_notebook("report", "print(n)", parameters="n: int = 1")


def store_broken(name: str, notebook: Path, **fields) -> None:
    """Write a deployment the way an older version (or a hand edit) could have stored it."""
    from kernelflow.deployments import records
    from kernelflow.deployments.models import Deployment

    broken = Deployment(name=name, notebook=str(notebook), snapshot="x", content_hash="0" * 64)
    for key, value in fields.items():
        setattr(broken, key, value)
    records.save_deployment(broken, update=False)  # no validation on this path: as if old


# -- durations, everywhere ----------
class TestDurations:
    @pytest.mark.parametrize("option", ["interval", "timeout", "cell_timeout"])
    @pytest.mark.parametrize("value", [*BAD_DURATIONS, 0])
    def test_python_api_refuses_positive_durations(self, nb, option, value):
        kwargs = {"interval": 60, option: value}
        with pytest.raises(ConfigurationError) as caught:
            deploy(nb, "r", **kwargs)
        message = str(caught.value)
        flag = "--" + option.replace("_", "-")
        assert "\n" not in message and message.startswith(f"{flag} must be a finite number")
        assert "write e.g. 90" in message
        assert list_deployments() == []

    @pytest.mark.parametrize("option", ["retry_delay", "grace"])
    @pytest.mark.parametrize("value", BAD_DURATIONS)
    def test_python_api_refuses_bad_delays_but_takes_zero(self, nb, option, value):
        with pytest.raises(ConfigurationError, match=r"must be a finite number of seconds >= 0"):
            deploy(nb, "r", interval=60, **{option: value})
        assert deploy(nb, "r", interval=60, **{option: 0}).definition()[option] == 0.0

    def test_units_are_accepted_everywhere(self, nb):
        deployment = deploy(nb, "r", interval="1h30m", timeout="5m", retry_delay="2.5s")
        assert (deployment.interval, deployment.timeout, deployment.retry_delay) == (
            5400.0,
            300.0,
            2.5,
        )

    @pytest.mark.parametrize(
        ("args", "fragment"),
        [
            (["--interval", "nan"], "--interval must be a finite number of seconds > 0"),
            (["--interval", "inf"], "got 'inf'"),
            (["--interval", "-5"], "got '-5'"),
            (["--interval", "5", "--retry-delay", "inf"], "--retry-delay must be"),
            (["--interval", "5", "--timeout", "nan"], "--timeout must be"),
            (["--interval", "5", "--cell-timeout", "0"], "--cell-timeout must be"),
            (["--interval", "5", "--grace", "-1"], "--grace must be"),
        ],
    )
    def test_command_line_refuses_bad_durations_in_one_line(self, nb, args, fragment):
        done = kernelflow("deploy", str(nb), "--name", "r", *args)
        assert_one_line(done, 2, fragment, "write e.g. 90")
        assert list_deployments() == []

    @pytest.mark.parametrize(
        ("line", "fragment"),
        [
            ("interval: .nan", "--interval must be a finite number"),
            ("interval: 60\n    retry_delay: .inf", "--retry-delay must be"),
            ("interval: 60\n    timeout: -5", "--timeout must be"),
            ("interval: 60\n    grace: forever", "--grace must be"),
            ("interval: 60\n    tags: 5", "tags must be a list of text values"),
        ],
    )
    def test_project_file_refuses_bad_durations_in_one_line(self, nb, tmp_path, line, fragment):
        (tmp_path / "kernelflow.yaml").write_text(
            f"deployments:\n  - name: r\n    notebook: {nb.name}\n    {line}\n"
        )
        done = kernelflow("deploy", "--all", "--file", str(tmp_path / "kernelflow.yaml"))
        assert_one_line(done, 2, fragment)
        assert list_deployments() == []

    def test_scheduler_run_deployment_serve_and_magic_flags_check_durations(self):
        from kernelflow import flow
        from kernelflow.deployments.from_code import _magic_parser

        with pytest.raises(ConfigurationError, match="lease_poll must be a finite"):
            Scheduler(lease_poll=math.nan)
        with pytest.raises(ConfigurationError, match="duration must be a finite"):
            Scheduler().run(duration=math.inf)
        with pytest.raises(ConfigurationError, match="timeout must be a finite"):
            run_deployment("anything", timeout=math.nan)

        @flow
        def in_module():
            return 1

        in_module.fn.__module__ = "pipelines"
        with pytest.raises(ConfigurationError, match="Interval must be a finite"):
            in_module.serve(name="x", interval=math.nan)
        # %kf deploy turns this into a UsageError with the usage line.
        with pytest.raises(argparse.ArgumentError, match="--interval: must be a finite number"):
            _magic_parser().parse_args(["--name", "x", "--interval", "nan"])

    def test_scheduler_for_refuses_nan(self):
        done = kernelflow("scheduler", "--for", "nan")
        assert_one_line(done, 2, "--for must be a finite number of seconds > 0")


# -- environment values ----------
class TestEnvironment:
    @pytest.mark.parametrize(
        ("variable", "value", "fragment"),
        [
            ("KERNELFLOW_LOCK_TIMEOUT", "nan", "set it to e.g. 10"),
            ("KERNELFLOW_LOCK_TIMEOUT", "-1", "is not a number of seconds"),
            ("KERNELFLOW_LOGGING_LEVEL", "LOUD", "set it to one of DEBUG, INFO"),
        ],
    )
    def test_bad_values_are_one_line_like_flags(self, variable, value, fragment):
        done = kernelflow("runs", "ls", env={variable: value})
        if variable == "KERNELFLOW_LOGGING_LEVEL":
            done = kernelflow("scheduler", "--once", env={variable: value})
        assert_one_line(done, 2, f"{variable}={value!r}", fragment)

    def test_compact_seconds_stops_the_scheduler_in_one_line(self):
        done = kernelflow("scheduler", "--for", "30", env={"KERNELFLOW_COMPACT_SECONDS": "abc"})
        line = assert_one_line(done, 1, "KERNELFLOW_COMPACT_SECONDS='abc'", "set it to e.g. 5")
        assert "the scheduler stopped" in line

    def test_settings_read_and_refuse_in_one_line(self):
        assert settings.Settings({"KERNELFLOW_COMPACT_SECONDS": "2m"}).compact_seconds == 120.0
        for bad in ("abc", "nan", "inf", "0", "-3"):
            with pytest.raises(ConfigurationError, match="KERNELFLOW_COMPACT_SECONDS="):
                _ = settings.Settings({"KERNELFLOW_COMPACT_SECONDS": bad}).compact_seconds
        with pytest.raises(ConfigurationError, match="set it to on or off"):
            _ = settings.Settings({"KERNELFLOW_WIDGETS": "maybe"}).widgets
        assert settings.Settings({"KERNELFLOW_WIDGETS": "OFF"}).widgets is False
        with pytest.raises(ConfigurationError, match="detach, inline, off"):
            _ = settings.Settings({"KERNELFLOW_COMPACT_AT_EXIT": "later"}).compact_at_exit


# -- one broken deployment stops nothing ----------
class TestBrokenDeployment:
    def test_listed_with_its_problem_everywhere(self, nb, store):
        deploy(nb, "good", interval=3600)
        store_broken("bad-interval", nb, interval=math.nan)
        store_broken("bad-delay", nb, interval=60.0, retry_delay=math.inf)
        found = {d.name: d for d in list_deployments()}
        assert found["good"].problem is None
        assert "--interval must be a finite number" in found["bad-interval"].problem
        assert "--retry-delay must be" in found["bad-delay"].problem
        assert "--update), or delete it" in found["bad-delay"].problem

        listing = kernelflow("deployment", "ls")
        assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr
        rows = {
            cells[0]: cells
            for line in listing.stdout.splitlines()
            if (cells := [c.strip() for c in line.split("│")[1:-1]])
        }
        assert rows["good"][2] == "active" and rows["good"][6] == ""
        assert rows["bad-interval"][2] == "broken" and rows["bad-interval"][3] == "-"
        assert "--interval must be a finite number" in rows["bad-interval"][6]
        shown = kernelflow("deployment", "inspect", "bad-delay")
        assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
        assert "problem" in shown.stdout and "--retry-delay must be" in shown.stdout

        from kernelflow.extension.deployment_payloads import deployments_overview

        overview = {d["name"]: d for d in deployments_overview()["deployments"]}
        assert overview["good"]["problem"] is None and overview["good"]["next_run"]
        assert "--interval must be" in overview["bad-interval"]["problem"]
        assert overview["bad-interval"]["next_run"] is None
        assert "--retry-delay must be" in overview["bad-delay"]["problem"]
        with pytest.raises(ConfigurationError, match="cannot run"):
            run_deployment("bad-delay")

    def test_a_definition_that_is_not_even_complete(self, nb, store):
        from kernelflow.store.db import connect

        store_broken("legacy", nb, interval=60.0)
        with connect(settings.paths()) as con:
            con.execute(
                "UPDATE deployments SET definition = ? WHERE name = 'legacy'",
                [json.dumps({"name": "legacy", "cadence": "hourly"})],
            )
        (legacy,) = list_deployments()
        assert legacy.name == "legacy" and "its definition is incomplete" in legacy.problem
        assert kernelflow("deployment", "ls").returncode == 0

    @pytest.mark.slow
    def test_the_others_keep_firing(self, nb, store):
        good = deploy(nb, "good", interval=2)
        store_broken("bad", nb, interval=math.nan)
        store_broken("worse", nb, cron="0 0 31 2 *")  # never fires
        scheduler = Scheduler(slots=2)
        scheduler.start()
        try:

            def completed() -> int:
                return store.sql(
                    "SELECT count(*) FROM flow_runs WHERE deployment_id = ? "
                    "AND state_name = 'Completed'",
                    [good.id],
                ).iloc[0, 0]

            wait_for(lambda: completed() >= 2, 180, "two runs of the good deployment", every=0.5)
        finally:
            scheduler.stop()
        assert scheduler.error is None
        broken = {d.name for d in list_deployments() if d.id in scheduler.broken}
        assert broken == {"bad", "worse"}
        others = store.sql(
            "SELECT count(*) FROM flow_runs WHERE deployment_id IS NOT NULL AND deployment_id <> ?",
            [good.id],
        ).iloc[0, 0]
        assert others == 0


# -- the scheduler's loop dying ends the process ----------
@pytest.mark.slow
def test_a_dead_scheduler_loop_exits_non_zero_with_one_line(store, tmp_path):
    log = tmp_path / "scheduler.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kernelflow.cli", "scheduler"],
            stdout=out,
            stderr=subprocess.PIPE,
            env={**os.environ, "KERNELFLOW_COMPACT_SECONDS": "600"},
        )
    try:
        fifo = store.home / "deployments" / "wake.fifo"
        wait_for(fifo.exists, 60, "the scheduler to take the lease and open its FIFO")
        # A store other users may write: no retry mends it, a human must (chmod 700).
        os.chmod(store.home, 0o770)
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, b"!")
        os.close(fd)
        _, err = proc.communicate(timeout=60)
    finally:
        os.chmod(store.home, 0o700)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 1, err
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert "the scheduler stopped" in lines[0] and "chmod 700" in lines[0]
    assert "Scheduler started" in log.read_text()


# -- a stopped scheduler leaves nothing Scheduled ----------
def leave_claimed(deployment, when: float) -> str:
    """What a scheduler that stopped between claiming a fire and starting it leaves behind."""
    from kernelflow.deployments import records
    from kernelflow.runs import new_id

    run_id = new_id()
    assert records.claim_fire(deployment.id, when, run_id, "scheduled", start=False)
    create_run(deployment, when, {}, run_id=run_id)
    return run_id


@pytest.mark.slow
class TestLate:
    def test_claimed_unstarted_slots_turn_late_then_follow_latest(self, nb, store):
        deployment = deploy(nb, "late", interval=3600, catchup="latest", grace=1)
        now = time.time()
        older = leave_claimed(deployment, now - 20)
        newer = leave_claimed(deployment, now - 10)
        Scheduler(slots=2).run(once=True)
        assert states_of(store, older) == ["Scheduled", "Late", "Skipped"]
        assert states_of(store, newer) == ["Scheduled", "Late", "Pending", "Running", "Completed"]

    def test_with_skip_nothing_runs_and_nothing_stays_scheduled(self, nb, store):
        deployment = deploy(nb, "late", interval=3600, catchup="skip", grace=0)
        run_id = leave_claimed(deployment, time.time() - 5)
        Scheduler(slots=1).run(once=True)
        assert states_of(store, run_id) == ["Scheduled", "Late", "Skipped"]
        left = store.sql(
            "SELECT count(*) FROM flow_runs WHERE state_type = 'SCHEDULED' "
            "AND state_name = 'Scheduled'"
        ).iloc[0, 0]
        assert left == 0

    def test_a_try_claimed_by_a_killed_scheduler_is_taken_over(self, nb, store, run_python):
        deploy(nb, "dead", interval=3600, catchup="latest", grace=1)
        # A scheduler killed after claiming a fire and its first try, before starting it.
        done = run_python(
            """
            import os, time
            from kernelflow.deployments import get, records
            from kernelflow.deployments.execution import create_run
            from kernelflow.runs import new_id

            deployment, run_id, when = get("dead"), new_id(), time.time() - 10
            assert records.claim_fire(deployment.id, when, run_id, "scheduled", start=True)
            create_run(deployment, when, {}, run_id=run_id)
            print(run_id, flush=True)
            os._exit(0)  # no exit hooks, as after SIGKILL
            """
        )
        run_id = done.stdout.strip()
        Scheduler(slots=1).run(once=True)
        assert states_of(store, run_id) == ["Scheduled", "Late", "Pending", "Running", "Completed"]
        claims = store.sql(
            "SELECT attempt FROM deployment_attempts WHERE flow_run_id = ?", [run_id]
        )
        assert list(claims["attempt"]) == [1]  # taken over, not a second try

    def test_a_stopping_scheduler_starts_what_it_claimed(self, make_notebook, store):
        nb = make_notebook("slow", "import time\ntime.sleep(3)")
        deployment = deploy(nb, "slow", interval=1.5, grace=600)
        scheduler = Scheduler(slots=1)  # fires queue behind the running one
        scheduler.run(duration=4)
        runs = store.sql(
            "SELECT id, state_name FROM flow_runs WHERE deployment_id = ? ORDER BY created",
            [deployment.id],
        )
        assert len(runs) >= 2, runs
        assert set(runs["state_name"]) == {"Completed"}, runs  # none left Scheduled
        assert not scheduler.running_runs and scheduler.error is None


# -- quiet exit, nothing lost ----------
@pytest.mark.slow
def test_exit_during_background_compaction_is_quiet_and_loses_nothing(run_python, store):
    from kernelflow.store.compact import compact

    script = """
        from kernelflow import flow, task

        @task
        def step(i):
            return i

        @flow
        def long():
            for i in range(1500):
                step(i)

        long()
    """
    for attempt in range(3):
        done = run_python(script, timeout=180, KERNELFLOW_COMPACT_SECONDS="0.05")
        assert "compaction failed" not in done.stderr and "Interrupted" not in done.stderr, (
            attempt,
            done.stderr,
        )
    compact()
    counts = store.sql("SELECT count(*) AS n, count(DISTINCT id) AS d FROM task_runs")
    assert counts["n"].iloc[0] == counts["d"].iloc[0] == 4500


# -- the deploy flags where users type them ----------
@pytest.mark.slow
class TestCommandLineFlags:
    def test_each_flag_is_stored(self, nb):
        assert kernelflow("deploy", str(nb), "--name", "up", "--interval", "1h").returncode == 0
        done = kernelflow(
            "deploy",
            str(nb),
            "--name",
            "down",
            "--cron",
            "*/5 * * * *",
            "--timezone",
            "Europe/Berlin",
            "--retries",
            "2",
            "--retry-delay",
            "1.5",
            "--timeout",
            "5m",
            "--cell-timeout",
            "30",
            "--catchup",
            "all",
            "--max-catchup",
            "3",
            "--limit",
            "2",
            "--grace",
            "7",
            "--after",
            "up",
            "--notify",
            "http://127.0.0.1:9/hook",
            "--notify",
            "https://example.invalid/b",
            "--tags",
            "b,a",
            "-p",
            "n=4",
        )
        assert done.returncode == 0, done.stderr
        d = get("down")
        assert (d.retries, d.retry_delay, d.timeout, d.cell_timeout) == (2, 1.5, 300.0, 30.0)
        assert (d.catchup, d.max_catchup, d.limit, d.grace) == ("all", 3, 2, 7.0)
        assert (d.after, d.cron, d.timezone) == ("up", "*/5 * * * *", "Europe/Berlin")
        assert d.notify == ["http://127.0.0.1:9/hook", "https://example.invalid/b"]
        assert (d.tags, d.parameters) == (["a", "b"], {"n": 4})

    @pytest.mark.parametrize(
        ("args", "code", "fragment"),
        [
            (["--retries", "-1"], 2, "--retries must be a whole number >= 0"),
            (["--limit", "0"], 2, "--limit must be a whole number >= 1"),
            (["--catchup", "sometimes"], 2, "'sometimes' is not one of"),
            (["--after", "ghost"], 2, "--after 'ghost' names no deployment"),
            (["--notify", "ftp://x"], 2, "--notify needs an http(s) URL"),
            (["--dask", "tcp://127.0.0.1:1"], 2, "No Dask scheduler answers at"),
        ],
    )
    def test_each_flag_refuses_bad_values(self, nb, args, code, fragment):
        done = kernelflow("deploy", str(nb), "--name", "r", "--interval", "60", *args)
        assert_one_line(done, code, fragment)
        assert list_deployments() == []

    def test_all_applies_the_project_file(self, nb, tmp_path):
        project = tmp_path / "kernelflow.yaml"
        project.write_text(
            "deployments:\n"
            f"  - name: second\n    notebook: {nb.name}\n    after: first\n    retries: 1\n"
            f"  - name: first\n    notebook: {nb.name}\n    interval: 90s\n    timeout: 2m\n"
        )
        done = kernelflow("deploy", "--all", "--file", str(project))
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["first: created", "second: created"]
        assert (get("first").interval, get("first").timeout) == (90.0, 120.0)
        assert (get("second").after, get("second").retries) == ("first", 1)
        again = kernelflow("deploy", "--all", "--file", str(project))
        assert again.stdout.splitlines() == ["first: unchanged", "second: unchanged"]

    def test_runs_ls_by_deployment_and_resume(self, nb):
        mine = deploy(nb, "mine", interval=3600)
        other = deploy(nb, "other", interval=3600)
        now = time.time()
        ids = {create_run(mine, now + i, {}).id for i in range(2)}
        create_run(other, now, {})
        listing = kernelflow("runs", "ls", "--deployment", "mine")
        assert listing.returncode == 0, listing.stderr
        shown = {
            cells[0]
            for line in listing.stdout.splitlines()
            if (cells := [c.strip() for c in line.split("│")[1:-1]]) and cells[0] != "id"
        }
        assert shown == ids, listing.stdout
        missing = kernelflow("runs", "ls", "--deployment", "nope")
        assert_one_line(missing, 1, "No deployment is called 'nope'")

        assert kernelflow("deployment", "pause", "other").stdout.strip() == "Paused 'other'."
        assert get("other").paused
        resumed = kernelflow("deployment", "resume", "other")
        assert resumed.returncode == 0 and resumed.stdout.strip() == "Resumed 'other'."
        assert not get("other").paused and get("other").updated > other.updated
