"""States: Prefect's names and types, constructors, predicates and ``result()``."""

from __future__ import annotations

import pytest

from kernelflow import states
from kernelflow.errors import FailedRun
from kernelflow.states import (
    Cached,
    Completed,
    Crashed,
    Failed,
    State,
    StateType,
    TimedOut,
)

#: Every state name Prefect has, with its type.
PREFECT_STATES = {
    "Scheduled": StateType.SCHEDULED,
    "Late": StateType.SCHEDULED,
    "AwaitingRetry": StateType.SCHEDULED,
    "Pending": StateType.PENDING,
    "Running": StateType.RUNNING,
    "Retrying": StateType.RUNNING,
    "Paused": StateType.PAUSED,
    "Cancelling": StateType.CANCELLING,
    "Cancelled": StateType.CANCELLED,
    "Completed": StateType.COMPLETED,
    "Cached": StateType.COMPLETED,
    "Failed": StateType.FAILED,
    "TimedOut": StateType.FAILED,
    "Crashed": StateType.CRASHED,
}

PREDICATES = {
    StateType.SCHEDULED: "is_scheduled",
    StateType.PENDING: "is_pending",
    StateType.RUNNING: "is_running",
    StateType.COMPLETED: "is_completed",
    StateType.FAILED: "is_failed",
    StateType.CRASHED: "is_crashed",
    StateType.CANCELLED: "is_cancelled",
    StateType.CANCELLING: "is_cancelling",
    StateType.PAUSED: "is_paused",
}


@pytest.mark.parametrize(("name", "state_type"), sorted(PREFECT_STATES.items()))
def test_constructor_name_and_type(name, state_type):
    state = getattr(states, name)()
    assert isinstance(state, State)
    assert state.name == name and state.type is state_type
    for predicate_type, predicate in PREDICATES.items():
        assert getattr(state, predicate)() is (predicate_type is state_type), predicate
    final = state_type in {
        StateType.COMPLETED,
        StateType.FAILED,
        StateType.CRASHED,
        StateType.CANCELLED,
    }
    assert state.is_final() is final


def test_state_type_values_are_prefects():
    assert {t.value for t in StateType} == {
        "SCHEDULED",
        "PENDING",
        "RUNNING",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "CRASHED",
        "PAUSED",
        "CANCELLING",
    }
    assert str(StateType.COMPLETED) == "COMPLETED"
    assert StateType.FAILED == "FAILED"


def test_completed_carries_data_and_message():
    state = Completed(data=3, message="hi")
    assert state.result() == 3 and state.message == "hi"
    assert Completed().result() is None
    assert Cached(data=[1]).result() == [1]


def test_failed_result_raises_its_exception():
    error = KeyError("k")
    state = Failed(message="boom", data=error)
    with pytest.raises(KeyError) as info:
        state.result()
    assert info.value is error
    assert state.result(raise_on_failure=False) is error


def test_failed_without_exception_raises_failed_run_with_the_message():
    with pytest.raises(FailedRun, match=r"^negative$"):
        Failed(message="negative").result()
    with pytest.raises(FailedRun, match="Crashed"):
        Crashed().result()


def test_timed_out_is_a_failure():
    error = TimeoutError("late")
    state = TimedOut(message="late", data=error)
    assert state.is_failed() and not state.is_completed()
    with pytest.raises(TimeoutError):
        state.result()


def test_completed_state_wrapping_a_state():
    inner = Completed(data=5)
    assert Completed(data=inner).result() == 5


def test_failed_state_of_a_group_raises_the_first_failure():
    first, second = ValueError("first"), ValueError("second")
    group = Failed(
        message="2/3 states failed.",
        data=[Completed(data=1), Failed(data=first), Failed(data=second)],
    )
    with pytest.raises(ValueError, match="first"):
        group.result()


def test_repr_and_str():
    # Prefect's two forms: str() as its console prints a state, repr() with every field.
    assert str(Completed()) == "Completed()"
    assert str(Failed(message="x")) == "Failed('x')"
    assert str(State(StateType.COMPLETED, name="Cached")) == "Cached(type=COMPLETED)"
    assert str(TimedOut(message="late")) == "TimedOut('late', type=FAILED)"
    assert repr(Completed(data=1)) == "Completed(message=None, type=COMPLETED, result=1)"
    assert repr(Failed(message="x")) == "Failed(message='x', type=FAILED, result=None)"
    assert repr(Completed(data="y" * 5000)).endswith("...)")


def test_copy_changes_fields():
    original = Failed(message="a", data=1)
    changed = original.copy(message="b")
    assert (changed.name, changed.type, changed.message, changed.data) == (
        "Failed",
        StateType.FAILED,
        "b",
        1,
    )
    assert original.message == "a"


def test_timestamp_and_run_id():
    state = Completed()
    assert state.timestamp > 0
    assert state.run_id is None  # set by the engine when a run enters the state


def test_custom_name():
    state = states.Pending(name="NotReady", message="upstream failed")
    assert state.name == "NotReady" and state.type is StateType.PENDING
