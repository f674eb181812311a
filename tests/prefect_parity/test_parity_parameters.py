"""Flow parameters validated and coerced with pydantic, as Prefect does.

Checked against PrefectHQ/prefect ``src/prefect/flows.py`` (``Flow.validate_parameters``,
``ValidatedFunction`` in ``_internal/pydantic/validated_func.py``) and
``flow_engine.py`` (a validation failure fails the run, whose call raises
``ParameterTypeError``).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys

import pydantic
import pytest

from kernelflow import flow, task
from kernelflow.errors import ConfigurationError, KernelflowError, ParameterTypeError


class Order(pydantic.BaseModel):
    id: int
    items: list[str] = []


class Connection:
    """A class pydantic knows nothing about (``arbitrary_types_allowed``)."""


class TestCoercion:
    def test_lax_mode_coerces(self):
        @flow
        def report(n: int, ratio: float, when: datetime.date, flag: bool, order: Order):
            return n, ratio, when, flag, order

        n, ratio, when, flag, order = report("3", "0.5", "2024-01-02", "yes", {"id": "7"})
        assert (n, ratio, when, flag) == (3, 0.5, datetime.date(2024, 1, 2), True)
        assert isinstance(order, Order) and order == Order(id=7)

    def test_the_run_and_its_tasks_see_the_coerced_values(self):
        from kernelflow import runtime

        @task
        def double(x: int) -> int:
            return 2 * x

        @flow
        def pipeline(x: int):
            return double(x), runtime.flow_run.parameters

        assert pipeline("21") == (42, {"x": 21})

    def test_defaults_and_unannotated_parameters_are_left_alone(self):
        @flow
        def f(x: int = None, y="anything", *args: int, **kwargs: int):  # noqa: RUF013
            return x, y, args, kwargs

        assert f() == (None, "anything", (), {})
        assert f(1, [1], "a", k="b") == (1, [1], ("a",), {"k": "b"})

    def test_arbitrary_classes_are_checked_with_isinstance(self):
        @flow
        def use(conn: Connection) -> str:
            return type(conn).__name__

        assert use(Connection()) == "Connection"
        with pytest.raises(ParameterTypeError, match="conn"):
            use("not a connection")

    def test_parameter_names_pydantic_reserves_work(self):
        @flow
        def f(_private: int, model_config: int, schema: str) -> tuple:
            return _private, model_config, schema

        assert f("1", "2", "s") == (1, 2, "s")


class TestInvalidParameters:
    def test_a_wrong_type_fails_the_run_and_raises(self):
        failed = []

        @flow(on_failure=[lambda fl, run, state: failed.append(state.message)])
        def my_workflow(name: str, count: int = 1) -> str:
            return name * count

        with pytest.raises(ParameterTypeError) as info:
            my_workflow(name=1)
        message = str(info.value)
        assert message.startswith(
            "Flow run received invalid parameters: name: Input should be a valid string"
        )
        assert "validate_parameters=False" in message and "\n" not in message
        assert isinstance(info.value, TypeError) and isinstance(info.value, KernelflowError)
        assert failed == [
            f"Validation of flow parameters failed with error: ParameterTypeError: {message}"
        ]

    def test_every_bad_parameter_is_named(self):
        @flow
        def f(a: int, b: list[int], order: Order) -> None:
            pass

        state = f("x", [1, "y"], {"items": []}, return_state=True)
        assert state.is_failed() and isinstance(state.data, ParameterTypeError)
        assert "a: Input should be a valid integer" in state.message
        assert "b.1: Input should be a valid integer" in state.message
        assert "order.id: Field required" in state.message

    def test_the_body_never_runs(self):
        ran = []

        @flow(retries=2)
        def f(x: int) -> None:
            ran.append(x)

        assert f("nope", return_state=True).is_failed()
        assert ran == []

    def test_the_failed_run_is_recorded(self, store):
        import kernelflow

        @flow
        def typed(x: int) -> int:
            return x

        typed("nope", return_state=True)
        rows = kernelflow.sql("SELECT state_name, state_message FROM flow_runs").values.tolist()
        assert rows[0][0] == "Failed"
        assert rows[0][1].startswith("Validation of flow parameters failed with error:")

    def test_render_traceback_is_one_line(self):
        @flow
        def f(x: int) -> int:
            return x

        with pytest.raises(ParameterTypeError) as info:
            f("nope")
        assert len(info.value._render_traceback_()) == 1


class TestOptOutAndOtherFlows:
    def test_validate_parameters_false_passes_values_unchanged(self):
        @flow(validate_parameters=False)
        def f(x: int):
            return x

        assert f("3") == "3"
        assert f.should_validate_parameters is False

    def test_async_and_sub_flows_validate(self):
        @flow
        async def fetch(n: int) -> int:
            return n + 1

        @flow
        def child(n: int) -> int:
            return n * 2

        @flow
        def parent() -> int:
            return child("5")

        assert asyncio.run(fetch("1")) == 2
        assert parent() == 10
        with pytest.raises(ParameterTypeError):
            asyncio.run(fetch("one"))

    def test_generator_flows_validate(self):
        @flow
        def count(n: int):
            yield from range(n)

        assert list(count("3")) == [0, 1, 2]
        with pytest.raises(ParameterTypeError):
            list(count("three"))

    def test_methods_validate_without_the_instance(self):
        class Job:
            @flow
            def run(self, n: int) -> int:
                return n

        assert Job().run("4") == 4

    def test_annotations_that_are_no_types_are_not_checked(self):
        @flow
        def f(x: 42, y: NotDefinedAnywhere) -> tuple:  # noqa: F821
            return x, y

        assert f("a", "b") == ("a", "b")

    def test_a_type_that_is_nowhere_defined_inside_an_annotation_is_a_clear_error(self):
        @flow
        def f(x: list["Undefined"]) -> None:  # noqa: F821, UP037 (a quoted name inside)
            pass

        with pytest.raises(ConfigurationError, match="validate_parameters=False"):
            f([1])

    def test_serve_refuses_bad_parameters_before_serving(self):
        @flow
        def nightly(day: datetime.date) -> None:
            pass

        with pytest.raises(ParameterTypeError, match="day"):
            nightly.serve("nightly", interval=3600, parameters={"day": "not a date"})
        with pytest.raises(TypeError, match="unexpected"):
            nightly.serve("nightly", interval=3600, parameters={"day": "2024-01-01", "dya": 1})


def _last_json_line(code: str, child_env, tmp_path):
    """Run ``code`` in a fresh interpreter; the JSON of the last line it printed."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_pydantic_is_imported_only_when_an_annotated_flow_is_called(child_env, tmp_path):
    code = """
import json, sys
from kernelflow import flow

@flow
def plain(x):
    return x

@flow
def typed(x: int):
    return x

seen = ["pydantic" in sys.modules]
plain(1)
seen.append("pydantic" in sys.modules)
typed("2")
seen.append("pydantic" in sys.modules)
print(json.dumps(seen))
"""
    assert _last_json_line(code, child_env, tmp_path) == [False, False, True]


def test_values_already_of_their_plain_type_need_no_pydantic(child_env, tmp_path):
    code = """
import json, sys
from kernelflow import flow

@flow
def typed(n: int, name: str, ratio: float, on: bool):
    return [n, name, ratio, on]

out = [typed(3, "a", 0.5, True)]
seen = ["pydantic" in sys.modules]
out.append(typed(True, "a", 1, True))  # a bool for int and an int for float: pydantic decides
seen.append("pydantic" in sys.modules)
print(json.dumps([out, seen]))
"""
    out, seen = _last_json_line(code, child_env, tmp_path)
    assert seen == [False, True]
    assert out == [[3, "a", 0.5, True], [1, "a", 1.0, True]]
