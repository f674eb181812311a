"""A long flow's cost per task: what the engine keeps and what it journals per task run.

Speed is measured in ``bench/bench_scale.py``; here are the properties it relies on:
a flow holds no per-task objects beyond a bounded number, the engine's own encoding of
state events writes exactly what the journal's encoder writes, and a task run's events
reach the journal, in order, whichever way it ends.
"""

from __future__ import annotations

import gc
import json
import math

import pytest

from kernelflow import allow_failure, flow, task
from kernelflow.context import FlowRunContext
from kernelflow.engine import transitions
from kernelflow.runs import FlowRun, TaskRun
from kernelflow.settings import paths
from kernelflow.states import Cached, Completed, Failed, Pending, Running, State, StateType
from kernelflow.store import event_lines
from kernelflow.store.journal import encode_event


def live(kind: type) -> int:
    """How many objects of ``kind`` are alive now."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is kind)


def journal_events() -> list[dict]:
    """Every event of the test's store journals, in file order."""
    events = []
    for path in sorted(paths().journal_dir.glob("*.jsonl")):
        events += [json.loads(line) for line in path.read_text().splitlines()]
    return events


def state_names(run_id: str) -> list[str]:
    """The states journaled for ``run_id``, a creation's implied Pending included."""
    names = []
    for e in journal_events():
        if e["ev"] == "task_run" and e["id"] == run_id and e.get("pending") is True:
            names.append("Pending")
        elif e["ev"] == "state" and e["run_id"] == run_id:
            names.append(e["name"])
    return names


@task
def inc(x: int) -> int:
    return x + 1


class TestBoundedMemory:
    """A flow lets go of finished task runs nobody can ask for any more."""

    def test_called_tasks_leave_nothing_behind(self) -> None:
        seen: dict[str, int] = {}

        @flow
        def chain(n: int) -> int:
            s = 0
            for _ in range(n):
                s = inc(s)
            seen["task_runs"], seen["states"] = live(TaskRun), live(State)
            return s

        before_runs, before_states = live(TaskRun), live(State)
        assert chain(20_000) == 20_000
        # The flow's own Running state and a few in flight: a constant, not 20,000.
        assert seen["task_runs"] - before_runs <= 5
        assert seen["states"] - before_states <= 10

    def test_submitted_tasks_are_let_go_once_finished(self) -> None:
        seen: dict[str, int] = {}

        @flow
        def fan(n: int) -> int:
            total = 0
            for i in range(n):
                total += inc.submit(i).result()  # the caller drops each future
            seen["task_runs"] = live(TaskRun)
            return total

        before = live(TaskRun)
        assert fan(20_000) == sum(range(1, 20_001))
        # At most one sweep's worth of finished futures is held between sweeps.
        assert seen["task_runs"] - before <= 2 * FlowRunContext.SWEEP_MIN

    def test_held_futures_keep_their_state_and_the_flow_waits_for_all(self) -> None:
        @flow
        def keep(n: int) -> list[int]:
            futures = [inc.submit(i) for i in range(n)]
            return [f.result() for f in futures]

        n = 3 * FlowRunContext.SWEEP_MIN
        assert keep(n) == list(range(1, n + 1))

    def test_every_submitted_run_ends_before_its_flow(self) -> None:
        ended: list[str] = []

        @task
        def slow(i: int) -> int:
            ended.append(f"task {i}")
            return i

        @flow
        def fire_and_forget(n: int) -> None:
            for i in range(n):
                slow.submit(i)  # never waited for by the caller

        n = 2 * FlowRunContext.SWEEP_MIN + 7
        state = fire_and_forget(n, return_state=True)
        assert state.is_completed()
        assert len(ended) == n


class TestStateEventEncoding:
    """The engine's fast encoding of state events is the journal's, byte for byte."""

    @pytest.mark.parametrize(
        "state",
        [
            Pending(),
            Running(),
            Completed(),
            Cached(),
            Failed(message='quote " backslash \\ newline \n tab \t bell \x07'),
            Failed(message="unicode: é 漢字 🙂 and a lone surrogate \udc80"),
            Failed(message="x" * 5000),  # cut to the journal's limit
            Completed(name='Named "odd" ✓'),
        ],
    )
    @pytest.mark.parametrize("result", [None, "results/ab/cd.pkl", 'odd "path" é'])
    def test_same_bytes_as_the_generic_encoder(self, state: State, result: str | None) -> None:
        for kind, run in (
            ("task", TaskRun("t", "t-0", None, [])),
            ("flow", FlowRun("f", "f-run", {}, [])),
        ):
            for start, end in ((None, None), (1796442350.8182642, None), (1.5, 2.25)):
                run.start_time, run.end_time, run.run_count = start, end, 3
                fast = event_lines.encode_state_event(kind, run, state, result)
                generic = encode_event(event_lines.state_event(kind, run, state, result))
                assert fast == generic
                assert json.loads(fast)["type"] == state.type.value

    @pytest.mark.parametrize("odd", [math.nan, math.inf, 17, "yesterday"])
    def test_an_odd_time_falls_back_to_the_generic_encoder(self, odd: object) -> None:
        run = TaskRun("t", "t-0", None, [])
        state = Completed(timestamp=odd)  # type: ignore[arg-type]
        assert event_lines.encode_state_event("task", run, state, None) is None
        run.start_time = odd  # type: ignore[assignment]
        assert event_lines.encode_state_event("task", run, Completed(), None) is None

    @pytest.mark.parametrize(
        "inputs",
        [
            {},
            {"x": {"hash": None, "upstream": None}},
            {
                "x": {"hash": "ab12", "upstream": "01a2-up"},
                'é "q"': {"hash": None, "upstream": "u"},
            },
            {"x": {"upstream": "u", "hash": "h"}},  # another order: written the generic way
            {"x": {"hash": 3, "upstream": None}},  # not a string: the generic way
            {"x": "not a record"},
        ],
    )
    @pytest.mark.parametrize("tags", [[], ["etl", 'ünï "x"']])
    @pytest.mark.parametrize("flow_run_id", [None, "01a2-flow"])
    def test_task_run_creation_same_bytes(
        self, inputs: dict, tags: list[str], flow_run_id: str | None
    ) -> None:
        created = {
            "ev": "task_run",
            "id": "01a2-task",
            "flow_run_id": flow_run_id,
            "task_name": "inc",
            "name": "inc-0",
            "tags": tags,
            "cache_key": None,
            "inputs": inputs,
            "t": 1796442350.8182032,
        }
        assert event_lines.encode_created(created) == encode_event(created)
        created["pending"] = True  # a creation that stands for its Pending too
        assert event_lines.encode_created(created) == encode_event(created)
        moved = {"pending": True, **{k: v for k, v in created.items() if k != "pending"}}
        assert event_lines.encode_created(moved) == encode_event(moved)
        other = {"ev": "cache_hit", "key": "k", "task_run_id": "r", "t": 1.0}
        assert event_lines.encode_created(other) == encode_event(other)


