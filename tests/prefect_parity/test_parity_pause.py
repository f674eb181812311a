"""``pause_flow_run`` / ``suspend_flow_run`` / ``resume_flow_run`` with ``wait_for_input``.

Prefect's ``prefect.flow_runs`` and ``prefect.input`` (3.9): a paused flow run
is in state ``Paused`` (``Suspended``: type ``PAUSED`` too), blocks until it is
resumed, then is ``Running`` again and gets the input; without a resume in
time, ``FlowPauseTimeout("Flow run was paused and never resumed.")`` fails
it. Runs are resumed here from another thread (in-process tests) and from
other processes (a script paused, ``kernelflow flow-run resume`` in a
terminal). The notebook form is tested in a real kernel in
``test_parity_pause_kernel.py``.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pydantic
import pytest

import kernelflow
from kernelflow import flow, pause_flow_run, resume_flow_run, suspend_flow_run, task
from kernelflow.engine import subscribe, unsubscribe
from kernelflow.errors import (
    ConfigurationError,
    FlowPauseTimeout,
    MissingContextError,
    NotPausedError,
    RunInputError,
    RunNotFoundError,
)
from kernelflow.input import RunInput

REPO = Path(__file__).resolve().parents[2]


class Person(RunInput):
    name: str
    age: int = 30


@contextmanager
def paused_runs() -> Iterator[queue.Queue]:
    """The flow runs of this process, put on a queue as they enter a PAUSED state."""
    found: queue.Queue = queue.Queue()

    def listener(kind: str, run: Any, state: Any) -> None:
        if kind == "flow" and state.is_paused():
            found.put(run)

    subscribe(listener)
    try:
        yield found
    finally:
        unsubscribe(listener)


@contextmanager
def running_in_thread(fn: Any, *args: Any) -> Iterator[Any]:
    """Run ``fn`` in a thread; yield its future (the pool is shut down after)."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(fn, *args)


def history(run_id: str) -> list[tuple[str, str, str | None]]:
    """``(type, name, message)`` of each state the run went through, in order."""
    frame = kernelflow.sql(
        "SELECT state_type, state_name, message FROM states WHERE run_id = ? "
        "ORDER BY timestamp, seq",
        [run_id],
    )
    return [tuple(row) for row in frame.itertuples(index=False)]


