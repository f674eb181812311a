"""Pre-started deployment workers: used at the fire, replaced after each run, never left over."""

from __future__ import annotations

import json
import os
import signal

import psutil
import pytest
from deploy_helpers import wait_for

from kernelflow.deployments import Scheduler, deploy, run_deployment
from kernelflow.deployments.workers import STANDBY_FLAG, spawn
from kernelflow.errors import ConfigurationError, KernelflowError


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie has ended too: only its entry is left)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def standbys_of(pid: int) -> list[int]:
    """Pre-started workers among the children of process ``pid``."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if STANDBY_FLAG in child.cmdline():
                found.append(child.pid)
        except psutil.Error:
            pass
    return found


class TestSettings:
    def test_warm_workers_must_be_a_count_and_are_capped_by_slots(self) -> None:
        with pytest.raises(ConfigurationError, match="warm_workers must be a whole number >= 0"):
            Scheduler(warm_workers=-1)
        assert Scheduler(slots=2, warm_workers=5).warm_workers == 2
        assert Scheduler(slots=2, warm_workers=0).warm_workers == 0
        assert Scheduler().warm_pids == []  # none before it is active


def test_a_worker_without_a_job_exits_cleanly_when_its_launcher_closes(store) -> None:
    worker = spawn(standby=True)
    # Between fork and exec the child's command line is not its own yet.
    wait_for(lambda: STANDBY_FLAG in psutil.Process(worker.pid).cmdline(), 30, "the exec")
    assert worker.close(wait=60) == 0  # end-of-file instead of a job: nothing to do


@pytest.mark.slow
def test_runs_take_the_pre_started_worker_which_is_replaced_then_killed_with_the_scheduler(
    make_notebook, store, monkeypatch
) -> None:
    nb = make_notebook("mark", "import os\nprint('mark', os.environ.get('KF_STANDBY_MARK'))")
    deploy(nb, "mark")  # on demand: only our runs fire
    scheduler = Scheduler(slots=1, warm_workers=1)
    scheduler.start()
    seen: set[int] = set()
    try:
        assert scheduler.active.wait(60)
        first = wait_for(lambda: scheduler.warm_pids, 60, "a pre-started worker")
        seen.update(first)
        # Set after the worker started: the run still gets the launcher's environment of now.
        monkeypatch.setenv("KF_STANDBY_MARK", "set-later")
        runs = []
        for expected in range(1, 3):
            waiting = scheduler.warm_pids
            seen.update(waiting)
            runs.append(run_deployment("mark", timeout=0))
            wait_for(
                lambda n=expected: len(scheduler.started_fires) >= n, 120, f"run {expected} to end"
            )
            fire = scheduler.started_fires[-1]
            assert fire.pid == waiting[0], "the run did not take the pre-started worker"
            assert fire.kernel_requested is not None and fire.received is not None
            # Replaced: a new process waits for the next run; the used one ran only this run.
            replacement = wait_for(lambda: scheduler.warm_pids, 60, "the replacement worker")
            assert fire.pid not in replacement
            seen.update(replacement)
        assert scheduler.started_fires[0].pid != scheduler.started_fires[1].pid
    finally:
        scheduler.stop()
    assert scheduler.error is None
    for run in runs:
        state = store.sql("SELECT state_name FROM flow_runs WHERE id = ?", [run.id])
        assert state["state_name"].iloc[0] == "Completed"
        output = store.home / "outputs" / "mark" / f"{run.id}.ipynb"
        printed = json.dumps(json.loads(output.read_text())["cells"][-1]["outputs"])
        assert "mark set-later" in printed
    # stop() returned: every worker, used or waiting, has ended (and its kernel with it).
    assert len(seen) >= 3 and all(gone(pid) for pid in seen), [pid for pid in seen if not gone(pid)]
    assert scheduler.warm_pids == []


@pytest.mark.slow
def test_the_pre_started_worker_ends_when_its_scheduler_is_killed(store, schedulers) -> None:
    proc = schedulers.start("--slots", "2")
    (standby,) = wait_for(lambda: standbys_of(proc.pid), 60, "the scheduler's waiting worker")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    # Its end of the socket closed with it: the worker reads end-of-file and exits.
    wait_for(lambda: gone(standby), 30, "the orphaned worker to exit")


@pytest.mark.slow
def test_without_warm_workers_each_try_starts_cold(make_notebook, store) -> None:
    nb = make_notebook("cold", "print('cold')")
    deploy(nb, "cold")
    scheduler = Scheduler(slots=1, warm_workers=0)
    scheduler.start()
    try:
        assert scheduler.active.wait(60)
        run_deployment("cold", timeout=0)
        wait_for(lambda: scheduler.started_fires, 120, "the run to end")
        assert scheduler.warm_pids == []
    finally:
        scheduler.stop()
    (fire,) = scheduler.started_fires
    # Its worker began after the run was asked for, and got the job before its imports ended.
    assert not fire.standby and fire.sent is not None and fire.received is not None
    assert fire.worker_started is not None and fire.worker_started >= fire.scheduled_time
    assert gone(fire.pid)


class TestRunDeployment:
    """``run_deployment`` (and ``deployment run --wait``) starts its worker before its claims."""

    def test_a_refused_run_leaves_no_worker(self, store) -> None:
        with pytest.raises(KernelflowError):
            run_deployment("no-such-deployment")
        assert [pid for pid in standbys_of(os.getpid()) if not gone(pid)] == []

    def test_a_store_not_created_yet_is_refused_in_one_line(self, tmp_path, monkeypatch) -> None:
        monkeypatch.setenv("KERNELFLOW_HOME", str(tmp_path / "no-store-yet"))
        with pytest.raises(KernelflowError, match="no-such-deployment") as caught:
            run_deployment("no-such-deployment")
        assert "\n" not in str(caught.value)

    @pytest.mark.slow
    def test_the_worker_starts_first_and_runs_the_try(
        self, make_notebook, store, monkeypatch
    ) -> None:
        from kernelflow.deployments import records, standby, workers

        seen: list[tuple[str, bool]] = []
        spawn_, claim = workers.spawn, records.claim_fire

        def spying_spawn(*args, **kwargs):
            seen.append(("spawn", bool(kwargs.get("standby"))))
            return spawn_(*args, **kwargs)

        def spying_claim(*args, **kwargs):
            seen.append(("claim", False))
            return claim(*args, **kwargs)

        monkeypatch.setattr(standby, "spawn", spying_spawn)
        monkeypatch.setattr(workers, "spawn", spying_spawn)  # a cold start would show
        monkeypatch.setattr(records, "claim_fire", spying_claim)
        deploy(make_notebook("first", "print('ran')"), "first")
        run = run_deployment("first")
        assert run.state.name == "Completed", run.state.message
        # One worker, started ahead of the claim, took the try: no cold start after it.
        assert seen == [("spawn", True), ("claim", False)]
        assert [pid for pid in standbys_of(os.getpid()) if not gone(pid)] == []
