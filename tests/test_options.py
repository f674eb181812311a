"""Options of ``@task`` and ``@flow``: accepted forms, defaults and ``with_options``.

Bad values (negative retries, non-numeric delays...) are in test_bad_input.py.
"""

from __future__ import annotations

import inspect
from datetime import timedelta

import pytest

from kernelflow import Flow, Task, flow, task
from kernelflow.cache_policies import INPUTS, TASK_SOURCE, CachePolicy
from kernelflow.runners import ThreadPoolTaskRunner
from kernelflow.tasks import exponential_backoff, task_input_hash


def test_bare_and_called_decorators():
    @task
    def a(x: int) -> int:
        return x

    @task()
    def b(x: int) -> int:
        return x

    @flow
    def c() -> int:
        return a(1) + b(2)

    @flow()
    def d() -> int:
        return c()

    assert isinstance(a, Task) and isinstance(b, Task)
    assert isinstance(c, Flow) and isinstance(d, Flow)
    assert d() == 3


def test_wrapped_signature_is_visible():
    @task
    def load(path: str, limit: int = 10) -> list:
        return []

    assert inspect.signature(load) == inspect.signature(load.fn)
    assert list(inspect.signature(load).parameters) == ["path", "limit"]


def test_defaults():
    @task
    def t():
        pass

    assert t.name == "t"
    assert t.retries == 0
    assert t.timeout_seconds is None
    assert t.cache_policy is None  # caching is off unless asked for
    assert t.log_prints is None  # inherit from the flow
    assert t.tags == frozenset()

    @flow
    def my_flow():
        pass

    assert my_flow.name == "my-flow"
    assert my_flow.retries == 0
    assert isinstance(my_flow.task_runner, ThreadPoolTaskRunner)


def test_task_options_are_kept():
    @task(
        name="renamed",
        tags=["a", "b"],
        version="2",
        retries=2,
        retry_delay_seconds=[1, 2],
        retry_jitter_factor=0.5,
        timeout_seconds=timedelta(minutes=1),
        persist_result=True,
        log_prints=True,
        cache_expiration=timedelta(hours=1),
        description="d",
    )
    def t():
        pass

    assert (t.name, t.tags, t.version, t.retries) == ("renamed", frozenset({"a", "b"}), "2", 2)
    assert t.retry_jitter_factor == 0.5
    assert t.timeout_seconds == 60.0
    assert t.cache_expiration == 3600.0
    assert t.persist_result is True and t.log_prints is True
    assert t.description == "d"
    assert [t.delay_for_retry(n) for n in (1, 2, 3)] == [1.0, 2.0, 2.0]


def test_delays_forms():
    @task(retries=3, retry_delay_seconds=4)
    def number():
        pass

    @task(retries=3, retry_delay_seconds=timedelta(seconds=1.5))
    def delta():
        pass

    @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=10))
    def backoff():
        pass

    assert [number.delay_for_retry(n) for n in (1, 2, 3)] == [4.0] * 3
    assert [delta.delay_for_retry(n) for n in (1, 2, 3)] == [1.5] * 3
    assert [backoff.delay_for_retry(n) for n in (1, 2, 3)] == [10, 20, 40]


def test_flow_options_are_kept():
    runner = ThreadPoolTaskRunner(max_workers=2)

    @flow(
        name="n",
        version="1",
        retries=1,
        retry_delay_seconds=3,
        timeout_seconds=10,
        task_runner=runner,
        log_prints=True,
        tags=["x"],
        flow_run_name="run-{a}",
    )
    def f(a):
        pass

    assert (f.name, f.version, f.retries, f.timeout_seconds) == ("n", "1", 1, 10.0)
    assert f.task_runner is runner and f.log_prints is True and f.tags == frozenset({"x"})
    assert f.delay_for_retry(1) == 3.0
    assert f.render_run_name({"a": 5}) == "run-5"


def test_cache_options_build_a_policy():
    @task(cache_policy=INPUTS + TASK_SOURCE)
    def both(x):
        pass

    @task(cache_key_fn=task_input_hash)
    def keyed(x):
        pass

    @task(cache_policy=INPUTS - "conn")
    def minus(x, conn):
        pass

    for t in (both, keyed, minus):
        assert isinstance(t.cache_policy, CachePolicy)
    assert repr(both.cache_policy) == "INPUTS + TASK_SOURCE"
    assert "conn" in repr(minus.cache_policy)


def test_with_options_keeps_the_rest():
    @task(retries=2, tags=["a"], log_prints=True)
    def t():
        pass

    u = t.with_options(timeout_seconds=5)
    assert (u.retries, u.tags, u.log_prints, u.timeout_seconds) == (2, frozenset({"a"}), True, 5)
    assert t.timeout_seconds is None


def test_with_options_checks_its_arguments():
    from kernelflow.errors import ConfigurationError

    @task
    def t():
        pass

    with pytest.raises(ConfigurationError, match=r"unknown options.*'retrys'"):
        t.with_options(retrys=3)
    with pytest.raises(ConfigurationError, match="retries"):
        t.with_options(retries=-1)


def test_fn_is_the_plain_function():
    def plain(x):
        return x + 1

    t = task(plain)
    f = flow(plain)
    assert t.fn is plain and f.fn is plain


def test_task_run_name_with_missing_parameter():
    from kernelflow.errors import ConfigurationError

    @task(task_run_name="load-{nope}")
    def t(table):
        pass

    with pytest.raises(ConfigurationError, match=r"names 'nope'.*\['table'\]"):
        t("users")


def test_calling_with_wrong_arguments_is_a_type_error():
    @task
    def t(a, b):
        pass

    @flow
    def f(a):
        pass

    with pytest.raises(TypeError, match="task 't'"):
        t(1)
    with pytest.raises(TypeError, match="flow 'f'"):
        f(1, 2, 3)


def test_keyword_only_and_var_args():
    @task
    def t(a, *rest, scale=1, **extra):
        return (a + sum(rest)) * scale, extra

    @flow
    def f():
        return t(1, 2, 3, scale=2, note="x")

    assert f() == (12, {"note": "x"})
