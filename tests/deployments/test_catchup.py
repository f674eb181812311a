"""What each catch-up policy does with missed slots (pure planning; the scheduler test runs it)."""

from __future__ import annotations

import datetime as dt

import pytest

from kernelflow.deployments.catchup import MAX_SKIPPED_RECORDS, plan_catchup
from kernelflow.deployments.schedules import IntervalSchedule
from kernelflow.errors import ConfigurationError

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
EVERY_10 = IntervalSchedule(10, anchor=T0)
START = T0.timestamp()


def slots(*ks: int) -> list[float]:
    return [START + 10 * k for k in ks]


def test_skip_records_every_missed_slot_and_runs_none():
    plan = plan_catchup(EVERY_10, START, START + 35, "skip", 10)
    assert plan.run == [] and plan.skip == slots(1, 2, 3)


def test_latest_runs_only_the_newest():
    plan = plan_catchup(EVERY_10, START, START + 35, "latest", 10)
    assert plan.run == slots(3) and plan.skip == slots(1, 2)


def test_all_runs_oldest_first_up_to_max_catchup():
    plan = plan_catchup(EVERY_10, START, START + 55, "all", 3)
    assert plan.run == slots(3, 4, 5) and plan.skip == slots(1, 2)
    assert plan_catchup(EVERY_10, START, START + 55, "all", 10).run == slots(1, 2, 3, 4, 5)


def test_a_slot_at_now_is_due_not_missed():
    plan = plan_catchup(EVERY_10, START, START + 30, "all", 10)
    assert plan.run == slots(1, 2)


def test_nothing_missed():
    plan = plan_catchup(EVERY_10, START, START + 5, "latest", 10)
    assert plan.run == [] and plan.skip == []


def test_skipped_records_are_capped_newest_kept():
    n = MAX_SKIPPED_RECORDS + 5
    plan = plan_catchup(EVERY_10, START, START + 10 * n + 1, "skip", 10)
    assert plan.omitted == 5 and len(plan.skip) == MAX_SKIPPED_RECORDS
    assert plan.skip[-1] == START + 10 * n


def test_unknown_policy():
    with pytest.raises(ConfigurationError, match="skip, latest or all"):
        plan_catchup(EVERY_10, START, START + 30, "some", 1)
