"""Fuzzing what users type into deployments (hypothesis): cron strings, time zones, intervals
and parameter values through the Python API and the ``kernelflow deploy`` command. Whatever
comes in: a deployment, or one line saying what to write; never a traceback, never a listing
that breaks, never a missed slot that is neither run nor recorded."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernelflow.cli import main
from kernelflow.deployments import deploy, list_deployments
from kernelflow.deployments.catchup import MAX_SKIPPED_RECORDS, plan_catchup
from kernelflow.deployments.models import CATCHUP_POLICIES
from kernelflow.deployments.schedules import IntervalSchedule
from kernelflow.errors import ConfigurationError

# Few examples per run (each deploys into a real store): the point is breadth over many runs.
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

CRON = st.one_of(
    st.text(alphabet="0123456789*/,-?LW# ", max_size=24),
    st.lists(
        st.sampled_from(["*", "*/5", "0", "59", "60", "1-5", "31", "2", "MON", "L", "5/0", "-1"]),
        min_size=4,
        max_size=7,
    ).map(" ".join),
)
ZONES = st.one_of(
    st.sampled_from(sorted(zoneinfo.available_timezones())),
    st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=20),
    st.sampled_from(["Europe", "Europe/", "../etc/passwd", "UTC/", "", " UTC"]),
)
INTERVALS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.text(alphabet="0123456789.smhdwna -e+", max_size=10),
    st.booleans(),
    st.timedeltas(),
)
VALUES = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@pytest.fixture
def nb(make_notebook):
    return make_notebook(
        "typed",
        "print(n, x, flag, items, s)",
        parameters="n: int = 1\nx = 0.5\nflag = True\nitems = [1]\ns = 'a'",
    )


def one_line_or_deployed(call) -> object | None:
    """Run ``call``; a ConfigurationError must be one line. The deployment, or None."""
    try:
        return call()
    except ConfigurationError as exc:
        assert "\n" not in str(exc) and str(exc), repr(exc)
        return None


def listing_holds() -> None:
    """Every deployment lists, describes itself and says when it fires next, or why not."""
    now = dt.datetime.now(dt.timezone.utc)
    for deployment in list_deployments():
        assert deployment.describe_schedule()
        if deployment.problem is None and deployment.schedule() is not None:
            try:
                assert deployment.schedule().next_after(now) > now
            except ConfigurationError as exc:  # a schedule whose dates run out: said so
                assert "fires no more" in str(exc)


@FUZZ
@given(cron=CRON, timezone=ZONES)
def test_cron_and_time_zones_through_the_api(nb, cron, timezone):
    one_line_or_deployed(lambda: deploy(nb, "fuzz", cron=cron, timezone=timezone, update=True))
    listing_holds()


@FUZZ
@given(interval=INTERVALS, retry_delay=INTERVALS)
def test_intervals_through_the_api(nb, interval, retry_delay):
    done = one_line_or_deployed(
        lambda: deploy(nb, "fuzz", interval=interval, retry_delay=retry_delay, update=True)
    )
    if done is not None:
        assert 0 < done.interval and 0 <= done.retry_delay
    listing_holds()


@FUZZ
@given(name=st.sampled_from(["n", "x", "flag", "items", "s", "other"]), value=VALUES)
def test_parameter_values_through_the_api(nb, name, value):
    done = one_line_or_deployed(
        lambda: deploy(nb, "fuzz", interval=60, parameters={name: value}, update=True)
    )
    if done is not None:
        stored = {d.name: d for d in list_deployments()}["fuzz"]
        assert stored.problem is None and name in stored.parameters
    listing_holds()


@FUZZ
@given(
    flag=st.sampled_from(["--interval", "--timezone", "--cron", "--retry-delay", "--timeout"]),
    text=st.text(alphabet=st.characters(blacklist_characters="\x00", max_codepoint=0x2FF)),
)
def test_the_deploy_command(nb, flag, text):
    args = ["deploy", str(nb), "--name", "fuzz", "--update", flag, text]
    if flag not in ("--interval", "--cron"):
        args += ["--interval", "60"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    listing_holds()


@settings(max_examples=200, deadline=None)
@given(
    interval=st.floats(min_value=0.5, max_value=1e6),
    last=st.floats(min_value=0, max_value=2e9),
    slots=st.floats(min_value=0, max_value=2500),  # the gap, in intervals
    policy=st.sampled_from(CATCHUP_POLICIES),
    max_catchup=st.integers(min_value=0, max_value=20),
)
def test_every_missed_slot_is_run_or_recorded(interval, last, slots, policy, max_catchup):
    schedule = IntervalSchedule(interval)
    now = last + slots * interval
    plan = plan_catchup(schedule, last, now, policy, max_catchup)
    start = dt.datetime.fromtimestamp(last, dt.timezone.utc)
    missed = [
        t.timestamp()
        for t in schedule.between(start, dt.datetime.fromtimestamp(now, dt.timezone.utc))
        if t.timestamp() < now
    ]
    assert not set(plan.run) & set(plan.skip)
    if len(missed) <= MAX_SKIPPED_RECORDS:
        assert sorted(plan.run + plan.skip) == missed and plan.omitted == 0
    else:  # too many to record: the newest are, and the rest are counted
        assert len(plan.run) + len(plan.skip) + plan.omitted >= MAX_SKIPPED_RECORDS
    if plan.run:
        assert max(plan.run) == missed[-1]  # the newest slot is the one a policy runs
