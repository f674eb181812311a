"""The scheduler's firing schedule: when each deployment fires next, catch-up, recovery.

A heap of next fire times, one entry per deployment (stale entries are
dropped by version); on taking over, missed slots by the catch-up policy
(:mod:`kernelflow.deployments.catchup`), fires other processes claimed but
did not start, and retries of Crashed runs. One bad deployment is left alone
(:meth:`_FiringSchedule._isolated`); the others keep firing.
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
import time
from collections.abc import Callable
from typing import Any

from kernelflow.deployments import records
from kernelflow.deployments.catchup import plan_catchup, split_by_policy
from kernelflow.deployments.execution import RunExecution, create_run, resume_run
from kernelflow.deployments.models import Deployment
from kernelflow.deployments.scheduler.lease import LEAD_S
from kernelflow.deployments.scheduler.slots import _Queued, _RunSlots
from kernelflow.errors import StoreError
from kernelflow.runs import FlowRun, new_id
from kernelflow.states import State, StateType

__all__ = ["describe_error"]

logger = logging.getLogger("kernelflow.deployments.scheduler")

#: Fire kinds that are schedule slots (the catch-up policy applies to them when Late).
_SLOT_FIRES = ("scheduled", "catchup")


class _FiringSchedule(_RunSlots):
    """The firing schedule part of :class:`~kernelflow.deployments.scheduler.Scheduler`."""

    _heap: list[tuple[float, int, str, int]]
    _versions: dict[str, int]
    _seq: int
    _broken: dict[str, tuple[float, str]]

    # -- taking over ----------------------------------------------------------------------
    def _take_over(self) -> None:
        from kernelflow.store.compact import compact

        compact()  # a dead scheduler's runs become Crashed here
        self._open_fifo()
        now = time.time()
        deployments = {d.id: d for d in records.load_deployments()}
        last = records.last_slots()
        with self._lock:
            self._deployments = deployments
        late = self._recover(now)
        for deployment in deployments.values():
            if not self._usable(deployment):
                continue
            pending = late.pop(deployment.id, [])
            if deployment.paused or deployment.schedule() is None:
                self._isolated(deployment, "catching up", self._settle_late, deployment, pending)
                continue
            cursor = max(last.get(deployment.id, 0.0), deployment.updated)
            if self._isolated(
                deployment, "catching up", self._catch_up, deployment, cursor, now, pending
            ):
                self._isolated(deployment, "scheduling", self._schedule_next, deployment, now)

    # -- one deployment at a time ------------------------------------------------------------
    def _usable(self, deployment: Deployment) -> bool:
        """Whether to schedule ``deployment``: not broken (stored so, or failing here)."""
        if deployment.problem is not None:
            self._mark_broken(deployment, deployment.problem)
            return False
        seen = self._broken.get(deployment.id)
        if seen is not None and seen[0] == deployment.updated:
            return False  # failed here before; a new deploy (a new stamp) tries again
        self._broken.pop(deployment.id, None)
        return True

    def _mark_broken(self, deployment: Deployment, why: str) -> None:
        """Leave ``deployment`` alone until it is deployed again; say so once."""
        seen = self._broken.get(deployment.id)
        if seen is None or seen[0] != deployment.updated:
            logger.error("kernelflow: %s is not scheduled: %s", deployment.name, why)
        self._broken[deployment.id] = (deployment.updated, why)
        self._versions[deployment.id] = self._versions.get(deployment.id, 0) + 1

    def _isolated(
        self, deployment: Deployment, what: str, step: Callable[..., Any], *args: Any
    ) -> bool:
        """Run ``step`` for one deployment; its failure stops that deployment, not the others.

        Store errors are the loop's (every deployment needs the store) and propagate.
        """
        try:
            step(*args)
            return True
        except StoreError:
            raise
        except Exception as exc:  # recorded: the deployment is left alone and listed as broken
            why = f"{what} failed: {describe_error(exc)}"
            logger.debug("kernelflow: %s: %s", deployment.name, why, exc_info=exc)
            self._mark_broken(deployment, why)
            return False

    def _catch_up(
        self,
        deployment: Deployment,
        cursor: float,
        now: float,
        late: list[_Queued] | None = None,
    ) -> None:
        """Slots missed since ``cursor``, and ``late`` claimed ones, by the catch-up policy."""
        schedule = deployment.schedule()
        assert schedule is not None
        plan = plan_catchup(schedule, cursor, now, deployment.catchup, deployment.max_catchup)
        late = late or []
        if late:
            # Claimed-but-unstarted slots are missed slots too: one policy over both.
            missed = [item.scheduled_time for item in late] + plan.run + plan.skip
            run, _ = split_by_policy(missed, deployment.catchup, deployment.max_catchup)
            keep = set(run)
            plan.run = [t for t in plan.run + plan.skip if t in keep]
            plan.skip = [t for t in plan.skip if t not in keep]
            self._settle_late(deployment, late, keep)
        if plan.skip:
            ids = {when: new_id() for when in plan.skip}
            got = records.claim_skipped(deployment.id, ids.items())
            for when in got:
                _record_skipped(deployment, when, ids[when])
            if got or plan.omitted:
                logger.info(
                    "kernelflow: %s: %d missed slot(s) recorded as Skipped%s",
                    deployment.name,
                    len(got),
                    f" ({plan.omitted} older ones not recorded)" if plan.omitted else "",
                )
        for when in sorted(plan.run):
            self._fire(deployment, when, "catchup")

    def _settle_late(
        self, deployment: Deployment, late: list[_Queued], keep: set[float] | None = None
    ) -> None:
        """Late claimed slots: each becomes Late, then runs if in ``keep``, else Skipped.

        Each try is claimed first, so a slot another scheduler is starting
        right now (one that is stopping gracefully) is left to it.
        """
        if keep is None:
            runnable = not deployment.paused and deployment.schedule() is not None
            times = [item.scheduled_time for item in late]
            run, _ = split_by_policy(times, deployment.catchup, deployment.max_catchup)
            keep = set(run) if runnable else set()
        for item in sorted(late, key=lambda q: q.scheduled_time):
            if not item.claimed and not records.claim_attempt(item.run.id, item.attempt):
                continue
            item.claimed = True
            execution = RunExecution(deployment, item.run, item.scheduled_time)
            execution.mark_late()
            if item.scheduled_time in keep:
                self._enqueue(item)
            else:
                why = "paused" if deployment.paused else f"--catchup {deployment.catchup}"
                execution.skip(f"Claimed but not started before its scheduler stopped ({why})")

    def _recover(self, now: float | None = None) -> dict[str, list[_Queued]]:
        """Start fires nobody started, and retry dead processes' runs that have tries left.

        Returns the schedule slots among them that are Late (not started within
        the grace period), by deployment id: the catch-up policy decides those.
        """
        from kernelflow.store.compact import compact

        now = time.time() if now is None else now
        compact()
        with self._lock:
            deployments = dict(self._deployments)
            known = set(self._known_runs)
        late: dict[str, list[_Queued]] = {}
        for fire in records.unstarted_fires():
            deployment = deployments.get(fire["deployment_id"])
            if deployment is None or fire["flow_run_id"] in known or not self._usable(deployment):
                continue
            run = _existing_or_new_run(deployment, fire)
            item = _Queued(deployment, run, fire["scheduled_time"], fire["parameters"])
            with self._lock:
                self._known_runs.add(run.id)
            if fire["kind"] in _SLOT_FIRES and now - fire["scheduled_time"] > deployment.grace:
                late.setdefault(deployment.id, []).append(item)
            else:
                self._enqueue(item)
        for row in records.orphaned_runs():
            deployment = deployments.get(row["deployment_id"])
            if deployment is None or row["id"] in known or not self._usable(deployment):
                continue
            if row["unstarted"]:
                # Its try was claimed by a process that died before starting it.
                attempt = int(row["attempts"])
                if not records.take_over_attempt(row["id"], attempt, row["process"]):
                    continue
                item = _Queued(
                    deployment,
                    resume_run(deployment, row),
                    row["scheduled_time"] or now,
                    row["parameters"],
                    attempt,
                    claimed=True,
                )
                with self._lock:
                    self._known_runs.add(row["id"])
                slot = attempt == 1 and row["kind"] in _SLOT_FIRES
                if slot and now - item.scheduled_time > deployment.grace:
                    late.setdefault(deployment.id, []).append(item)
                else:
                    self._enqueue(item)
                continue
            attempt = int(row["attempts"]) + 1
            if not records.claim_attempt(row["id"], attempt):
                continue
            run = resume_run(deployment, row)
            logger.info(
                "kernelflow: %s: run %s was %s; starting try %d",
                deployment.name,
                row["id"],
                row["state_name"],
                attempt,
            )
            self._enqueue(
                _Queued(
                    deployment,
                    run,
                    row["scheduled_time"] or time.time(),
                    row["parameters"],
                    attempt,
                    claimed=True,
                )
            )
        return late

    def _reload(self) -> None:
        """Re-read deployments after a change; reschedule what changed."""
        now = time.time()
        fresh = {d.id: d for d in records.load_deployments()}
        with self._lock:
            old = self._deployments
            self._deployments = fresh
        for dep_id, deployment in fresh.items():
            before = old.get(dep_id)
            if before is not None and before.updated == deployment.updated:
                continue
            if not self._usable(deployment):
                continue
            if deployment.paused or deployment.schedule() is None:
                self._versions[dep_id] = self._versions.get(dep_id, 0) + 1
                continue
            # New, resumed or updated: fire from now on (updated stamps the change).
            self._isolated(
                deployment,
                "scheduling",
                self._schedule_next,
                deployment,
                max(now, deployment.updated) - 1e-6,
            )
        for dep_id in set(old) - set(fresh):
            self._versions[dep_id] = self._versions.get(dep_id, 0) + 1
        for dep_id, late in self._recover(now).items():
            deployment = fresh[dep_id]
            self._isolated(deployment, "catching up", self._settle_late, deployment, late)

    # -- firing ---------------------------------------------------------------------------
    def _schedule_next(self, deployment: Deployment, after: float) -> None:
        schedule = deployment.schedule()
        if schedule is None:
            return
        when = schedule.next_after(dt.datetime.fromtimestamp(after, dt.timezone.utc)).timestamp()
        version = self._versions.get(deployment.id, 0) + 1
        self._versions[deployment.id] = version
        with self._lock:
            self._seq += 1
            heapq.heappush(self._heap, (when, self._seq, deployment.id, version))

    def _fire_due(self, now: float) -> None:
        while True:
            with self._lock:
                if not self._heap or self._heap[0][0] > now + LEAD_S:
                    return
                when, _, dep_id, version = heapq.heappop(self._heap)
                deployment = self._deployments.get(dep_id)
            if deployment is None or self._versions.get(dep_id) != version:
                continue  # superseded by a change, or deleted
            if not deployment.paused:
                try:
                    if not self._isolated(
                        deployment, "firing", self._fire, deployment, when, "scheduled"
                    ):
                        continue  # left alone until deployed again
                except StoreError:
                    with self._lock:  # not claimed: due again on the next try
                        heapq.heappush(self._heap, (when, _, dep_id, version))
                    raise
            self._isolated(deployment, "scheduling", self._schedule_next, deployment, when)


def describe_error(exc: BaseException) -> str:
    """One line for an error that stopped scheduling: ours as is, anything else as a bug."""
    from kernelflow.errors import KernelflowError

    text = " ".join(str(exc).split())
    if isinstance(exc, KernelflowError):
        return text
    return (
        f"{type(exc).__name__}: {text or 'no message'} (a bug in kernelflow; set "
        "KERNELFLOW_LOGGING_LEVEL=DEBUG for the traceback and report it)"
    )


def _record_skipped(deployment: Deployment, when: float, run_id: str) -> None:
    iso = dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(timespec="seconds")
    state: State[Any] = State(
        StateType.CANCELLED,
        "Skipped",
        f"Slot {iso} was missed while no scheduler ran (--catchup {deployment.catchup})",
    )
    create_run(deployment, when, {}, run_id=run_id, state=state)


def _existing_or_new_run(deployment: Deployment, fire: dict[str, Any]) -> FlowRun:
    """The run of a claimed fire; recorded now if its claimer died before recording it."""
    from kernelflow.store.deployments import recorded_run_name

    name = recorded_run_name(fire["flow_run_id"])
    if name is not None:
        run = resume_run(
            deployment,
            {
                "id": fire["flow_run_id"],
                "name": name,
                "parameters": fire["parameters"],
            },
        )
        from kernelflow.states import Scheduled

        run.state = Scheduled()
        return run
    return create_run(
        deployment, fire["scheduled_time"], fire["parameters"], run_id=fire["flow_run_id"]
    )
