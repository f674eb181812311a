"""Slots missed while no scheduler ran: which to run and which to record as Skipped.

========  ===================================================================
policy    missed slots (oldest first) ``s1 ... sN``
========  ===================================================================
skip      none runs; each is recorded as a Skipped run (the default)
latest    ``sN`` runs; the others are Skipped
all       the newest ``max_catchup`` run, oldest first; older ones Skipped
========  ===================================================================

So the history always shows the gap, and a slot is never silently lost
(jupyter-scheduler drops them without a trace). Skipped records are capped at
:data:`MAX_SKIPPED_RECORDS` per deployment and start, newest kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from kernelflow.deployments.models import CATCHUP_POLICIES
from kernelflow.deployments.schedules import Schedule
from kernelflow.errors import ConfigurationError

__all__ = ["MAX_SKIPPED_RECORDS", "CatchUp", "plan_catchup", "split_by_policy"]

MAX_SKIPPED_RECORDS = 1000
#: A bound on slots looked at (an every-second schedule down for months).
_MAX_SCAN = 100_000


@dataclass
class CatchUp:
    """What to do with missed slots (epoch seconds, oldest first)."""

    run: list[float] = field(default_factory=list)
    skip: list[float] = field(default_factory=list)
    omitted: int = 0  #: skipped slots beyond :data:`MAX_SKIPPED_RECORDS`, not recorded


def split_by_policy(
    missed: list[float], policy: str, max_catchup: int
) -> tuple[list[float], list[float]]:
    """(slots to run, slots to skip) of ``missed`` (oldest first) under ``policy``.

    The one rule for missed slots, whether they were never claimed (no
    scheduler ran) or claimed and never started (a scheduler stopped first).
    """
    missed = sorted(missed)
    if policy == "latest" and missed:
        return missed[-1:], missed[:-1]
    if policy == "all":
        keep = max(0, max_catchup)
        run = missed[len(missed) - keep :] if keep else []
        return run, missed[: len(missed) - len(run)]
    return [], missed


def plan_catchup(
    schedule: Schedule, last: float, now: float, policy: str, max_catchup: int
) -> CatchUp:
    """Split the slots in ``(last, now)`` by ``policy`` (``skip``, ``latest`` or ``all``).

    A slot at exactly ``now`` or later is not missed: it is due, not caught up.
    """
    if policy not in CATCHUP_POLICIES:
        raise ConfigurationError(
            f"Unknown catch-up policy {policy!r}; use "
            f"{', '.join(CATCHUP_POLICIES[:-1])} or {CATCHUP_POLICIES[-1]}."
        )
    start = dt.datetime.fromtimestamp(last, dt.timezone.utc)
    missed: list[float] = []
    for when in schedule.fire_times(start):
        t = when.timestamp()
        if t >= now:
            break
        missed.append(t)
        if len(missed) >= _MAX_SCAN:
            del missed[: _MAX_SCAN // 2]  # keep the newest: those are the ones that may run
    plan = CatchUp()
    plan.run, plan.skip = split_by_policy(missed, policy, max_catchup)
    if len(plan.skip) > MAX_SKIPPED_RECORDS:
        plan.omitted = len(plan.skip) - MAX_SKIPPED_RECORDS
        plan.skip = plan.skip[-MAX_SKIPPED_RECORDS:]
    return plan