class TestPause:
    def test_resumed_with_input_returns_the_model_and_records_paused_then_running(self):
        @flow
        def greet() -> str:
            person = pause_flow_run(wait_for_input=Person, timeout=30)
            return f"Hello, {person.name} ({person.age})"

        with paused_runs() as paused, running_in_thread(greet) as result:
            run = paused.get(timeout=10)
            assert run.state.name == "Paused"
            resume_flow_run(run.id, run_input={"name": "Ada", "age": "36"})
            assert result.result(timeout=10) == "Hello, Ada (36)"
        states = history(run.id)
        assert [name for _, name, _ in states] == [
            "Pending",
            "Running",
            "Paused",
            "Running",
            "Completed",
        ]
        assert states[2][0] == "PAUSED"
        assert states[3][2] == "Resumed by resume_flow_run()"

    def test_a_plain_type_is_one_field_named_value_and_the_value_is_returned(self):
        @flow
        def ask() -> Any:
            return pause_flow_run(wait_for_input=int, timeout=30)

        with paused_runs() as paused, running_in_thread(ask) as result:
            resume_flow_run(paused.get(timeout=10).id, run_input={"value": "41"})
            assert result.result(timeout=10) == 41

    def test_a_pydantic_model_is_upgraded_to_a_run_input(self):
        class Shirt(pydantic.BaseModel):
            size: Literal["s", "m", "l"]

        @flow
        def order() -> Any:
            return pause_flow_run(wait_for_input=Shirt, timeout=30)

        with paused_runs() as paused, running_in_thread(order) as result:
            resume_flow_run(paused.get(timeout=10).id, run_input={"size": "m"})
            shirt = result.result(timeout=10)
        assert isinstance(shirt, Shirt) and isinstance(shirt, RunInput)
        assert shirt.size == "m"

    def test_initial_data_are_defaults_and_the_description_is_kept(self):
        Reviewed = Person.with_initial_data(description="**Who are you?**", name="anonymous")
        assert Reviewed._description == "**Who are you?**"
        assert Reviewed.model_fields["name"].annotation is str

        @flow
        def greet() -> Any:
            return pause_flow_run(wait_for_input=Reviewed, timeout=30)

        with paused_runs() as paused, running_in_thread(greet) as result:
            resume_flow_run(paused.get(timeout=10).id)  # no input: the defaults
            person = result.result(timeout=10)
        assert (person.name, person.age) == ("anonymous", 30)

    def test_without_wait_for_input_the_pause_returns_none(self):
        @flow
        def wait() -> str:
            assert pause_flow_run(timeout=30) is None
            return "went on"

        with paused_runs() as paused, running_in_thread(wait) as result:
            resume_flow_run(paused.get(timeout=10).id, run_input={"ignored": 1})
            assert result.result(timeout=10) == "went on"

    def test_input_that_does_not_fit_is_refused_naming_the_field_and_the_run_stays_paused(self):
        class Order(RunInput):
            size: Literal["small", "large"]
            color: str

            @pydantic.model_validator(mode="after")
            def in_stock(self) -> Order:
                if self.size == "small" and self.color == "green":
                    raise ValueError("green comes in large only")
                return self

        @flow
        def shop() -> Any:
            return pause_flow_run(wait_for_input=Order, timeout=30)

        with paused_runs() as paused, running_in_thread(shop) as result:
            run = paused.get(timeout=10)
            with pytest.raises(RunInputError) as missing:
                resume_flow_run(run.id, run_input={"size": "huge"})
            message = str(missing.value)
            assert "size: Input should be 'small' or 'large'" in message
            assert "color: Field required" in message
            assert "\n" not in message and "stays paused" in message
            with pytest.raises(RunInputError, match="unknown: Extra inputs are not permitted"):
                resume_flow_run(run.id, run_input={"size": "small", "color": "red", "unknown": 1})
            # The model's own validator runs before the resume (Prefect: after, failing the flow).
            with pytest.raises(RunInputError, match="green comes in large only"):
                resume_flow_run(run.id, run_input={"size": "small", "color": "green"})
            with pytest.raises(RunInputError, match="must be a dict"):
                resume_flow_run(run.id, run_input=["small"])  # type: ignore[arg-type]
            assert run.state.name == "Paused" and not result.done()
            resume_flow_run(run.id, run_input={"size": "large", "color": "green"})
            assert result.result(timeout=10).color == "green"

    def test_timeout_raises_flow_pause_timeout_and_the_flow_fails(self):
        @flow
        def forgotten() -> None:
            pause_flow_run(wait_for_input=Person, timeout=0.3)

        state = forgotten(return_state=True)
        assert state.is_failed()
        # Prefect's server turns any way out of a timed-out pause into this Failed state.
        assert state.message == "The flow was failed and never resumed."
        error = state.result(raise_on_failure=False)
        assert isinstance(error, FlowPauseTimeout) and isinstance(error, TimeoutError)
        assert str(error) == "Flow run was paused and never resumed."
        names = [name for _, name, _ in history(state.run_id)]
        assert names == ["Pending", "Running", "Paused", "Failed"]
        with pytest.raises(NotPausedError, match="is Failed, not paused"):
            resume_flow_run(state.run_id)

    def test_a_flow_that_catches_the_timeout_goes_on_but_still_fails_as_in_prefect(self):
        went_on = []

        @flow
        def patient() -> str:
            try:
                pause_flow_run(timeout=0)
            except FlowPauseTimeout as exc:
                went_on.append(str(exc))
            return "done"

        state = patient(return_state=True)
        assert went_on == ["Flow run was paused and never resumed."]
        assert (state.name, state.message) == (
            "Failed",
            "The flow was completed and never resumed.",
        )

    def test_a_key_fires_once_per_try_and_then_returns_its_input(self):
        calls = []

        @flow
        def approve_twice() -> list[str]:
            first = pause_flow_run(wait_for_input=str, timeout=30, key="approval")
            calls.append(first)
            again = pause_flow_run(wait_for_input=str, timeout=30, key="approval")
            return [first, again]

        with paused_runs() as paused, running_in_thread(approve_twice) as result:
            resume_flow_run(paused.get(timeout=10).id, run_input={"value": "yes"})
            assert result.result(timeout=10) == ["yes", "yes"]
            assert paused.empty(), "the second pause with the same key did not pause"

    def test_default_keys_count_the_pauses_so_each_call_pauses(self):
        @flow
        def two_steps() -> list[int]:
            return [pause_flow_run(wait_for_input=int, timeout=30) for _ in range(2)]

        with paused_runs() as paused, running_in_thread(two_steps) as result:
            for value in (1, 2):
                resume_flow_run(paused.get(timeout=10).id, run_input={"value": value})
            assert result.result(timeout=10) == [1, 2]

    def test_a_task_can_pause_its_flow_run(self):
        # Prefect 3.9 pauses the flow run from inside a task too.
        @task
        def ask() -> str:
            return pause_flow_run(wait_for_input=str, timeout=30)

        @flow
        def pipeline() -> str:
            return ask()

        with paused_runs() as paused, running_in_thread(pipeline) as result:
            resume_flow_run(paused.get(timeout=10).id, run_input={"value": "from a task"})
            assert result.result(timeout=10) == "from a task"

    def test_an_async_flow_awaits_the_pause(self):
        import asyncio

        @flow
        async def greet() -> str:
            person = await pause_flow_run(wait_for_input=Person, timeout=30)
            return person.name

        with paused_runs() as paused, running_in_thread(asyncio.run, greet()) as result:
            resume_flow_run(paused.get(timeout=10).id, run_input={"name": "Grace"})
            assert result.result(timeout=10) == "Grace"

    def test_outside_a_flow_run_it_is_a_missing_context_error(self):
        with pytest.raises(MissingContextError, match="only be paused from within a flow run"):
            pause_flow_run()
        assert issubclass(MissingContextError, RuntimeError)  # Prefect raises RuntimeError

    @pytest.mark.parametrize(
        "options",
        [{"timeout": -1}, {"timeout": "soon"}, {"poll_interval": 0}],
    )
    def test_bad_timing_options_are_configuration_errors(self, options):
        @flow
        def bad() -> None:
            pause_flow_run(**options)

        with pytest.raises(ConfigurationError):
            bad()


