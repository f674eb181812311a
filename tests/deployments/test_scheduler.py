"""The scheduler's promises, with real processes: exactly once, takeover, catch-up."""

from __future__ import annotations

import itertools
import os
import signal
import time

import pytest
from deploy_helpers import kernels_of_run, wait_for

from kernelflow.deployments import deploy, pause, run_deployment

pytestmark = pytest.mark.slow


def fires(store, name: str):
    return store.sql(
        "SELECT epoch(f.scheduled_time) AS t, f.kind, f.flow_run_id, r.state_name, r.run_count, "
        "r.state_message "
        "FROM deployment_fires f JOIN deployments d ON d.id = f.deployment_id "
        "LEFT JOIN flow_runs r ON r.id = f.flow_run_id WHERE d.name = ? ORDER BY t",
        [name],
    )


def lease_holder(store) -> int | None:
    try:
        text = (store.home / "scheduler.lock").read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def test_three_racing_schedulers_run_every_slot_exactly_once(make_notebook, store, schedulers):
    nb = make_notebook("tick", "print('tick', n)")
    deploy(nb, "tick", interval=2, catchup="all")
    # Staggered ends: the lease changes hands while slots keep coming.
    procs = [schedulers.start("--for", str(s), "--slots", "3") for s in (4, 7, 10)]
    schedulers.wait_all(timeout=240)
    assert [p.returncode for p in procs] == [0, 0, 0]
    # Fires the last one claimed but had no free slot for stay claimed; the next start runs
    # them, once. (Paused: no new slots fire meanwhile.)
    pause("tick")
    assert schedulers.start("--once", "--slots", "3").wait(240) == 0
    found = fires(store, "tick")
    slots = list(found["t"])
    assert len(slots) >= 5, found
    gaps = {round(b - a, 3) for a, b in itertools.pairwise(slots)}
    assert gaps == {2.0}, f"a slot is missing: {slots}"  # every slot between first and last
    assert len(set(slots)) == len(slots) and found["flow_run_id"].is_unique
    assert set(found["kind"]) <= {"scheduled", "catchup"}
    assert set(found["state_name"]) == {"Completed"}, found
    runs = store.sql(
        "SELECT count(*) FROM flow_runs r JOIN deployments d "
        "ON d.id = r.deployment_id WHERE d.name = 'tick'"
    ).iloc[0, 0]
    assert runs == len(slots)  # one run per slot, no more


def test_a_killed_scheduler_is_replaced_and_its_run_crashed_then_retried(
    make_notebook, store, schedulers
):
    nb = make_notebook("sleepy", "import time\ntime.sleep(12)\nprint('done')")
    deploy(nb, "sleepy", retries=1)  # on demand: only our run fires
    first = schedulers.start("--slots", "1")
    wait_for(lambda: lease_holder(store) == first.pid, 30, "the first scheduler to take the lease")
    second = schedulers.start("--slots", "1")
    queued = run_deployment("sleepy", timeout=0)  # the active scheduler picks it up
    wait_for(lambda: kernels_of_run(queued.id), 60, "the run's kernel to start")
    try_one_kernels = kernels_of_run(queued.id)
    time.sleep(2)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    killed_at = time.monotonic()
    wait_for(lambda: lease_holder(store) == second.pid, 10, "the standby to take over")
    assert time.monotonic() - killed_at < 10
    # The killed scheduler's worker saw its parent go and killed the kernel.
    wait_for(
        lambda: not any(k in try_one_kernels for k in kernels_of_run(queued.id)),
        15,
        "the first try's kernel to die",
    )

    def history():
        states = store.sql(
            "SELECT state_name FROM states WHERE run_id = ? ORDER BY timestamp, seq", [queued.id]
        )
        return list(states["state_name"])

    wait_for(lambda: "Completed" in history(), 120, "the retry to complete", every=1.0)
    names = history()
    assert names.index("Crashed") < names.index("Retrying") < names.index("Completed")
    assert names.count("Running") == 1 and names.count("Retrying") == 1
    second.send_signal(signal.SIGTERM)
    second.wait(60)
    found = fires(store, "sleepy")
    assert len(found) == 1 and found["run_count"].iloc[0] == 2
    attempts = store.sql(
        "SELECT attempt FROM deployment_attempts WHERE flow_run_id = ? ORDER BY attempt",
        [queued.id],
    )
    assert list(attempts["attempt"]) == [1, 2]
    assert os.path.exists(store.home / "outputs" / "sleepy" / f"{queued.id}.ipynb")


def test_missed_slots_follow_the_catchup_policy(make_notebook, store, schedulers):
    nb = make_notebook("beat", "print('beat')")
    for policy in ("skip", "latest", "all"):
        deploy(nb, policy, interval=2, catchup=policy, max_catchup=3)
    before = schedulers.start("--for", "2.5", "--slots", "3")
    assert before.wait(240) == 0
    last = {p: fires(store, p)["t"].max() for p in ("skip", "latest", "all")}
    time.sleep(max(0.0, max(last.values()) + 7.5 - time.time()))  # three slots or more pass
    again = schedulers.start("--once", "--slots", "3")
    assert again.wait(240) == 0
    for policy in ("skip", "latest", "all"):
        found = fires(store, policy)
        missed = found[found["t"] > last[policy]]  # all from the restart: --once fires no slot
        assert len(missed) >= 3, (policy, found)
        kinds, states = list(missed["kind"]), list(missed["state_name"])
        if policy == "skip":
            assert set(kinds) == {"skipped"} and set(states) == {"Skipped"}
        elif policy == "latest":
            assert kinds == ["skipped"] * (len(kinds) - 1) + ["catchup"]
            assert states == ["Skipped"] * (len(kinds) - 1) + ["Completed"]
        else:
            assert kinds == ["skipped"] * (len(kinds) - 3) + ["catchup"] * 3
            assert states == ["Skipped"] * (len(kinds) - 3) + ["Completed"] * 3, missed.to_dict(
                "records"
            )


def test_limit_makes_fires_wait_and_late_after_the_grace_period(make_notebook, store):
    from kernelflow.deployments import Scheduler

    nb = make_notebook("busy", "import time\ntime.sleep(2)")
    deployment = deploy(nb, "busy", interval=2, limit=1, grace=0.5)
    Scheduler(slots=4).run(duration=12)
    runs = store.sql(
        "SELECT id, epoch(start_time) AS s, epoch(end_time) AS e, state_name "
        "FROM flow_runs WHERE deployment_id = ? AND start_time IS NOT NULL "
        "ORDER BY s",
        [deployment.id],
    )
    assert len(runs) >= 2, runs
    for (_, a), (_, b) in itertools.pairwise(runs.iterrows()):
        assert b["s"] >= a["e"] - 0.05, "two runs of a limit-1 deployment overlapped"
    second = store.sql(
        "SELECT state_name FROM states WHERE run_id = ? ORDER BY timestamp, seq",
        [runs["id"].iloc[1]],
    )
    assert list(second["state_name"])[:3] == ["Scheduled", "Late", "Pending"]