class TestJournaledTogether:
    """A called task's creation is journaled with its start, and never lost."""

    def test_a_called_task_run_is_journaled_in_order(self) -> None:
        @flow
        def one() -> int:
            return inc(1)

        assert one() == 2
        run_id = next(e["id"] for e in journal_events() if e["ev"] == "task_run")
        mine = [
            e["name"] if e["ev"] == "state" else e["ev"]
            for e in journal_events()
            if run_id in (e.get("id"), e.get("run_id"))
        ]
        # The creation stands for the Pending state: no line of its own.
        assert mine == ["task_run", "Running", "Completed"]
        assert state_names(run_id) == ["Pending", "Running", "Completed"]
        assert not transitions._held

    @pytest.mark.parametrize(
        ("pending", "later"),
        [
            (Pending(message="waiting for a slot"), 0.0),
            (Pending(name="Held"), 0.0),
            (Pending(), 0.5),  # a Pending at another time than the creation
        ],
    )
    def test_only_a_plain_pending_is_implied_by_the_creation(
        self, pending: State, later: float
    ) -> None:
        run = TaskRun("t", "t-0", None, [])
        created = {
            "ev": "task_run",
            "id": run.id,
            "flow_run_id": None,
            "task_name": "t",
            "name": "t-0",
            "tags": [],
            "cache_key": None,
            "inputs": {},
            "t": pending.timestamp - later,
        }
        transitions.set_state("task", run, pending, before=[created])
        line = next(e for e in journal_events() if e.get("id") == run.id)
        assert "pending" not in line
        (own,) = [e for e in journal_events() if e.get("run_id") == run.id]
        assert own["name"] == pending.name and own.get("message") == pending.message

    def test_null_fields_are_left_out_of_state_lines(self) -> None:
        assert inc(1) == 2
        states = [e for e in journal_events() if e["ev"] == "state" and e["kind"] == "task"]
        assert [sorted(e) for e in states] == [
            ["ev", "kind", "name", "run_count", "run_id", "start_time", "t", "type"],
            ["end_time", "ev", "kind", "name", "run_count", "run_id", "start_time", "t", "type"],
        ]

    def test_a_task_that_never_starts_is_still_journaled(self) -> None:
        @task
        def boom() -> None:
            raise ValueError("boom")

        @task
        def after(x: object) -> str:
            return "ran"

        @flow
        def chain() -> tuple[object, object]:
            failed = boom.submit()
            failed.wait()
            not_ready = after(failed, return_state=True)
            allowed = after(allow_failure(failed), return_state=True)
            return not_ready.name, allowed.result()

        assert chain(return_state=True).result(raise_on_failure=False) == ("NotReady", "ran")
        names = [e["name"] for e in journal_events() if e["ev"] == "task_run"]
        assert names == ["boom-0", "after-0", "after-1"]
        not_ready = next(e["id"] for e in journal_events() if e.get("name") == "after-0")
        assert state_names(not_ready) == ["Pending", "NotReady"]
        assert not transitions._held

    def test_an_error_before_the_first_state_still_journals_the_creation(self) -> None:
        class Exploding(State):
            def is_completed(self) -> bool:
                raise RuntimeError("cannot tell")

        @task
        def takes_one(x: object) -> object:
            return x

        @flow
        def wrong() -> None:
            takes_one(Exploding(StateType.COMPLETED))  # resolving the argument raises

        with pytest.raises(RuntimeError, match="cannot tell"):
            wrong()
        created = [e for e in journal_events() if e["ev"] == "task_run"]
        assert [e["name"] for e in created] == ["takes_one-0"]
        assert created[0]["pending"] is True
        assert state_names(created[0]["id"]) == ["Pending"]
        assert not transitions._held