class TestSuspend:
    def test_suspend_waits_in_place_recorded_as_suspended(self):
        @flow
        def hold() -> Any:
            return suspend_flow_run(wait_for_input=Person)

        with paused_runs() as paused, running_in_thread(hold) as result:
            run = paused.get(timeout=10)
            assert (run.state.name, run.state.type.value) == ("Suspended", "PAUSED")
            resume_flow_run(run.id, run_input={"name": "Lin"})
            assert result.result(timeout=10).name == "Lin"
        assert [name for _, name, _ in history(run.id)][2:] == [
            "Suspended",
            "Running",
            "Completed",
        ]

    def test_another_flow_run_cannot_be_suspended(self):
        @flow
        def other() -> None:
            suspend_flow_run(flow_run_id="0190c2b4-0000-7000-8000-000000000000")

        with pytest.raises(ConfigurationError, match="only the flow run it is called in"):
            other()


class TestResume:
    def test_a_run_that_is_not_paused(self):
        @flow
        def done() -> int:
            return 1

        state = done(return_state=True)
        with pytest.raises(NotPausedError, match=r"is Completed, not paused"):
            resume_flow_run(state.run_id)
        assert issubclass(NotPausedError, RuntimeError)

    def test_an_unknown_id(self):
        with pytest.raises(RunNotFoundError, match="No flow run has an id starting with 'nope'"):
            resume_flow_run("nope")

    def test_async_code_awaits_the_resume_as_in_prefect(self):
        import asyncio

        from kernelflow import aresume_flow_run

        @flow
        def twice() -> list[str]:
            return [pause_flow_run(wait_for_input=str, timeout=30) for _ in range(2)]

        async def resume(run_id: str) -> None:
            # Outside a run, under a running loop, as at a notebook's top level: the
            # resume is done at once and the result may be awaited (Prefect returns a
            # coroutine there).
            handle = resume_flow_run(run_id, run_input={"value": "sync"})
            assert repr(handle) == "<flow run resumed>"
            await handle
            run = paused.get(timeout=10)
            await aresume_flow_run(run.id, run_input={"value": "async"})

        with paused_runs() as paused, running_in_thread(twice) as result:
            asyncio.run(resume(paused.get(timeout=10).id))
            assert result.result(timeout=10) == ["sync", "async"]

    def test_pausing_and_resuming_load_no_database_or_widgets(self, run_python):
        # The paused side polls files and the resume writes one: no DuckDB on either path.
        proc = run_python(
            """
            import sys, threading
            from kernelflow import flow, pause_flow_run, resume_flow_run
            from kernelflow.engine import subscribe

            paused, ids = threading.Event(), []

            def listener(kind, run, state):
                if state.is_paused():
                    ids.append(run.id)
                    paused.set()

            subscribe(listener)

            @flow
            def ask():
                return pause_flow_run(wait_for_input=str, timeout=30)

            thread = threading.Thread(target=lambda: print(ask()))
            thread.start()
            assert paused.wait(10)
            resume_flow_run(ids[0], run_input={"value": "ok"})
            thread.join(10)
            heavy = ["duckdb", "pandas", "pyarrow", "ipywidgets", "IPython"]
            print([name for name in heavy if name in sys.modules])
            """
        )
        assert proc.stdout.split("\n")[:2] == ["ok", "[]"], proc.stdout

    def test_exported_where_prefect_exports_them(self):
        from kernelflow import exceptions, flow_runs

        for name in ("pause_flow_run", "suspend_flow_run", "resume_flow_run"):
            assert getattr(kernelflow, name) is getattr(flow_runs, name)
            assert getattr(kernelflow, f"a{name}") is getattr(flow_runs, f"a{name}")
        assert exceptions.FlowPauseTimeout is FlowPauseTimeout
        assert exceptions.NotPausedError is NotPausedError


SCRIPT = """
import sys
from kernelflow import flow, pause_flow_run
from kernelflow.input import RunInput

class Person(RunInput):
    name: str
    zip_code: str = "00000"
    age: int = 30

@flow
def greet() -> str:
    person = pause_flow_run(wait_for_input=Person, timeout=60)
    print(f"Hello, {person.name} ({person.zip_code}, {person.age})", flush=True)
    return person.name

print("returned", greet(), flush=True)
"""


def wait_for_paused_run(script: subprocess.Popen, seconds: float = 30) -> str:
    """The id of the flow run the script paused, from the store (bounded wait)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = kernelflow.sql("SELECT id FROM flow_runs WHERE state_type = 'PAUSED'")
        if len(found):
            return found["id"].iloc[0]
        if script.poll() is not None:
            raise AssertionError(f"the script ended before pausing:\n{script.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"no flow run paused within {seconds} s")


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kernelflow.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
    )


@pytest.mark.slow
class TestResumeFromAnotherProcess:
    @pytest.fixture
    def paused_script(self, tmp_path: Path, child_env: dict[str, str]) -> Iterator[Any]:
        path = tmp_path / "greet.py"
        path.write_text(textwrap.dedent(SCRIPT))
        script = subprocess.Popen(
            [sys.executable, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env,
            cwd=tmp_path,
        )
        try:
            yield script, wait_for_paused_run(script)
        finally:
            if script.poll() is None:
                script.kill()
            script.communicate()

    def test_a_script_pauses_and_the_cli_resumes_it_with_input(self, paused_script, child_env):
        script, run_id = paused_script
        listed = cli("runs", "ls", "--state", "Paused", env=child_env)
        assert run_id in listed.stdout and "Paused" in listed.stdout

        # Input that does not fit: one line naming the field, exit 2, the run stays paused.
        bad = cli("flow-run", "resume", run_id[:13], "--input", "age=old", env=child_env)
        assert bad.returncode == 2
        assert bad.stderr.count("\n") == 1, bad.stderr
        assert bad.stderr.startswith("Error: Input for flow run")
        assert "name: Field required" in bad.stderr and "age: Input should be a valid integer" in (
            bad.stderr
        )
        assert script.poll() is None

        # JSON values are parsed; a text field keeps what was typed (a leading zero).
        good = cli(
            "flow-run",
            "resume",
            run_id,
            "--input",
            "name=Ada",
            "--input",
            "zip_code=02134",
            "--input",
            "age=36",
            env=child_env,
        )
        assert good.returncode == 0, good.stderr
        assert good.stdout.startswith("Resumed flow run '")
        out, err = script.communicate(timeout=30)
        assert script.returncode == 0, err
        assert "Hello, Ada (02134, 36)" in out and "returned Ada" in out
        assert "Pausing flow, execution will continue when this flow run is resumed." in err
        assert f"Resume it with: kernelflow flow-run resume {run_id} --input name=..." in err
        assert "Resuming flow run execution!" in err
        assert [name for _, name, _ in history(run_id)][-3:] == ["Paused", "Running", "Completed"]
        assert history(run_id)[-2][2] == "Resumed by kernelflow flow-run resume"

        again = cli("flow-run", "resume", run_id, env=child_env)
        assert again.returncode == 1
        assert again.stderr.strip().endswith(
            "is Completed, not paused; only a paused run can be "
            "resumed (see `kernelflow runs ls --state Paused`)."
        )

    def test_resume_flow_run_in_this_process_resumes_the_script(self, paused_script):
        script, run_id = paused_script
        resume_flow_run(run_id, run_input={"name": "Grace"})
        out, _ = script.communicate(timeout=30)
        assert "Hello, Grace (00000, 30)" in out

    def test_a_killed_paused_process_cannot_be_resumed(self, paused_script, child_env):
        script, run_id = paused_script
        script.kill()
        script.wait(timeout=10)
        result = cli("flow-run", "resume", run_id, "--input", "name=Ada", env=child_env)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1
        assert "can no longer be resumed" in result.stderr or "has ended" in result.stderr

    def test_an_unknown_id_is_one_line(self, child_env):
        unknown = cli("flow-run", "resume", "nope", env=child_env)
        assert unknown.returncode == 1
        assert unknown.stderr == (
            "Error: No flow run has an id starting with 'nope'; list recent runs with "
            "'kernelflow runs ls'.\n"
        )


class TestCliInputParsing:
    def test_json_when_it_parses_text_for_text_fields(self):
        from kernelflow.cli.flow_run import parse_inputs

        schema = Person.model_json_schema()
        schema["properties"]["tags"] = {"type": "array"}
        values = parse_inputs(["name=42", "age=36", "tags=[1, 2]", "other=plain text"], schema)
        assert values == {"name": "42", "age": 36, "tags": [1, 2], "other": "plain text"}

    def test_a_pair_without_equals_names_the_fields(self):
        from kernelflow.cli.flow_run import parse_inputs

        with pytest.raises(ConfigurationError, match=r"not NAME=VALUE \(the run's input fields: "):
            parse_inputs(["Ada"], Person.model_json_schema())
        with pytest.raises(ConfigurationError, match="given twice"):
            parse_inputs(["name=a", "name=b"], Person.model_json_schema())
